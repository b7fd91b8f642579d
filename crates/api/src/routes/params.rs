//! Parsing of the query parameters the read routes share, with precise errors.

use sightline_model::ValidationError;
use sightline_store::{Cursor, MAX_PAGE};

use crate::ApiError;

pub(crate) const DEFAULT_LIMIT: u32 = 50;

pub(crate) fn bad(field: &str, reason: impl Into<String>) -> ApiError {
    ApiError::BadParameter(ValidationError::new(field, reason))
}

/// Refuses parameters the route does not know, so a typo is not silently ignored.
pub(crate) fn reject_unknown(
    params: &std::collections::HashMap<String, String>,
    known: &[&str],
) -> Result<(), ApiError> {
    match params.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(bad(
            unknown,
            format!("unknown parameter; expected one of {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

/// `limit`: 1 or more; values above the page cap are capped rather than refused.
pub(crate) fn limit(raw: Option<&str>) -> Result<u32, ApiError> {
    match raw {
        None | Some("") => Ok(DEFAULT_LIMIT),
        Some(s) => {
            let n: u64 = s
                .parse()
                .map_err(|_| bad("limit", format!("'{s}' is not a positive integer")))?;
            if n == 0 {
                return Err(bad("limit", "must be at least 1"));
            }
            Ok(n.min(u64::from(MAX_PAGE)) as u32)
        }
    }
}

pub(crate) fn cursor(raw: Option<&str>) -> Result<Option<Cursor>, ApiError> {
    raw.filter(|s| !s.is_empty())
        .map(|s| Cursor::decode(s).map_err(ApiError::from))
        .transpose()
}

/// A duration such as `90s`, `15m`, `24h`, `7d`, `2w`, in milliseconds (at most ten years).
pub(crate) fn duration_ms(field: &str, raw: &str) -> Result<i64, ApiError> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(raw.len());
    let (num, unit) = raw.split_at(split);
    let n: f64 = num.parse().map_err(|_| {
        bad(
            field,
            format!("'{raw}' is not a duration like 15m, 24h or 7d"),
        )
    })?;
    let unit_ms = match unit {
        "s" => 1_000.0,
        "m" => 60_000.0,
        "h" | "" => 3_600_000.0,
        "d" => 86_400_000.0,
        "w" => 604_800_000.0,
        _ => {
            return Err(bad(
                field,
                format!("unknown unit '{unit}': use s, m, h, d or w"),
            ));
        }
    };
    let ms = n * unit_ms;
    if !(1.0..=10.0 * 365.0 * 86_400_000.0).contains(&ms) {
        return Err(bad(field, "must be between 1 ms and 10 years"));
    }
    Ok(ms as i64)
}

/// A time given as epoch milliseconds or RFC 3339.
pub(crate) fn instant_ms(field: &str, raw: &str) -> Result<i64, ApiError> {
    if let Ok(ms) = raw.trim().parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            bad(
                field,
                format!("'{raw}' is neither epoch milliseconds nor RFC 3339"),
            )
        })
}

/// The `[since, until)` range a read route's `hours` / `from` / `to` parameters ask for,
/// relative to the current time.
pub(crate) fn requested_range(
    q: &std::collections::HashMap<String, String>,
) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let get = |k: &str| q.get(k).map(String::as_str).filter(|s| !s.is_empty());
    time_range(
        sightline_model::clock::now_ms(),
        get("hours"),
        get("from"),
        get("to"),
    )
}

/// Resolves `hours` / `from` / `to` into a `[since, until)` range.
fn time_range(
    now_ms: i64,
    hours: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let until = to
        .filter(|s| !s.is_empty())
        .map(|s| instant_ms("to", s))
        .transpose()?;
    let mut since = from
        .filter(|s| !s.is_empty())
        .map(|s| instant_ms("from", s))
        .transpose()?;
    if let Some(h) = hours.filter(|s| !s.is_empty()) {
        let hours: f64 = h
            .parse()
            .map_err(|_| bad("hours", format!("'{h}' is not a number")))?;
        if !(hours > 0.0 && hours <= 24.0 * 3650.0) {
            return Err(bad("hours", "must be greater than 0 and at most 87600"));
        }
        let start = until.unwrap_or(now_ms) - (hours * 3_600_000.0) as i64;
        since = Some(since.map_or(start, |s| s.max(start)));
    }
    if let (Some(s), Some(u)) = (since, until)
        && s >= u
    {
        return Err(bad("from", "must be before 'to'"));
    }
    Ok((since, until))
}
