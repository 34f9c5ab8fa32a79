//! Wall-clock timestamps as the daemons and iproute2 print them (`2026-11-22 05:15:35`,
//! `2026-11-22T05:15:35.676329`), in Unix seconds. Containers share the host's clock,
//! so such a time read in one node compares with one read in another.

/// Unix seconds of a UTC `YYYY-MM-DD` date and `HH:MM:SS[.frac]` time.
pub fn parse_utc(date: &str, time: &str) -> Option<f64> {
    let d: Vec<i64> = date.split('-').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    if d.len() != 3 || t.len() != 3 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let frac: f64 = format!("0.{frac}").parse().ok()?;
    let secs = days_from_civil(d[0], d[1], d[2]) * 86400 + t[0] * 3600 + t[1] * 60 + t[2];
    Some(secs as f64 + frac)
}

/// Unix seconds of a `YYYY-MM-DDTHH:MM:SS.frac` timestamp (iproute2's `-ts`).
pub fn parse_iso(ts: &str) -> Option<f64> {
    let (date, time) = ts.split_once('T')?;
    parse_utc(date, time)
}

/// The current Unix time in seconds.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_utc("1970-01-02", "00:00:01"), Some(86401.0));
        let t = parse_iso("2026-11-22T05:15:35.676329").unwrap();
        assert!((t - 1795324535.676329).abs() < 1e-6, "{t}");
        assert_eq!(parse_iso("2026-11-22 05:15:35"), None);
        assert_eq!(parse_utc("x", "05:15:35"), None);
    }
}
