//! One layer's rotation: who holds the shift at a moment and when the next
//! handoff is. Hour shifts are elapsed time; day and week shifts are counted
//! in the schedule's time zone from `start`, so a 09:00 handoff stays at
//! 09:00 local time and the shift over a daylight-saving change lasts 23 or
//! 25 hours.

use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Zoned};

use super::ShiftUnit;

#[derive(Clone, Debug)]
pub struct Rotation {
    members: usize,
    start: i64,
    step: Step,
}

#[derive(Clone, Debug)]
enum Step {
    /// Elapsed seconds per shift.
    Seconds(i64),
    /// Calendar days per shift, added to the local start.
    Days { days: i64, start: Box<Zoned> },
}

/// A shift of one rotation: the index into `member_ids` and its bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Turn {
    pub member: usize,
    pub from: i64,
    pub to: Option<i64>,
}

impl Rotation {
    /// `None` when `start` is not a representable time (validation refuses it).
    pub fn new(
        tz: &TimeZone,
        members: usize,
        start: i64,
        unit: ShiftUnit,
        length: u32,
    ) -> Option<Self> {
        let length = i64::from(length);
        let step = match unit {
            ShiftUnit::Hours => Step::Seconds(length * 3600),
            ShiftUnit::Days | ShiftUnit::Weeks => {
                let days = if unit == ShiftUnit::Weeks {
                    length * 7
                } else {
                    length
                };
                let start = Timestamp::from_second(start).ok()?.to_zoned(tz.clone());
                Step::Days {
                    days,
                    start: Box::new(start),
                }
            }
        };
        Some(Rotation {
            members: members.max(1),
            start,
            step,
        })
    }

    /// The `k`-th handoff (0 is `start`), or `None` past the end of time.
    fn handoff(&self, k: i64) -> Option<i64> {
        match &self.step {
            Step::Seconds(len) => k.checked_mul(*len)?.checked_add(self.start),
            Step::Days { days, start } => {
                let span = Span::new().try_days(k.checked_mul(*days)?).ok()?;
                Some(start.checked_add(span).ok()?.timestamp().as_second())
            }
        }
    }

    fn nominal_secs(&self) -> i64 {
        match &self.step {
            Step::Seconds(len) => *len,
            Step::Days { days, .. } => days * 86_400,
        }
    }

    /// The shift holding `at`; `None` before the first handoff.
    pub fn turn_at(&self, at: i64) -> Option<Turn> {
        if at < self.start {
            return None;
        }
        // A calendar shift differs from its nominal length by at most a few
        // hours, so the estimate is off by at most one in either direction.
        let mut k = (at - self.start) / self.nominal_secs();
        while k > 0 && self.handoff(k).is_none_or(|h| h > at) {
            k -= 1;
        }
        while self.handoff(k + 1).is_some_and(|h| h <= at) {
            k += 1;
        }
        let from = self.handoff(k)?;
        let members = i64::try_from(self.members).ok()?;
        let member = usize::try_from(k.rem_euclid(members)).ok()?;
        Some(Turn {
            member,
            from,
            to: self.handoff(k + 1),
        })
    }

    /// The first handoff strictly after `at`.
    pub fn next_change(&self, at: i64) -> Option<i64> {
        if at < self.start {
            return Some(self.start);
        }
        self.turn_at(at)?.to
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap()
    }

    fn ts(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    #[test]
    fn daily_handoff_keeps_local_time_across_spring_forward() {
        // 2026-03-29: Berlin goes from 02:00 CET to 03:00 CEST.
        let start = ts("2026-03-23T08:00:00Z"); // Monday 09:00 CET
        let r = Rotation::new(&berlin(), 3, start, ShiftUnit::Days, 1).unwrap();
        let sat = r.turn_at(ts("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(sat.from, ts("2026-03-28T08:00:00Z"));
        assert_eq!(sat.to, Some(ts("2026-03-29T07:00:00Z")), "09:00 CEST");
        let sun = r.turn_at(ts("2026-03-29T07:00:00Z")).unwrap();
        assert_eq!(sun.to.unwrap() - sun.from, 24 * 3600);
        assert_eq!(sat.to.unwrap() - sat.from, 23 * 3600);
        assert_eq!((sat.member + 1) % 3, sun.member);
    }

    #[test]
    fn hour_shifts_are_elapsed_time() {
        let start = ts("2026-03-28T12:00:00Z");
        let r = Rotation::new(&berlin(), 2, start, ShiftUnit::Hours, 12).unwrap();
        let t = r.turn_at(ts("2026-03-29T12:30:00Z")).unwrap();
        assert_eq!(t.from, ts("2026-03-29T12:00:00Z"));
        assert_eq!(t.member, 0);
        assert_eq!(r.next_change(start - 1), Some(start));
        assert_eq!(r.turn_at(start - 1), None);
    }

    #[test]
    fn weekly_rotation_wraps_through_members() {
        let start = ts("2026-01-05T08:00:00Z"); // Monday 09:00 CET
        let r = Rotation::new(&berlin(), 3, start, ShiftUnit::Weeks, 1).unwrap();
        let members: Vec<usize> = (0..7)
            .map(|w| r.turn_at(start + w * 7 * 86_400 + 3600).unwrap().member)
            .collect();
        assert_eq!(members, vec![0, 1, 2, 0, 1, 2, 0]);
        // The week holding the spring change is one hour short.
        let t = r.turn_at(ts("2026-03-29T12:00:00Z")).unwrap();
        assert_eq!(t.from, ts("2026-03-23T08:00:00Z"));
        assert_eq!(t.to, Some(ts("2026-03-30T07:00:00Z")));
    }
}
