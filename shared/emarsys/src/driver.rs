//! Emarsys in the ESP registry: [`DRIVER`] (see `espbridge_app::registry`).

use crate::{EmarsysConfig, EmarsysCredentials, EmarsysEsp};
use espbridge_core::EspKind;
use espbridge_esp_kit::{Adapter, AdapterError, BuildContext, Driver};

/// The registry entry.
pub static DRIVER: Driver<EmarsysEsp> = Driver::new();

impl Adapter for EmarsysEsp {
    const KIND: EspKind = EspKind::Emarsys;
    type Config = EmarsysConfig;
    type Credentials = EmarsysCredentials;

    fn build(
        config: EmarsysConfig,
        credentials: EmarsysCredentials,
        ctx: &BuildContext,
    ) -> Result<Self, AdapterError> {
        EmarsysEsp::new(config, credentials, ctx)
    }

    #[cfg(feature = "simulator")]
    fn simulate(
        setup: &espbridge_esp_kit::SimSetup,
    ) -> impl Future<
        Output = Result<espbridge_esp_kit::SimulatedAccount, espbridge_esp_kit::AccountError>,
    > + Send {
        crate::sim::account(crate::sim::EmarsysSimConfig::default(), setup)
    }
}
