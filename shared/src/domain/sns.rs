//! What an SNS message's checks are configured with.

/// How far a `Notification`'s `Timestamp` may be from the receipt time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampWindow {
    pub max_age_ms: i64,
    pub max_ahead_ms: i64,
}

impl Default for TimestampWindow {
    /// SPEC 15: one hour old, five minutes ahead.
    fn default() -> Self {
        TimestampWindow {
            max_age_ms: 3_600_000,
            max_ahead_ms: 300_000,
        }
    }
}
