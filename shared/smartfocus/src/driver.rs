//! SmartFocus in the ESP registry: [`DRIVER`] (see `espbridge_app::registry`).

use crate::{SmartFocusConfig, SmartFocusCredentials, SmartFocusEsp};
use espbridge_core::EspKind;
use espbridge_esp_kit::{Adapter, AdapterError, BuildContext, Driver};

/// The registry entry.
pub static DRIVER: Driver<SmartFocusEsp> = Driver::new();

impl Adapter for SmartFocusEsp {
    const KIND: EspKind = EspKind::Smartfocus;
    type Config = SmartFocusConfig;
    type Credentials = SmartFocusCredentials;

    fn build(
        config: SmartFocusConfig,
        credentials: SmartFocusCredentials,
        ctx: &BuildContext,
    ) -> Result<Self, AdapterError> {
        SmartFocusEsp::new(config, credentials, ctx)
    }

    #[cfg(feature = "simulator")]
    fn simulate(
        setup: &espbridge_esp_kit::SimSetup,
    ) -> impl Future<
        Output = Result<espbridge_esp_kit::SimulatedAccount, espbridge_esp_kit::AccountError>,
    > + Send {
        crate::sim::account(crate::sim::SmartFocusSimConfig::default(), setup)
    }
}
