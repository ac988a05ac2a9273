//! espbridge's domain: the drop contract (manifest and audience files), the campaign record and
//! its state machine, and the services that move a campaign from drop to report. It talks to
//! the world only through the [`ports`]; adapters live in other crates.

pub mod audience;
pub mod campaign;
pub mod clock;
pub mod conversions;
pub mod ids;
pub mod manifest;
pub mod ports;
pub mod service;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod text;

pub use campaign::{Campaign, State};
pub use clock::{Clock, ManualClock, SystemClock};
pub use ids::{AccountId, CampaignId, EspKind};
