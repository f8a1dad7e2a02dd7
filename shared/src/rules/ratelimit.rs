//! Per-integration rate limits (SPEC section 2): fixed one-second and
//! one-minute windows on each Lambda's clock, counted in one DynamoDB item
//! per integration and minute so that every instance shares the count.
//!
//! An instance takes its tokens from that counter in blocks (a lease valid
//! for one second), so a busy instance writes the counter once per block
//! rather than once per push. Leased tokens that an instance does not use are
//! lost for the second, so a full count of leased tokens does not mean the
//! limit was reached. The counter therefore also keeps, per window, how many
//! pushes are known to be accepted: each counter write reports the tokens its
//! instance used since its last write (plus the push that writes). When the
//! leased count is full, a push takes a single token by a conditional write
//! on that known count instead, so a push is refused only once at least the
//! limit is known to be accepted (SPEC 16). What other instances used and
//! have not reported yet is the overshoot: at most `MAX_LEASE - 1` per
//! instance that leased in the window (docs/delivery.md).

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

pub const MAX_RATE: u32 = 1_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    #[serde(default = "default_per_second")]
    pub per_second: u32,
    #[serde(default = "default_per_minute")]
    pub per_minute: u32,
}

fn default_per_second() -> u32 {
    100
}

fn default_per_minute() -> u32 {
    1000
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: default_per_second(),
            per_minute: default_per_minute(),
        }
    }
}

impl RateLimit {
    pub fn validate(&self) -> ApiResult<()> {
        for (name, v) in [
            ("per_second", self.per_second),
            ("per_minute", self.per_minute),
        ] {
            if v == 0 || v > MAX_RATE {
                return Err(ApiError::invalid(format!(
                    "rate_limit.{name}: must be 1 to {MAX_RATE}"
                )));
            }
        }
        Ok(())
    }
}

/// The windows a request at `now_ms` counts in: (minute since epoch, second within it).
pub fn windows(now_ms: i64) -> (i64, u32) {
    let secs = now_ms.div_euclid(1000);
    (secs.div_euclid(60), secs.rem_euclid(60) as u32)
}

/// Never lease more than this many tokens at once: it bounds what an
/// instance can hold unused in one second.
pub const MAX_LEASE: u32 = 16;

/// Tokens an instance holds for one integration, valid within one second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub minute: i64,
    pub second: u32,
    /// Tokens of this lease not used yet.
    pub remaining: u32,
    /// How many tokens the lease took.
    pub block: u32,
    /// Tokens taken from this instance's leases of `minute` and not yet
    /// reported to the shared counter (see [`Report`]).
    pub unreported: u32,
    /// Of those, the ones taken in `second`.
    pub unreported_in_second: u32,
}

impl Lease {
    fn is_for(&self, minute: i64, second: u32) -> bool {
        self.minute == minute && self.second == second
    }

    fn in_second_before(&self, minute: i64, second: u32) -> bool {
        let at = self.minute * 60 + i64::from(self.second);
        at + 1 == minute * 60 + i64::from(second)
    }

    /// Takes one token if this lease is for the given second and has one.
    pub fn take(&mut self, minute: i64, second: u32) -> bool {
        if self.is_for(minute, second) && self.remaining > 0 {
            self.remaining -= 1;
            self.unreported += 1;
            self.unreported_in_second += 1;
            true
        } else {
            false
        }
    }

    /// Takes out what a counter write at (`minute`, `second`) reports: the
    /// tokens used since the last write that count in those windows.
    pub fn take_report(&mut self, minute: i64, second: u32) -> Report {
        let report = Report {
            in_minute: if self.minute == minute {
                self.unreported
            } else {
                0
            },
            in_second: if self.is_for(minute, second) {
                self.unreported_in_second
            } else {
                0
            },
        };
        self.unreported = 0;
        self.unreported_in_second = 0;
        report
    }

    /// Puts back a report whose write did not happen.
    pub fn restore(&mut self, report: Report, minute: i64, second: u32) {
        if self.minute == minute {
            self.unreported += report.in_minute;
            if self.second == second {
                self.unreported_in_second += report.in_second;
            }
        }
    }
}

/// Tokens an instance used since its last counter write, per window; the
/// write adds them (and its own push) to the window's known-accepted count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub in_minute: u32,
    pub in_second: u32,
}

/// How many tokens to lease for a push at (`minute`, `second`), given this
/// instance's last lease: one when idle; as many as it used last second when
/// it is busy; double when it ran out within this second. Capped by
/// [`MAX_LEASE`], a quarter of the per-second limit and a sixtieth of the
/// per-minute limit, so a lease never takes a large share of either window.
pub fn lease_block(limit: &RateLimit, last: Option<&Lease>, minute: i64, second: u32) -> u32 {
    let cap = MAX_LEASE
        .min(limit.per_second / 4)
        .min(limit.per_minute / 60)
        .max(1);
    let wanted = match last {
        Some(l) if l.is_for(minute, second) => l.block.saturating_mul(2),
        // Concurrent requests of one instance can leave more tokens than
        // the last block (see `Store::admit_request`): then it used few.
        Some(l) if l.in_second_before(minute, second) => l.block.saturating_sub(l.remaining),
        _ => 1,
    };
    wanted.clamp(1, cap)
}

