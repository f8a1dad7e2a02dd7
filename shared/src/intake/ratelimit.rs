//! Per-integration rate limits (SPEC section 2): fixed one-second and
//! one-minute windows on each Lambda's clock, counted in one DynamoDB item
//! per integration and minute so that every instance shares the count.

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
