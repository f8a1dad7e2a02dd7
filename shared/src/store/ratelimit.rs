//! The shared rate-limit counter: one item per integration and minute holds
//! the minute's count and one count per second. One conditional `UpdateItem`
//! per request both checks and counts, so every instance sees the same totals,
//! and a refused request writes nothing.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure};

use super::items::{get_opt_n, key, n};
use super::{storage_error, Store};
use crate::error::ApiResult;
use crate::intake::ratelimit::{windows, RateLimit};

impl Store {
    /// `Ok(None)`: admitted and counted. `Ok(Some(minute_full))`: refused, and
    /// whether the per-minute (else the per-second) limit refused it.
    pub async fn admit_request(
        &self,
        integration_id: &str,
        limit: &RateLimit,
        now_ms: i64,
    ) -> ApiResult<Option<bool>> {
        let (minute, second) = windows(now_ms);
        let second_attr = format!("s{second}");
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("RL#{integration_id}#{minute}"), "RL")))
            .update_expression("ADD m :one, #s :one SET expires_at = :expires")
            .condition_expression(
                "(attribute_not_exists(m) OR m < :per_minute) AND (attribute_not_exists(#s) OR #s < :per_second)",
            )
            .expression_attribute_names("#s", &second_attr)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":per_minute", n(i64::from(limit.per_minute)))
            .expression_attribute_values(":per_second", n(i64::from(limit.per_second)))
            // Kept a little past its minute, then DynamoDB's TTL removes it.
            .expression_attribute_values(":expires", n((minute + 2) * 60))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.count(out.consumed_capacity());
                Ok(None)
            }
            Err(err) => {
                self.meter
                    .requests
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match err.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(e)) => {
                        let minute_count = e.item().and_then(|i| get_opt_n(i, "m")).unwrap_or(0);
                        Ok(Some(minute_count >= i64::from(limit.per_minute)))
                    }
                    _ => Err(storage_error("UpdateItem", err)),
                }
            }
        }
    }
}