/// Seconds until the window that refused the request ends.
pub fn retry_after(minute_full: bool, now_ms: i64) -> u64 {
    if minute_full {
        u64::from(60 - windows(now_ms).1)
    } else {
        1
    }
}

pub fn too_frequent(limit: &RateLimit, minute_full: bool, now_ms: i64) -> ApiError {
    let (which, value) = if minute_full {
        ("per_minute", limit.per_minute)
    } else {
        ("per_second", limit.per_second)
    };
    ApiError::RequestTooFrequently {
        message: format!(
            "rate_limit.{which}: this integration accepts at most {value} requests per {}",
            &which[4..]
        ),
        retry_after_secs: retry_after(minute_full, now_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_retry_after() {
        assert_eq!(windows(1_763_626_845_500), (29_393_780, 45));
        assert_eq!(retry_after(true, 1_763_626_845_500), 15);
        assert_eq!(retry_after(false, 1_763_626_845_500), 1);
        let e = too_frequent(&RateLimit::default(), false, 0);
        assert_eq!(e.status(), 429);
        assert!(e.message().contains("per_second") && e.message().contains("100"));
    }

    #[test]
    fn leases_grow_within_a_busy_second_and_shrink_when_idle() {
        let limit = RateLimit::default(); // 100/s, 1000/min: cap 16
        let (m, s) = (29_393_780, 45);
        assert_eq!(lease_block(&limit, None, m, s), 1);
        let used = |block| Lease {
            minute: m,
            second: s,
            remaining: 0,
            block,
            unreported: 0,
            unreported_in_second: 0,
        };
        // Ran out within the same second: double, up to the cap.
        assert_eq!(lease_block(&limit, Some(&used(1)), m, s), 2);
        assert_eq!(lease_block(&limit, Some(&used(8)), m, s), 16);
        assert_eq!(lease_block(&limit, Some(&used(16)), m, s), 16);
        // The next second starts from what the last lease actually served.
        assert_eq!(lease_block(&limit, Some(&used(8)), m, s + 1), 8);
        let half_used = Lease {
            remaining: 5,
            ..used(8)
        };
        assert_eq!(lease_block(&limit, Some(&half_used), m, s + 1), 3);
        let merged = Lease {
            remaining: 12,
            ..used(8)
        };
        assert_eq!(lease_block(&limit, Some(&merged), m, s + 1), 1);
        // Across a minute boundary too; after a quiet second, back to one.
        let last_second = Lease {
            second: 59,
            ..used(8)
        };
        assert_eq!(lease_block(&limit, Some(&last_second), m + 1, 0), 8);
        assert_eq!(lease_block(&limit, Some(&used(8)), m, s + 2), 1);
    }

    #[test]
    fn small_limits_lease_one_token_at_a_time() {
        let busy = Lease {
            minute: 1,
            second: 0,
            remaining: 0,
            block: 16,
            unreported: 0,
            unreported_in_second: 0,
        };
        for (per_second, per_minute) in [(3, 1000), (100, 100), (1, 1)] {
            let limit = RateLimit {
                per_second,
                per_minute,
            };
            assert_eq!(lease_block(&limit, Some(&busy), 1, 0), 1, "{limit:?}");
        }
    }

    #[test]
    fn a_lease_serves_only_its_own_second() {
        let mut lease = Lease {
            minute: 7,
            second: 3,
            remaining: 2,
            block: 3,
            unreported: 0,
            unreported_in_second: 0,
        };
        assert!(!lease.take(7, 4));
        assert!(!lease.take(8, 3));
        assert!(lease.take(7, 3) && lease.take(7, 3));
        assert!(!lease.take(7, 3));
        assert_eq!((lease.unreported, lease.unreported_in_second), (2, 2));
    }

    #[test]
    fn a_write_reports_the_tokens_used_since_the_last_one_in_its_windows() {
        let mut lease = Lease {
            minute: 7,
            second: 3,
            remaining: 3,
            block: 4,
            unreported: 0,
            unreported_in_second: 0,
        };
        assert!(lease.take(7, 3) && lease.take(7, 3));
        // A write in the same second reports both tokens in both windows.
        let mut same = lease;
        let r = same.take_report(7, 3);
        assert_eq!(
            r,
            Report {
                in_minute: 2,
                in_second: 2
            }
        );
        assert_eq!(same.take_report(7, 3), Report::default(), "reported once");
        // Put back when the write did not happen.
        same.restore(r, 7, 3);
        assert_eq!(same.take_report(7, 3), r);
        // The next second of the minute: they count in the minute only.
        assert_eq!(
            lease.take_report(7, 4),
            Report {
                in_minute: 2,
                in_second: 0
            }
        );
        // Another minute's counter: nothing to report there.
        assert!(lease.take(7, 3));
        assert_eq!(lease.take_report(8, 0), Report::default());
    }

    #[test]
    fn validation() {
        assert!(RateLimit::default().validate().is_ok());
        assert!(RateLimit {
            per_second: 0,
            per_minute: 5
        }
        .validate()
        .is_err());
        let partial: RateLimit = serde_json::from_str(r#"{"per_second": 5}"#).unwrap();
        assert_eq!(
            partial,
            RateLimit {
                per_second: 5,
                per_minute: 1000
            }
        );
    }
}
