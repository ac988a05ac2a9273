//! Bronto in the ESP registry: [`DRIVER`] (see `espbridge_app::registry`).

use crate::{BrontoConfig, BrontoCredentials, BrontoEsp};
use espbridge_core::EspKind;
use espbridge_esp_kit::{Adapter, AdapterError, BuildContext, Driver};

/// The registry entry.
pub static DRIVER: Driver<BrontoEsp> = Driver::new();

impl Adapter for BrontoEsp {
    const KIND: EspKind = EspKind::Bronto;
    type Config = BrontoConfig;
    type Credentials = BrontoCredentials;

    fn build(
        config: BrontoConfig,
        credentials: BrontoCredentials,
        ctx: &BuildContext,
    ) -> Result<Self, AdapterError> {
        BrontoEsp::new(config, credentials, ctx)
    }

    #[cfg(feature = "simulator")]
    fn simulate(
        setup: &espbridge_esp_kit::SimSetup,
    ) -> impl Future<
        Output = Result<espbridge_esp_kit::SimulatedAccount, espbridge_esp_kit::AccountError>,
    > + Send {
        crate::sim::account(crate::sim::BrontoSimConfig::default(), setup)
    }
}
