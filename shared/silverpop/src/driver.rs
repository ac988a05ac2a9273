//! Silverpop in the ESP registry: [`DRIVER`] (see `espbridge_app::registry`).

use crate::{SilverpopConfig, SilverpopCredentials, SilverpopEsp};
use espbridge_core::EspKind;
use espbridge_esp_kit::{Adapter, AdapterError, BuildContext, DemoCampaign, Driver};

/// The registry entry.
pub static DRIVER: Driver<SilverpopEsp> = Driver::new();

impl Adapter for SilverpopEsp {
    const KIND: EspKind = EspKind::Silverpop;
    type Config = SilverpopConfig;
    type Credentials = SilverpopCredentials;

    fn build(
        config: SilverpopConfig,
        credentials: SilverpopCredentials,
        ctx: &BuildContext,
    ) -> Result<Self, AdapterError> {
        SilverpopEsp::new(config, credentials, ctx)
    }

    #[cfg(feature = "simulator")]
    fn simulate(
        setup: &espbridge_esp_kit::SimSetup,
    ) -> impl Future<
        Output = Result<espbridge_esp_kit::SimulatedAccount, espbridge_esp_kit::AccountError>,
    > + Send {
        // The demo drop's personalization fields have their columns in the relational table.
        let config = crate::sim::SilverpopSimConfig::default()
            .with_table_fields(&["first_name", "loyalty_tier"]);
        crate::sim::account(config, setup)
    }

    /// One campaign per audience mode: Lists, and Relational Tables chosen by the manifest.
    fn demo_campaigns() -> Vec<DemoCampaign> {
        vec![
            DemoCampaign {
                label: Some("lists"),
                esp_options: None,
            },
            DemoCampaign {
                label: Some("rt"),
                esp_options: Some(serde_json::json!({"silverpop": {"mode": "relational_table"}})),
            },
        ]
    }
}
