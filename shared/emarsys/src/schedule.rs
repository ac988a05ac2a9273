//! Times at the Emarsys boundary. Emarsys speaks wall-clock times without an offset: it takes
//! the launch schedule as `YYYY-MM-DD HH:MM` plus an IANA zone name, and answers `created`,
//! `deleted` and the like as `YYYY-MM-DD HH:MM:SS` in the account's zone (reference
//! `docs/esp/emarsys-smartfocus.md` A.8). Everything espbridge hands on is RFC 3339 with the
//! zone's offset, so a client can sort and compare it with other ESPs' times.

use espbridge_core::EspKind;
use espbridge_core::ports::EspError;
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

/// RFC 3339 with the zone's numeric offset (`2026-11-26T11:31:21+01:00`; `+00:00` for UTC).
const RFC3339_OFFSET: &str = "%Y-%m-%dT%H:%M:%S%:z";

/// The wall-clock spellings Emarsys answers in (A.8): with seconds, without, date only; the `T`
/// separator is accepted too.
const LOCAL_FORMATS: [&str; 5] = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
];

/// An Emarsys time (`2026-11-26 11:31:21`, the account's wall clock) as RFC 3339 with the
/// offset `zone` has at that moment (`2026-11-26T11:31:21+01:00`). A time that already carries
/// an offset is kept as that instant and shown in `zone`. Empty or unreadable (including
/// MySQL's `0000-00-00 00:00:00`) is `None`: a bad date never fails a listing. A wall-clock
/// time that occurs twice (the autumn hour) is read as the earlier one, one that does not
/// occur (the spring gap) as the time after the gap, as the zone's clocks showed it.
pub fn account_time(raw: &str, zone: &TimeZone) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let zoned = match LOCAL_FORMATS
        .iter()
        .find_map(|f| DateTime::strptime(f, raw).ok())
    {
        Some(local) => local.to_zoned_datetime(zone.clone()).ok()?,
        None => raw
            .parse::<Timestamp>()
            .ok()?
            .to_zoned_datetime(zone.clone()),
    };
    Some(zoned.strftime(RFC3339_OFFSET).to_string())
}

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

/// The minute [`launch_schedule`] books, as RFC 3339 with the offset of `zone_name` then
/// (`2026-11-25T09:30:00+01:00`): what the adapter reports, where the wire value has no offset.
pub fn launch_instant(send_at: Timestamp, zone_name: &str) -> Result<String, EspError> {
    let tz = zone(zone_name)?;
    let zoned = send_at.to_zoned_datetime(tz);
    let minute = zoned
        .with()
        .second(0)
        .subsec_nanosecond(0)
        .build()
        .unwrap_or(zoned);
    Ok(minute.strftime(RFC3339_OFFSET).to_string())
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
    fn account_times_become_rfc3339_with_the_zone_offset() {
        let berlin = zone("Europe/Berlin").unwrap();
        let utc = zone("UTC").unwrap();
        // Winter (CET) and summer (CEST) in one zone.
        assert_eq!(
            account_time("2026-11-26 11:31:21", &berlin).as_deref(),
            Some("2026-11-26T11:31:21+01:00")
        );
        assert_eq!(
            account_time("2026-07-01 11:31:21", &berlin).as_deref(),
            Some("2026-07-01T11:31:21+02:00")
        );
        assert_eq!(
            account_time("2026-11-26 11:31:21", &utc).as_deref(),
            Some("2026-11-26T11:31:21+00:00")
        );
        let new_york = zone("America/New_York").unwrap();
        assert_eq!(
            account_time("2011-08-12 18:12:23", &new_york).as_deref(),
            Some("2011-08-12T18:12:23-04:00")
        );
        // Other spellings, and a time that already has an offset (shown in the zone).
        assert_eq!(
            account_time("2026-11-26 11:31", &berlin).as_deref(),
            Some("2026-11-26T11:31:00+01:00")
        );
        assert_eq!(
            account_time("2026-11-26", &berlin).as_deref(),
            Some("2026-11-26T00:00:00+01:00")
        );
        assert_eq!(
            account_time("2026-11-26T10:31:21Z", &berlin).as_deref(),
            Some("2026-11-26T11:31:21+01:00")
        );
        // Unreadable is None, never an error.
        for bad in [
            "",
            "  ",
            "0000-00-00 00:00:00",
            "yesterday",
            "2026-13-01 00:00:00",
        ] {
            assert_eq!(account_time(bad, &berlin), None, "{bad:?}");
        }
    }

    #[test]
    fn account_times_across_the_daylight_saving_changes() {
        let berlin = zone("Europe/Berlin").unwrap();
        // The last minute of CET before the spring change, and the first of CEST.
        assert_eq!(
            account_time("2026-03-29 01:59:59", &berlin).as_deref(),
            Some("2026-03-29T01:59:59+01:00")
        );
        assert_eq!(
            account_time("2026-03-29 03:00:00", &berlin).as_deref(),
            Some("2026-03-29T03:00:00+02:00")
        );
        // 02:30 does not exist that night: the clocks showed 03:30 CEST.
        assert_eq!(
            account_time("2026-03-29 02:30:00", &berlin).as_deref(),
            Some("2026-03-29T03:30:00+02:00")
        );
        // 02:30 happens twice in October: the first (CEST) is taken.
        assert_eq!(
            account_time("2026-10-25 02:30:00", &berlin).as_deref(),
            Some("2026-10-25T02:30:00+02:00")
        );
        assert_eq!(
            account_time("2026-10-25 03:30:00", &berlin).as_deref(),
            Some("2026-10-25T03:30:00+01:00")
        );
    }

    #[test]
    fn the_launch_instant_is_the_booked_minute_with_its_offset() {
        let t = at("2026-11-25T08:30:59Z");
        assert_eq!(
            launch_instant(t, "Europe/Berlin").unwrap(),
            "2026-11-25T09:30:00+01:00"
        );
        assert_eq!(
            launch_instant(at("2026-07-01T08:30:00Z"), "Europe/Berlin").unwrap(),
            "2026-07-01T10:30:00+02:00"
        );
        assert_eq!(
            launch_instant(t, "UTC").unwrap(),
            "2026-11-25T08:30:00+00:00"
        );
        assert_eq!(
            launch_instant(t, "Asia/Kolkata").unwrap(),
            "2026-11-25T14:00:00+05:30"
        );
        assert!(launch_instant(t, "Mars/Olympus").is_err());
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
