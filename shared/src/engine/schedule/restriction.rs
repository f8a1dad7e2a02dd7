//! A layer's restrictions: the local weekdays and hours it is on call.
//! A window starts on each listed weekday at `from`; one whose `to` is not
//! after `from` runs overnight and ends at `to` the next day (22:00–06:00).
//! Local times that a daylight-saving change skips resolve forward (02:30
//! on the spring change is 03:30), repeated ones to the first occurrence.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// Compiled restrictions; no windows means the layer is always on.
#[derive(Clone, Debug, Default)]
pub struct Restrictions {
    tz: Option<TimeZone>,
    /// (weekday bit set, 1 = Monday at bit 0; from minute; to minute).
    windows: Vec<(u8, u16, u16)>,
}

/// Days of local date looked at around a moment: a window starts at most a
/// day before it, and every weekday comes round within a week after it.
const LOOK_BACK_DAYS: i64 = 2;
const LOOK_AHEAD_DAYS: i64 = 9;

impl Restrictions {
    pub fn new(tz: &TimeZone, windows: Vec<(u8, u16, u16)>) -> Self {
        Restrictions {
            tz: Some(tz.clone()),
            windows,
        }
    }

    pub fn is_unrestricted(&self) -> bool {
        self.windows.is_empty()
    }

    /// Whether the layer is on at `at`.
    pub fn allows(&self, at: i64) -> bool {
        if self.is_unrestricted() {
            return true;
        }
        self.spans_around(at, -LOOK_BACK_DAYS, 0)
            .any(|(from, to)| from <= at && at < to)
    }

    /// The first window edge strictly after `at` (`None`: unrestricted).
    pub fn next_change(&self, at: i64) -> Option<i64> {
        if self.is_unrestricted() {
            return None;
        }
        self.spans_around(at, -LOOK_BACK_DAYS, LOOK_AHEAD_DAYS)
            .flat_map(|(from, to)| [from, to])
            .filter(|&edge| edge > at)
            .min()
    }

    /// Every window (as unix seconds) starting on a local date from
    /// `first` to `last` days around the local date of `at`.
    fn spans_around(
        &self,
        at: i64,
        first: i64,
        last: i64,
    ) -> impl Iterator<Item = (i64, i64)> + '_ {
        let tz = self.tz.clone().unwrap_or(TimeZone::UTC);
        let today = Timestamp::from_second(at)
            .ok()
            .map(|t| t.to_zoned(tz.clone()).date());
        (first..=last)
            .filter_map(move |offset| today?.checked_add(jiff::Span::new().days(offset)).ok())
            .flat_map(move |date| {
                let tz = tz.clone();
                let bit = 1u8 << (date.weekday().to_monday_one_offset() - 1);
                self.windows
                    .iter()
                    .filter(move |(days, _, _)| days & bit != 0)
                    .filter_map(move |&(_, from, to)| {
                        let end_date = if to > from {
                            date
                        } else {
                            date.tomorrow().ok()?
                        };
                        Some((local(&tz, date, from)?, local(&tz, end_date, to)?))
                    })
            })
    }
}

/// `minute` of local `date` (1440 is the next midnight) as unix seconds.
fn local(tz: &TimeZone, date: Date, minute: u16) -> Option<i64> {
    let (date, minute) = if minute >= 1440 {
        (date.tomorrow().ok()?, minute - 1440)
    } else {
        (date, minute)
    };
    let hour = i8::try_from(minute / 60).ok()?;
    let min = i8::try_from(minute % 60).ok()?;
    let civil = date.at(hour, min, 0, 0);
    Some(
        tz.to_ambiguous_zoned(civil)
            .compatible()
            .ok()?
            .timestamp()
            .as_second(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    fn shanghai() -> TimeZone {
        TimeZone::get("Asia/Shanghai").unwrap()
    }

    #[test]
    fn weekday_office_hours_in_local_time() {
        // Monday to Friday 09:00–18:00 Shanghai (UTC+8).
        let r = Restrictions::new(&shanghai(), vec![(0b0011111, 540, 1080)]);
        assert!(r.allows(ts("2026-12-07T01:00:00Z")), "Mon 09:00 local");
        assert!(!r.allows(ts("2026-12-07T00:59:59Z")), "Mon 08:59 local");
        assert!(!r.allows(ts("2026-12-07T10:00:00Z")), "Mon 18:00 local");
        assert!(!r.allows(ts("2026-12-12T03:00:00Z")), "Saturday");
        assert_eq!(
            r.next_change(ts("2026-12-04T12:00:00Z")),
            Some(ts("2026-12-07T01:00:00Z")),
            "Friday evening: next edge is Monday 09:00"
        );
    }

    #[test]
    fn overnight_window_runs_into_the_next_day() {
        // Friday 22:00 to Saturday 06:00 Shanghai.
        let r = Restrictions::new(&shanghai(), vec![(1 << 4, 1320, 360)]);
        assert!(r.allows(ts("2026-12-04T14:00:00Z")), "Fri 22:00 local");
        assert!(r.allows(ts("2026-12-04T21:59:59Z")), "Sat 05:59 local");
        assert!(!r.allows(ts("2026-12-04T22:00:00Z")), "Sat 06:00 local");
        assert!(
            !r.allows(ts("2026-12-05T14:00:00Z")),
            "Sat 22:00: not listed"
        );
        assert_eq!(
            r.next_change(ts("2026-12-04T15:00:00Z")),
            Some(ts("2026-12-04T22:00:00Z"))
        );
    }

    #[test]
    fn whole_day_window_ends_at_local_midnight_across_dst() {
        // Sunday 00:00–24:00 Berlin on 2026-03-29 lasts 23 hours.
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let r = Restrictions::new(&berlin, vec![(1 << 6, 0, 1440)]);
        let start = ts("2026-03-28T23:00:00Z");
        assert!(r.allows(start));
        assert!(!r.allows(start - 1));
        assert_eq!(r.next_change(start), Some(start + 23 * 3600));
    }
}
