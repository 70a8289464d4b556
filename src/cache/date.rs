//! HTTP dates as a cache must read them (RFC 9110 §5.6.7): the preferred IMF-fixdate and the
//! two obsolete forms a recipient has to accept (RFC 850 and ANSI C `asctime()`), with names in
//! any case. Anything else is invalid: other time zones, a two-digit year outside RFC 850 form,
//! missing commas, extra spaces, one-digit hours.
//!
//! `httpdate` (used for writing dates) rejects the obsolete forms' lenient spellings, so a cache
//! conformance suite saw valid `Expires` values treated as already expired.

/// Day names, short form; full names are these plus a suffix.
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const FULL_DAYS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

fn month(s: &str) -> Option<u32> {
    MONTHS.iter().position(|m| m.eq_ignore_ascii_case(s)).map(|i| i as u32 + 1)
}

/// `HH:MM:SS` as seconds of the day.
fn time_of_day(s: &str) -> Option<u64> {
    let mut parts = s.split(':');
    let (h, m, sec) = (digits(parts.next()?, 2)?, digits(parts.next()?, 2)?, digits(parts.next()?, 2)?);
    if parts.next().is_some() || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some(u64::from(h) * 3600 + u64::from(m) * 60 + u64::from(sec))
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`); `None` for a
/// day the month does not have.
fn days_from_civil(year: u32, month: u32, day: u32) -> Option<u64> {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if year < 1970 || !(1..=12).contains(&month) || day == 0 || day > month_days[month as usize - 1] {
        return None;
    }
    let y = i64::from(if month <= 2 { year - 1 } else { year });
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    u64::try_from(era * 146_097 + doe - 719_468).ok()
}

fn unix_ms(year: u32, month: u32, day: u32, secs_of_day: u64) -> Option<u64> {
    Some((days_from_civil(year, month, day)? * 86_400 + secs_of_day) * 1000)
}

/// Parses an HTTP date into Unix milliseconds; `None` when it is not a valid HTTP date.
/// `now` (Unix ms) resolves RFC 850's two-digit years: a year more than 50 years ahead of `now`
/// is the most recent past year with those digits (RFC 9110 §5.6.7).
pub fn parse_http_date(value: &str, now: u64) -> Option<u64> {
    let v = value.trim_matches(|c| c == ' ' || c == '\t');
    if let Some((day_name, rest)) = v.split_once(", ") {
        let fields: Vec<&str> = rest.split(' ').collect();
        let short_day = DAYS.iter().any(|d| d.eq_ignore_ascii_case(day_name));
        let full_day = FULL_DAYS.iter().any(|d| d.eq_ignore_ascii_case(day_name));
        return match fields.as_slice() {
            // IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
            [d, m, y, time, zone] if short_day && zone.eq_ignore_ascii_case("GMT") => unix_ms(digits(y, 4)?, month(m)?, digits(d, 2)?, time_of_day(time)?),
            // RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`.
            [date, time, zone] if full_day && zone.eq_ignore_ascii_case("GMT") => {
                let parts: Vec<&str> = date.split('-').collect();
                let [d, m, yy] = parts.as_slice() else { return None };
                let yy = digits(yy, 2)?;
                let this_year = 1970 + (now / 1000 / 31_556_952) as u32;
                let mut year = this_year - this_year % 100 + yy;
                if year > this_year + 50 {
                    year -= 100;
                }
                unix_ms(year, month(m)?, digits(d, 2)?, time_of_day(time)?)
            }
            _ => None,
        };
    }
    // asctime: `Sun Nov  6 08:49:37 1994` (a one-digit day is padded with a space).
    let (day_name, rest) = v.split_once(' ')?;
    if !DAYS.iter().any(|d| d.eq_ignore_ascii_case(day_name)) {
        return None;
    }
    let (m, rest) = rest.split_once(' ')?;
    let (d, rest) = match rest.strip_prefix(' ') {
        Some(one) => (digits(one.get(..1)?, 1)?, one.get(1..)?),
        None => (digits(rest.get(..2)?, 2)?, rest.get(2..)?),
    };
    let fields: Vec<&str> = rest.strip_prefix(' ')?.split(' ').collect();
    let [time, y] = fields.as_slice() else { return None };
    unix_ms(digits(y, 4)?, month(m)?, d, time_of_day(time)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-02, when these tests were written (only RFC 850 years depend on it).
    const NOW: u64 = 1_796_169_600_000;
    /// 1994-11-06T08:49:37Z.
    const RFC_EXAMPLE: u64 = 784_111_777_000;

    #[test]
    fn the_three_forms_of_rfc_9110_in_any_case() {
        for v in ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "SUN, 06 NOV 1994 08:49:37 gmt", "sunday, 06-nov-94 08:49:37 GMT"] {
            assert_eq!(parse_http_date(v, NOW), Some(RFC_EXAMPLE), "{v}");
        }
        assert_eq!(parse_http_date("Thu Aug  8 02:01:18 2050", NOW), Some(2_543_536_878_000));
        assert_eq!(parse_http_date("Tue, 19 Jan 2038 14:14:08 GMT", NOW), Some(2_147_523_248_000), "past 32 bits");
        assert_eq!(parse_http_date("Sun, 21 Nov 2286 04:46:39 GMT", NOW), Some(10_000_039_599_000));
        assert_eq!(parse_http_date("Wed, 29 Feb 2028 00:00:00 GMT", NOW), Some(1_835_395_200_000), "a leap day");
    }

    #[test]
    fn rfc_850_years_more_than_50_ahead_are_in_the_past() {
        // From 2026, "50" is 2050 (24 years ahead) and "94" is 1994, not 2094.
        assert_eq!(parse_http_date("Thursday, 18-Aug-50 02:01:18 GMT", NOW), Some(2_544_400_878_000));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", NOW), Some(RFC_EXAMPLE));
    }

    #[test]
    fn everything_else_is_invalid() {
        for v in [
            "Thu, 18 Aug 2050 02:01:18 UTC",
            "Thu, 18 Aug 2050 02:01:18 AEST",
            "Thu, 18 Aug 50 02:01:18 GMT",
            "Thu 18 Aug 2050 02:01:18 GMT",
            "Thu, 18  Aug  2050 02:01:18 GMT",
            "Thu, 18-Aug-2050 02:01:18 GMT",
            "Thu, 18 Aug 2050 02.01.18 GMT",
            "Thu, 18 Aug 2050 2:01:18 GMT",
            "Thu, 31 Feb 2050 02:01:18 GMT",
            "Thu, 18 Aug 2050 24:00:00 GMT",
            "Thursday, 18-Aug-2050 02:01:18 GMT",
            "Thu Aug 8 02:01:18 2050",
            "0",
            "-1",
            "",
            "Thu, 01 Jan 1900 00:00:00 GMT",
        ] {
            assert_eq!(parse_http_date(v, NOW), None, "{v}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

        /// Every IMF-fixdate `httpdate` writes (1970 to 9999) reads back to the same second, and
        /// so does its asctime spelling; nothing at all panics.
        #[test]
        fn written_dates_read_back(secs in 0u64..253_402_300_799, junk in ".{0,40}") {
            let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            let imf = httpdate::fmt_http_date(t);
            proptest::prop_assert_eq!(parse_http_date(&imf, NOW), Some(secs * 1000), "{}", imf);
            let parts: Vec<&str> = imf.split(' ').collect();
            let asctime = format!("{} {} {:>2} {} {}", &parts[0][..3], parts[2], parts[1].trim_start_matches('0'), parts[4], parts[3]);
            proptest::prop_assert_eq!(parse_http_date(&asctime, NOW), Some(secs * 1000), "{}", asctime);
            let _ = parse_http_date(&junk, NOW);
        }
    }
}
