//! The launch schedule: Emarsys takes a wall-clock `YYYY-MM-DD HH:MM` plus an IANA zone name,
//! so the send instant is converted to that zone's local time.

use espbridge_core::EspKind;
use espbridge_core::ports::EspError;
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The zone, checked against the bundled tz database (Emarsys answers 6008 to unknown zones; a
/// typo is better caught before any call).
pub fn zone(name: &str) -> Result<TimeZone, EspError> {
    TimeZone::get(name).map_err(|e| EspError::Invalid {
        esp: EspKind::Emarsys,
        detail: format!("unknown time zone {name:?}: {e}"),
    })
}

/// `send_at` as the `schedule` value in zone `zone_name`. Seconds are dropped (the API takes
/// minutes), so a send time is never moved later than asked.
pub fn launch_schedule(send_at: Timestamp, zone_name: &str) -> Result<String, EspError> {
    let tz = zone(zone_name)?;
    Ok(send_at
        .to_zoned_datetime(tz)
        .strftime("%Y-%m-%d %H:%M")
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn converts_to_the_zone_wall_clock() {
        let t = at("2026-11-25T08:30:00Z");
        assert_eq!(
            launch_schedule(t, "Europe/Berlin").unwrap(),
            "2026-11-25 09:30"
        );
        assert_eq!(launch_schedule(t, "UTC").unwrap(), "2026-11-25 08:30");
        assert_eq!(
            launch_schedule(t, "America/New_York").unwrap(),
            "2026-11-25 03:30"
        );
        assert_eq!(
            launch_schedule(t, "Asia/Kolkata").unwrap(),
            "2026-11-25 14:00"
        );
        // Crosses the date line backwards.
        assert_eq!(
            launch_schedule(t, "Pacific/Midway").unwrap(),
            "2026-11-24 21:30"
        );
    }

    #[test]
    fn follows_daylight_saving() {
        let summer = at("2026-07-01T08:30:00Z");
        assert_eq!(
            launch_schedule(summer, "Europe/Berlin").unwrap(),
            "2026-07-01 10:30"
        );
        assert_eq!(
            launch_schedule(summer, "Europe/London").unwrap(),
            "2026-07-01 09:30"
        );
    }

    #[test]
    fn drops_seconds_and_rejects_unknown_zones() {
        let t = at("2026-11-25T08:30:59Z");
        assert_eq!(launch_schedule(t, "UTC").unwrap(), "2026-11-25 08:30");
        assert!(matches!(
            launch_schedule(t, "Mars/Olympus"),
            Err(EspError::Invalid { .. })
        ));
    }
}
