//! The shared rate-limit counter: one item per integration and minute holds
//! the minute's leased count `m` and one leased count per second `sN`, and
//! the known-accepted counts `am` and `aN` (see `rules::ratelimit`). An
//! instance leases tokens in blocks with one conditional `UpdateItem` on the
//! leased counts; when they are full, one token with one conditional
//! `UpdateItem` on the known-accepted counts. Every instance sees the same
//! totals, a refused request writes nothing, and a busy instance writes once
//! per block.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure};

use super::items::{get_opt_n, key, n};
use super::{storage_error, Store, Units};
use crate::error::ApiResult;
use crate::rules::ratelimit::{lease_block, windows, Lease, RateLimit, Report};

/// This instance's leases, one per integration, and one counter-write lock
/// per integration.
#[derive(Default)]
pub struct Leases {
    leases: Mutex<HashMap<String, Lease>>,
    writers: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Leases {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Lease>) -> T) -> T {
        // A poisoned lock only means another task panicked mid-update of a
        // token count; the map is still usable.
        let mut map = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut map)
    }

    /// One counter write at a time per integration in this instance: a write
    /// carries every use this instance has not reported, so a second write
    /// racing it would be checked without them and admit past the limit. A
    /// Lambda instance serves one request at a time, so this only orders the
    /// concurrent requests of a long-running server (`make run`, tests).
    fn writer(&self, integration_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.writers.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(integration_id.to_string()).or_default().clone()
    }
}

/// What one lease request got.
enum Leased {
    Granted,
    /// The block did not fit in the leased counts, but tokens remain there.
    TooBig,
    /// The leased counts are full (in the exact path: the known-accepted
    /// counts): whether the minute (else the second) is full.
    Full {
        minute_full: bool,
    },
}

