//! When a silence applies (SPEC 7.4): once, between two unix times, or weekly
//! windows in an IANA time zone. A weekly window's `days` name the day it
//! starts (1 = Monday … 7 = Sunday); one whose end is before its start runs
//! past midnight into the next day.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

pub const MAX_WEEKLY_WINDOWS: usize = 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklyWindow {
    pub days: Vec<u8>,
    pub start: String,
    pub end: String,
}

/// Either `{start, end}` (unix seconds) or `{weekly, timezone}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SilenceTime {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<Vec<WeeklyWindow>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// A validated window, ready to ask "does it apply at this second?".
#[derive(Clone, Debug)]
pub enum Window {
    Once {
        start: i64,
        end: i64,
    },
    Weekly {
        tz: TimeZone,
        /// (days bit set, start minute of day, end minute of day).
        windows: Vec<(u8, u16, u16)>,
    },
}

fn minute_of_day(hhmm: &str, at: &str) -> ApiResult<u16> {
    let bad = || ApiError::invalid(format!("{at}: must be HH:MM from 00:00 to 24:00"));
    let (h, m) = hhmm.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// One weekly window, checked and compiled to (weekday bit set, 1 = Monday
/// at bit 0; start minute; end minute). `names` are the caller's names for
/// the days, start and end fields (schedules call them weekdays, from, to).
pub(crate) fn weekly_window(
    place: &str,
    names: [&str; 3],
    days: &[u8],
    start: &str,
    end: &str,
) -> ApiResult<(u8, u16, u16)> {
    let [days_name, start_name, end_name] = names;
    if days.is_empty() || days.iter().any(|d| !(1..=7).contains(d)) {
        return Err(ApiError::invalid(format!(
            "{place}.{days_name}: 1 to 7 days, each 1 (Monday) to 7 (Sunday)"
        )));
    }
    let start = minute_of_day(start, &format!("{place}.{start_name}"))?;
    let end = minute_of_day(end, &format!("{place}.{end_name}"))?;
    if start == end || start == 24 * 60 {
        return Err(ApiError::invalid(format!(
            "{place}.{end_name}: must differ from {start_name} (a window is less than a day; {start_name} before 24:00)"
        )));
    }
    let set = days.iter().fold(0u8, |set, d| set | (1 << (d - 1)));
    Ok((set, start, end))
}

impl SilenceTime {
    /// Check and compile; errors name `{at}.field`.
    pub fn compile(&self, at: &str) -> ApiResult<Window> {
        match (self.start, self.end, &self.weekly, &self.timezone) {
            (Some(start), Some(end), None, None) => {
                if start < 0 || end <= start {
                    return Err(ApiError::invalid(format!(
                        "{at}.end: must be after {at}.start (unix seconds)"
                    )));
                }
                Ok(Window::Once { start, end })
            }
            (None, None, Some(weekly), Some(zone)) => {
                let tz = TimeZone::get(zone).map_err(|_| {
                    ApiError::invalid(format!(
                        "{at}.timezone: not an IANA time zone name (e.g. Asia/Shanghai, UTC)"
                    ))
                })?;
                if weekly.is_empty() || weekly.len() > MAX_WEEKLY_WINDOWS {
                    return Err(ApiError::invalid(format!(
                        "{at}.weekly: 1 to {MAX_WEEKLY_WINDOWS} windows"
                    )));
                }
                let mut windows = Vec::with_capacity(weekly.len());
                for (i, w) in weekly.iter().enumerate() {
                    let place = format!("{at}.weekly[{i}]");
                    windows.push(weekly_window(
                        &place,
                        ["days", "start", "end"],
                        &w.days,
                        &w.start,
                        &w.end,
                    )?);
                }
                Ok(Window::Weekly { tz, windows })
            }
            _ => Err(ApiError::invalid(format!(
                "{at}: give either start and end (unix seconds) or weekly and timezone"
            ))),
        }
    }
}

impl Window {
    pub fn contains(&self, now_s: i64) -> bool {
        match self {
            Window::Once { start, end } => *start <= now_s && now_s < *end,
            Window::Weekly { tz, windows } => {
                let Ok(ts) = Timestamp::from_second(now_s) else {
                    return false;
                };
                let local = ts.to_zoned(tz.clone());
                // 1 = Monday … 7 = Sunday, as bit 0 … 6.
                let today = local.weekday().to_monday_one_offset() as u8 - 1;
                let yesterday = (today + 6) % 7;
                let minute = local.hour() as u16 * 60 + local.minute() as u16;
                windows.iter().any(|&(days, start, end)| {
                    let starts_on = |d: u8| days & (1 << d) != 0;
                    if start < end {
                        starts_on(today) && start <= minute && minute < end
                    } else {
                        // Overnight: the evening part today, the morning part
                        // of a window that started yesterday.
                        (starts_on(today) && minute >= start)
                            || (starts_on(yesterday) && minute < end)
                    }
                })
            }
        }
    }

    /// A one-time window that has ended never applies again.
    pub fn expired(&self, now_s: i64) -> bool {
        matches!(self, Window::Once { end, .. } if now_s >= *end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weekly(json: &str) -> Window {
        serde_json::from_str::<SilenceTime>(json)
            .unwrap()
            .compile("time")
            .unwrap()
    }

    /// Unix seconds of a UTC date and time.
    fn at(date: &str) -> i64 {
        date.parse::<Timestamp>().unwrap().as_second()
    }

    #[test]
    fn once_is_half_open() {
        let w = weekly(r#"{"start": 100, "end": 200}"#);
        assert!(!w.contains(99));
        assert!(w.contains(100));
        assert!(w.contains(199));
        assert!(!w.contains(200));
        assert!(w.expired(200));
    }

    #[test]
    fn weekly_in_a_time_zone_with_an_overnight_window() {
        // Weekdays 22:00–06:00 in Shanghai (UTC+8).
        let w = weekly(
            r#"{"weekly": [{"days": [1,2,3,4,5], "start": "22:00", "end": "06:00"}], "timezone": "Asia/Shanghai"}"#,
        );
        // 2026-11-16 is a Monday. Monday 22:30 Shanghai = 14:30 UTC.
        assert!(w.contains(at("2026-11-16T14:30:00Z")));
        // Tuesday 05:59 Shanghai: the morning part of Monday's window.
        assert!(w.contains(at("2026-11-16T21:59:00Z")));
        assert!(!w.contains(at("2026-11-16T22:00:00Z")));
        // Monday 05:00 Shanghai: Sunday's window would be needed; day 7 is not listed.
        assert!(!w.contains(at("2026-11-15T21:00:00Z")));
        // Saturday 01:00 Shanghai: the end of Friday's window.
        assert!(w.contains(at("2026-11-20T17:00:00Z")));
        // Saturday 23:00 Shanghai: Saturday is not listed.
        assert!(!w.contains(at("2026-11-21T15:00:00Z")));
        assert!(!w.expired(i64::MAX / 2));
    }

    #[test]
    fn same_day_window_and_daylight_saving() {
        let w = weekly(
            r#"{"weekly": [{"days": [7], "start": "01:00", "end": "04:00"}], "timezone": "America/New_York"}"#,
        );
        // 2026-11-01 (Sunday) is the end of DST in New York: 01:00–04:00 local
        // is 05:00–09:00 UTC (01:00 EDT, then 01:00 EST again at 06:00 UTC).
        assert!(!w.contains(at("2026-11-01T04:59:00Z")));
        assert!(w.contains(at("2026-11-01T05:00:00Z")));
        assert!(w.contains(at("2026-11-01T08:59:00Z")));
        assert!(!w.contains(at("2026-11-01T09:00:00Z")));
    }

    #[test]
    fn bad_times_name_the_field() {
        for (json, place) in [
            (r#"{"start": 5, "end": 5}"#, "time.end"),
            (r#"{"start": 5}"#, "time:"),
            (
                r#"{"weekly": [{"days": [1], "start": "22:00", "end": "06:00"}], "timezone": "Mars/Base"}"#,
                "time.timezone",
            ),
            (
                r#"{"weekly": [{"days": [0], "start": "22:00", "end": "06:00"}], "timezone": "UTC"}"#,
                "time.weekly[0].days",
            ),
            (
                r#"{"weekly": [{"days": [1], "start": "2200", "end": "06:00"}], "timezone": "UTC"}"#,
                "time.weekly[0].start",
            ),
            (
                r#"{"weekly": [{"days": [1], "start": "06:00", "end": "06:00"}], "timezone": "UTC"}"#,
                "time.weekly[0].end",
            ),
            (r#"{"start": 1, "end": 2, "timezone": "UTC"}"#, "time:"),
        ] {
            let t: SilenceTime = serde_json::from_str(json).unwrap();
            let err = t.compile("time").unwrap_err();
            assert!(
                err.message().starts_with(place),
                "{} vs {place}",
                err.message()
            );
        }
    }
}
