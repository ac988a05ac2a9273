//! Bronto in the ESP registry: [`DRIVER`] (see `espbridge_app::registry`).

use crate::{BrontoConfig, BrontoCredentials, BrontoEsp};
use espbridge_core::{Clock, EspKind};
use espbridge_esp_kit::{Adapter, AdapterError, Driver};
use std::sync::Arc;

/// The registry entry.
pub static DRIVER: Driver<BrontoEsp> = Driver::new();

impl Adapter for BrontoEsp {
    const KIND: EspKind = EspKind::Bronto;
    type Config = BrontoConfig;
    type Credentials = BrontoCredentials;

    fn build(
        config: BrontoConfig,
        credentials: BrontoCredentials,
        _clock: Arc<dyn Clock>,
    ) -> Result<Self, AdapterError> {
        BrontoEsp::new(config, credentials)
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
