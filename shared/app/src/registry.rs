//! The ESPs espbridge speaks to: one driver per ESP. Everything that needs "each ESP" (building
//! accounts from the configuration, the local stack's simulators, the demo, the tests) goes
//! through this list; adding an ESP is its folder (`shared/<esp>`) plus one line here (see
//! README, "Adding an ESP").

use espbridge_core::EspKind;
use espbridge_esp_kit::EspDriver;

/// One driver per ESP, in the order the local stack starts their simulators.
pub static DRIVERS: &[&dyn EspDriver] = &[
    &espbridge_emarsys::DRIVER,
    &espbridge_smartfocus::DRIVER,
    &espbridge_silverpop::DRIVER,
    &espbridge_bronto::DRIVER,
];

/// The driver of `esp`, if this build has one.
pub fn driver(esp: EspKind) -> Option<&'static dyn EspDriver> {
    DRIVERS.iter().copied().find(|d| d.kind() == esp)
}

/// The ESPs with a driver.
pub fn kinds() -> impl Iterator<Item = EspKind> {
    DRIVERS.iter().map(|d| d.kind())
}

/// The ESPs with a driver, comma-separated, for messages.
pub fn names() -> String {
    kinds().map(EspKind::as_str).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_esp_has_exactly_one_driver() {
        for esp in EspKind::ALL {
            assert_eq!(
                DRIVERS.iter().filter(|d| d.kind() == esp).count(),
                1,
                "{esp}"
            );
            assert_eq!(driver(esp).map(|d| d.kind()), Some(esp));
        }
        assert_eq!(DRIVERS.len(), EspKind::ALL.len());
        assert_eq!(names(), "emarsys, smartfocus, silverpop, bronto");
    }
}
