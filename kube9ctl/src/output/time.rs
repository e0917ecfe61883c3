//! Times as people read them: ages like kubectl (`5s`, `3m`, `2h`, `4d`) and RFC 3339 UTC
//! timestamps, written by hand from Unix milliseconds (no calendar crate needed for UTC).

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// How long ago `then_ms` was, kubectl-style; `<unknown>` when never set.
pub fn age(now_ms: i64, then_ms: i64) -> String {
    if then_ms <= 0 {
        return "<unknown>".into();
    }
    duration(now_ms.saturating_sub(then_ms))
}

/// A span of milliseconds in its largest whole unit: `5s`, `3m`, `2h`, `4d`, `1y`.
pub fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        86_400..31_536_000 => format!("{}d", s / 86_400),
        _ => format!("{}y", s / 31_536_000),
    }
}

/// `2024-03-01T12:00:05Z`; `None` when the time was never set (0).
pub fn rfc3339(ms: i64) -> Option<String> {
    if ms <= 0 {
        return None;
    }
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_use_the_largest_whole_unit() {
        let now = 1_000_000_000_000;
        assert_eq!(age(now, now - 5_000), "5s");
        assert_eq!(age(now, now - 59_999), "59s");
        assert_eq!(age(now, now - 3 * 60_000 - 10), "3m");
        assert_eq!(age(now, now - 2 * 3_600_000), "2h");
        assert_eq!(age(now, now - 4 * 86_400_000), "4d");
        assert_eq!(age(now, now - 400 * 86_400_000), "1y");
        assert_eq!(age(now, now + 5_000), "0s");
        assert_eq!(age(now, 0), "<unknown>");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), None);
        assert_eq!(rfc3339(1).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            rfc3339(951_782_400_000).as_deref(),
            Some("2000-02-29T00:00:00Z")
        );
        assert_eq!(
            rfc3339(1_709_294_405_123).as_deref(),
            Some("2024-03-01T12:00:05Z")
        );
        assert_eq!(
            rfc3339(4_102_444_799_000).as_deref(),
            Some("2099-12-31T23:59:59Z")
        );
    }
}