/// One push's windows and what its counter write reports.
struct Window<'a> {
    integration_id: &'a str,
    limit: &'a RateLimit,
    minute: i64,
    second: u32,
    report: Report,
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
        // A token of this instance's lease admits the push, no write.
        let took = |leases: &Leases| {
            leases.with(|leases| {
                leases
                    .get_mut(integration_id)
                    .is_some_and(|lease| lease.take(minute, second))
            })
        };
        if took(&self.leases) {
            return Ok(None);
        }
        let writer = self.leases.writer(integration_id);
        let _writing = writer.lock().await;
        // The write before this one may have leased tokens meanwhile.
        if took(&self.leases) {
            return Ok(None);
        }
        let (mut block, report) = self
            .leases
            .with(|leases| match leases.get_mut(integration_id) {
                Some(lease) => (
                    lease_block(limit, Some(lease), minute, second),
                    lease.take_report(minute, second),
                ),
                None => (lease_block(limit, None, minute, second), Report::default()),
            });
        let w = Window {
            integration_id,
            limit,
            minute,
            second,
            report,
        };
        let result = loop {
            match self.lease_tokens(&w, block, false).await {
                Ok(Leased::TooBig) if block > 1 => block = 1,
                // The leased counts are full, yet tokens leased by other
                // instances may lie unused: the known-accepted counts decide.
                Ok(Leased::TooBig | Leased::Full { .. }) => {
                    break self.lease_tokens(&w, 1, true).await.map(|l| (l, 1))
                }
                other => break other.map(|l| (l, block)),
            }
        };
        match result {
            Ok((Leased::Granted, block)) => {
                self.keep_lease(&w, block);
                Ok(None)
            }
            Ok((Leased::Full { minute_full }, _)) => {
                self.restore_report(&w);
                self.refuse_unless_leased(integration_id, minute_full, minute, second)
            }
            Ok((Leased::TooBig, _)) => {
                // One token did not fit yet some remain: a racing writer
                // between the check and the answer; refuse rather than loop.
                self.restore_report(&w);
                self.refuse_unless_leased(integration_id, false, minute, second)
            }
            Err(e) => {
                self.restore_report(&w);
                Err(e)
            }
        }
    }

    /// Records a granted block as this instance's lease for the second.
    fn keep_lease(&self, w: &Window<'_>, block: u32) {
        let (minute, second) = (w.minute, w.second);
        self.leases.with(|leases| {
            let fresh = Lease {
                minute,
                second,
                remaining: 0,
                block,
                unreported: 0,
                unreported_in_second: 0,
            };
            let lease = leases.entry(w.integration_id.to_string()).or_insert(fresh);
            // Concurrent requests of one instance may lease at once: tokens
            // still held for this second are kept, and so are uses not yet
            // reported in these windows (never those of another window: an
            // over-report could refuse below the limit).
            let same_second = lease.minute == minute && lease.second == second;
            *lease = Lease {
                remaining: if same_second { lease.remaining } else { 0 } + block - 1,
                unreported: if lease.minute == minute {
                    lease.unreported
                } else {
                    0
                },
                unreported_in_second: if same_second {
                    lease.unreported_in_second
                } else {
                    0
                },
                ..fresh
            };
        });
    }

    fn restore_report(&self, w: &Window<'_>) {
        self.leases.with(|leases| {
            if let Some(lease) = leases.get_mut(w.integration_id) {
                lease.restore(w.report, w.minute, w.second);
            }
        });
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

    /// One conditional write: `block` tokens if the leased counts have room
    /// (`exact` false), or one token if the known-accepted counts, with this
    /// write's report, are below the limits (`exact` true). Either way the
    /// write adds the report and this push to the known-accepted counts.
    async fn lease_tokens(&self, w: &Window<'_>, block: u32, exact: bool) -> ApiResult<Leased> {
        self.meter
            .limiter_requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let second_attr = format!("s{}", w.second);
        let accepted_attr = format!("a{}", w.second);
        let (per_minute, per_second) =
            (i64::from(w.limit.per_minute), i64::from(w.limit.per_second));
        let block = i64::from(block);
        let (minute_report, second_report) = (
            i64::from(w.report.in_minute) + 1,
            i64::from(w.report.in_second) + 1,
        );
        let (condition, minute_room, second_room) = if exact {
            (
                "(attribute_not_exists(am) OR am < :minute_room) AND (attribute_not_exists(#a) OR #a < :second_room)",
                per_minute - minute_report + 1,
                per_second - second_report + 1,
            )
        } else {
            (
                "(attribute_not_exists(m) OR m <= :minute_room) AND (attribute_not_exists(#s) OR #s <= :second_room)",
                per_minute - block,
                per_second - block,
            )
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("RL#{}#{}", w.integration_id, w.minute), "RL")))
            .update_expression(
                "ADD m :block, #s :block, am :minute_report, #a :second_report SET expires_at = :expires",
            )
            .condition_expression(condition)
            .expression_attribute_names("#s", &second_attr)
            .expression_attribute_names("#a", &accepted_attr)
            .expression_attribute_values(":block", n(block))
            .expression_attribute_values(":minute_report", n(minute_report))
            .expression_attribute_values(":second_report", n(second_report))
            .expression_attribute_values(":minute_room", n(minute_room))
            .expression_attribute_values(":second_room", n(second_room))
            // Kept a little past its minute, then DynamoDB's TTL removes it.
            .expression_attribute_values(":expires", n((w.minute + 2) * 60))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.count(Units::Write, out.consumed_capacity());
                Ok(Leased::Granted)
            }
            Err(err) => match err.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(e)) => {
                    self.count_refused_write(e.item());
                    let old = e.item();
                    let count = |name: &str| old.and_then(|i| get_opt_n(i, name)).unwrap_or(0);
                    let (minute_used, second_used) = if exact {
                        (
                            count("am") + minute_report - 1,
                            count(&accepted_attr) + second_report - 1,
                        )
                    } else {
                        (count("m"), count(&second_attr))
                    };
                    let available = (per_minute - minute_used).min(per_second - second_used);
                    if available > 0 && !exact {
                        Ok(Leased::TooBig)
                    } else {
                        Ok(Leased::Full {
                            minute_full: minute_used >= per_minute,
                        })
                    }
                }
                _ => {
                    self.count(Units::Write, None);
                    Err(storage_error("UpdateItem", err))
                }
            },
        }
    }
}
