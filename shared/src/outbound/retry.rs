//! When a delivery that failed is tried again (SPEC 11): after its quick
//! attempts, about 30 s, 1, 2, 5, 10 and 30 minutes after the change, then
//! every hour until 24 hours after it; then it has failed for good. "The
//! change" is when the notify function first handled it (seconds after it
//! was made): an event's own time may be the sender's, hours old, and a
//! resend is a new delivery with its own 24 hours.
//!
//! `DELIVERY_RETRY_SPEEDUP` (read once at start, default 1) divides every
//! offset: tests and demos run the same schedule in milliseconds. Production
//! leaves it unset.

/// Offsets from the change, in seconds, before the hourly ones.
const STEPS_SECS: [i64; 6] = [30, 60, 120, 300, 600, 1800];
const HOUR_SECS: i64 = 3600;
/// The last attempt is at most this long after the change.
pub const HORIZON_SECS: i64 = 24 * HOUR_SECS;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    /// Every offset is divided by this (1 in production).
    pub speedup: i64,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule { speedup: 1 }
    }
}

impl RetrySchedule {
    pub fn from_env() -> RetrySchedule {
        let speedup = std::env::var("DELIVERY_RETRY_SPEEDUP")
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|v| *v >= 1)
            .unwrap_or(1);
        RetrySchedule { speedup }
    }

    /// Every attempt's offset from the change, in ms.
    fn offsets_ms(&self) -> impl Iterator<Item = i64> + '_ {
        let hourly = (1..=HORIZON_SECS / HOUR_SECS).map(|h| h * HOUR_SECS);
        STEPS_SECS
            .into_iter()
            .chain(hourly)
            .map(move |s| s * 1000 / self.speedup)
    }

    /// When to try a change made at `changed_ms` next, after an attempt
    /// that failed at `now_ms`; `None` once its 24 hours are over.
    pub fn next_attempt(&self, changed_ms: i64, now_ms: i64) -> Option<i64> {
        self.offsets_ms()
            .map(|o| changed_ms + o)
            .find(|at| *at > now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_of_spec_11() {
        let s = RetrySchedule::default();
        let t0 = 1_000_000_000;
        let mut at = t0 + 100; // the quick attempts failed
        let mut seen = Vec::new();
        while let Some(next) = s.next_attempt(t0, at) {
            seen.push((next - t0) / 1000);
            at = next;
        }
        let mut want = vec![30, 60, 120, 300, 600, 1800];
        want.extend((1..=24).map(|h| h * 3600));
        assert_eq!(seen, want);
        // A late tick skips the attempts it missed rather than bunching them.
        assert_eq!(s.next_attempt(t0, t0 + 400_000), Some(t0 + 600_000));
        assert_eq!(s.next_attempt(t0, t0 + 86_400_000), None);
    }

    #[test]
    fn a_speedup_shortens_every_offset() {
        let s = RetrySchedule { speedup: 1000 };
        assert_eq!(s.next_attempt(0, 0), Some(30));
        assert_eq!(s.next_attempt(0, 30), Some(60));
        assert_eq!(s.next_attempt(0, 86_400), None);
    }
}
