//! The shared rate-limit counter: one item per integration and minute holds
//! the minute's count and one count per second. An instance leases tokens
//! from it in blocks with one conditional `UpdateItem` (see
//! `intake::ratelimit`), so every instance sees the same totals, a refused
//! request writes nothing, and a busy instance writes once per block.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure};

use super::items::{get_opt_n, key, n};
use super::{storage_error, Store, Units};
use crate::error::ApiResult;
use crate::intake::ratelimit::{lease_block, windows, Lease, RateLimit};

/// This instance's leases, one per integration.
#[derive(Default)]
pub struct Leases(Mutex<HashMap<String, Lease>>);

impl Leases {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Lease>) -> T) -> T {
        // A poisoned lock only means another task panicked mid-update of a
        // token count; the map is still usable.
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut map)
    }
}

/// What one lease request got.
enum Leased {
    Granted,
    /// The block did not fit, but tokens remain in both windows.
    TooBig,
    /// Both windows' remainder is zero: whether the minute (else the second) is full.
    Full {
        minute_full: bool,
    },
}

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
        // `None`: a token of this instance's lease admits the push, no write.
        let leased = self
            .leases
            .with(|leases| match leases.get_mut(integration_id) {
                Some(lease) => {
                    if lease.take(minute, second) {
                        None
                    } else {
                        Some(lease_block(limit, Some(lease), minute, second))
                    }
                }
                None => Some(lease_block(limit, None, minute, second)),
            });
        let Some(mut block) = leased else {
            return Ok(None);
        };
        loop {
            match self
                .lease_tokens(integration_id, limit, minute, second, block)
                .await?
            {
                Leased::Granted => {
                    self.leases.with(|leases| {
                        let lease = leases.entry(integration_id.to_string()).or_insert(Lease {
                            minute,
                            second,
                            remaining: 0,
                            block,
                        });
                        // Concurrent requests of one instance may lease at
                        // once: tokens still held for this second are kept.
                        let kept = if lease.minute == minute && lease.second == second {
                            lease.remaining
                        } else {
                            0
                        };
                        *lease = Lease {
                            minute,
                            second,
                            remaining: kept + block - 1,
                            block,
                        };
                    });
                    return Ok(None);
                }
                // The last tokens of a window go one at a time, so a push is
                // refused only when the counter is full.
                Leased::TooBig if block > 1 => block = 1,
                // One token did not fit yet some remain: a racing writer
                // between the check and the answer; refuse this push rather than loop.
                Leased::TooBig => {
                    return self.refuse_unless_leased(integration_id, false, minute, second)
                }
                Leased::Full { minute_full } => {
                    return self.refuse_unless_leased(integration_id, minute_full, minute, second)
                }
            }
        }
    }

    /// A full counter refuses the push, unless a concurrent request of this
    /// same instance has leased tokens meanwhile: those serve it first.
    fn refuse_unless_leased(
        &self,
        integration_id: &str,
        minute_full: bool,
        minute: i64,
        second: u32,
    ) -> ApiResult<Option<bool>> {
        let took = self.leases.with(|leases| {
            leases
                .get_mut(integration_id)
                .is_some_and(|lease| lease.take(minute, second))
        });
        Ok(if took { None } else { Some(minute_full) })
    }

    async fn lease_tokens(
        &self,
        integration_id: &str,
        limit: &RateLimit,
        minute: i64,
        second: u32,
        block: u32,
    ) -> ApiResult<Leased> {
        self.meter
            .limiter_requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let second_attr = format!("s{second}");
        let (per_minute, per_second) = (i64::from(limit.per_minute), i64::from(limit.per_second));
        let block = i64::from(block);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("RL#{integration_id}#{minute}"), "RL")))
            .update_expression("ADD m :block, #s :block SET expires_at = :expires")
            .condition_expression(
                "(attribute_not_exists(m) OR m <= :minute_room) AND (attribute_not_exists(#s) OR #s <= :second_room)",
            )
            .expression_attribute_names("#s", &second_attr)
            .expression_attribute_values(":block", n(block))
            .expression_attribute_values(":minute_room", n(per_minute - block))
            .expression_attribute_values(":second_room", n(per_second - block))
            // Kept a little past its minute, then DynamoDB's TTL removes it.
            .expression_attribute_values(":expires", n((minute + 2) * 60))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.count(Units::Write, out.consumed_capacity());
                Ok(Leased::Granted)
            }
            Err(err) => {
                self.meter
                    .requests
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match err.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(e)) => {
                        let old = e.item();
                        let minute_used = old.and_then(|i| get_opt_n(i, "m")).unwrap_or(0);
                        let second_used = old.and_then(|i| get_opt_n(i, &second_attr)).unwrap_or(0);
                        let available = (per_minute - minute_used).min(per_second - second_used);
                        if available > 0 {
                            Ok(Leased::TooBig)
                        } else {
                            Ok(Leased::Full {
                                minute_full: minute_used >= per_minute,
                            })
                        }
                    }
                    _ => Err(storage_error("UpdateItem", err)),
                }
            }
        }
    }
}
