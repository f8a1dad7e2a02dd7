//! Escalation (SPEC 14) in the table:
//!
//! - a channel's escalation rules: one item in the channel's partition, so
//!   the push path reads them with the channel and its other rules in its
//!   one Query (config/rules.rs);
//! - the chain: attributes of the incident item (`escalation`, its
//!   `esc_version`, and while it waits for a time an entry in the due
//!   index), written only by the one incident writer (incidents/writer.rs);
//! - each notification: an item in the incident's partition; an email
//!   waiting to be sent (or to be retried) is also in the due index.
//!
//! A tick finds due chains with one Query of the due index
//! (`gsi4pk = DUE#escalation AND gsi4sk <= now`), never a scan.
//!
//! Why one file of about 500 lines: the rules, the chains' due reads and
//! the notification items share the due index's sort-key layout
//! (`chain_due_keys`, which the incident writer also uses, and
//! `notification_due_sk`), defined here once.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{Put, ReturnConsumedCapacity, TransactWriteItem};

use crate::engine::escalation::{Chain, EscalationRules, Via};
use crate::engine::step::IncidentStep;
use crate::error::{ApiError, ApiResult};
use crate::model::{Incident, Notification};
use crate::store::config::members::member_reference;
use crate::store::config::schedules::{schedule_pk, SCHEDULE_SK};
use crate::store::db::Cancelled;
use crate::store::items::*;
use crate::store::retries::GSI4;
use crate::store::{build_error, storage_error, Store, Units};

/// The due index's partition of chains waiting for a time.
pub const DUE_ESCALATIONS: &str = "DUE#escalation";
/// The due index's partition of emails waiting to be sent or retried.
pub const DUE_NOTIFICATIONS: &str = "DUE#notification";
/// A channel's escalation rules, in its partition.
pub const ESCALATION_SK: &str = "ESCALATION";
const NOTIFICATION_PREFIX: &str = "NOTIF#";
/// How long a tick holds an email it is sending: if it dies, the next tick
/// after this sends it.
pub const SEND_CLAIM_MS: i64 = 120_000;
/// Attempts at one email before it is `failed` for good: retries 1, 2, 4
/// and 8 minutes apart, so the last is about 15 minutes after the first.
pub const EMAIL_ATTEMPTS: u32 = 5;

/// The due index's keys of a chain due at `due_ms`.
pub fn chain_due_keys(due_ms: i64, incident_id: &str) -> (String, String) {
    (
        DUE_ESCALATIONS.to_string(),
        format!("{due_ms:015}#{incident_id}"),
    )
}

fn notification_due_sk(due_ms: i64, incident_id: &str, sk: &str) -> String {
    format!("{due_ms:015}#{incident_id}#{sk}")
}

/// A notification a page starts: the member, how, and (email) where to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNotification {
    pub member_id: String,
    pub via: Via,
    pub level: usize,
    /// `pending` (an email to send), `sent` or `failed`.
    pub status: &'static str,
    pub error: Option<String>,
    /// The email address (email only).
    pub address: Option<String>,
    /// The member's name, for the email's greeting.
    pub name: String,
}

/// An email notification waiting to be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEmail {
    pub incident_id: String,
    pub sk: String,
    pub member_id: String,
    pub address: String,
    pub name: String,
    pub level: usize,
    pub attempts: u32,
    /// The due-index sort key it was claimed under.
    pub due_sk: String,
}

fn via_name(via: Via) -> &'static str {
    match via {
        Via::Email => "email",
        Via::Im => "im",
    }
}

impl Store {
    // ---- rules ----

    pub async fn get_escalation_rules(&self, channel_id: &str) -> ApiResult<EscalationRules> {
        match self.get(channel_pk(channel_id), ESCALATION_SK).await? {
            Some(item) => escalation_from_item(&item),
            None => Ok(EscalationRules { rules: Vec::new() }),
        }
    }

    /// Every channel's escalation rules (for "still used by" when a member
    /// or schedule is deleted: rare, one GetItem per channel).
    pub async fn all_escalation_rules(&self) -> ApiResult<Vec<(String, EscalationRules)>> {
        let mut out = Vec::new();
        for channel in self.list_channels().await? {
            let rules = self.get_escalation_rules(&channel.channel_id).await?;
            if !rules.rules.is_empty() {
                out.push((channel.channel_id, rules));
            }
        }
        Ok(out)
    }

    /// Replace a channel's escalation rules, in one transaction that checks
    /// the channel and every schedule exist and references every member (a
    /// member delete racing this write is refused, store/config/members.rs).
    /// `Ok(false)` when one of them is gone (nothing written).
    pub async fn put_escalation_rules(
        &self,
        channel_id: &str,
        rules: &EscalationRules,
    ) -> ApiResult<bool> {
        let json = serde_json::to_string(rules)
            .map_err(|e| ApiError::internal(format!("could not encode escalation rules: {e}")))?;
        let mut item = key(channel_pk(channel_id), ESCALATION_SK);
        item.insert("rules".into(), s(json));
        let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(channel_pk(channel_id), "CHANNEL")))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(build_error)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(build_error)?;
        let mut items = vec![
            TransactWriteItem::builder().condition_check(check).build(),
            TransactWriteItem::builder().put(put).build(),
        ];
        let members: BTreeSet<&str> = rules
            .member_places()
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        for member_id in members {
            items.push(member_reference(&self.table, member_id)?);
        }
        let schedules: BTreeSet<&str> = rules
            .schedule_places()
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        for schedule_id in schedules {
            let exists = aws_sdk_dynamodb::types::ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key(schedule_pk(schedule_id), SCHEDULE_SK)))
                .condition_expression("attribute_exists(pk)")
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().condition_check(exists).build());
        }
        self.transact_plain(items).await
    }

    // ---- chains ----

    /// Incidents whose chain is due at `now_ms`, earliest first: one Query,
    /// after `after` (the previous page's last key). Answers the ids and
    /// this page's last key when there may be more: a chain whose step
    /// keeps failing stays due, and must not hide the ones behind it.
    pub async fn due_chains(
        &self,
        now_ms: i64,
        limit: i32,
        after: Option<Item>,
    ) -> ApiResult<(Vec<String>, Option<Item>)> {
        let (items, last) = self.due_page(DUE_ESCALATIONS, now_ms, limit, after).await?;
        let ids = items
            .iter()
            .filter_map(|item| Some(get_opt_s(item, "pk")?.strip_prefix("INC#")?.to_string()))
            .collect();
        Ok((ids, last))
    }

    async fn due_page(
        &self,
        partition: &str,
        now_ms: i64,
        limit: i32,
        after: Option<Item>,
    ) -> ApiResult<(Vec<Item>, Option<Item>)> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI4)
            .key_condition_expression("gsi4pk = :pk AND gsi4sk <= :now")
            .expression_attribute_values(":pk", s(partition))
            // Every sort key of a due time at or before now sorts below this.
            .expression_attribute_values(":now", s(format!("{now_ms:015}#~")))
            .limit(limit)
            .set_exclusive_start_key(after)
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .map_err(|e| storage_error("Query", e))?;
        self.count(Units::Read, page.consumed_capacity());
        Ok((page.items().to_vec(), page.last_evaluated_key().cloned()))
    }

    /// An incident and its chain, read strongly (one GetItem).
    pub async fn incident_with_chain(
        &self,
        incident_id: &str,
    ) -> ApiResult<Option<(Incident, Option<Chain>)>> {
        let Some(item) = self.get(incident_pk(incident_id), INCIDENT_SK).await? else {
            return Ok(None);
        };
        Ok(Some((item_to_incident(&item)?, chain_of(&item)?)))
    }

    /// Write an escalation step (or a person's action that also steps the
    /// chain) with the notifications its page starts, as one transaction.
    /// Answers the emails it left pending (claimed by this caller, to send
    /// now), or `None` when its guard or the chain's version did not hold
    /// (another tick or an action wrote first: read again).
    pub async fn write_escalation(
        &self,
        step: &IncidentStep,
        notifications: &[NewNotification],
    ) -> ApiResult<Option<Vec<PendingEmail>>> {
        let mut items = self.step_items(step)?;
        let mut pending = Vec::new();
        for (i, note) in notifications.iter().enumerate() {
            let sk = format!(
                "{NOTIFICATION_PREFIX}{:015}#{:03}#{}#{}",
                step.at_ms,
                i,
                note.member_id,
                via_name(note.via)
            );
            let mut item = key(incident_pk(&step.incident_id), &sk);
            item.extend([
                ("member_id".to_string(), s(&note.member_id)),
                ("name".to_string(), s(&note.name)),
                ("via".to_string(), s(via_name(note.via))),
                ("level".to_string(), n(note.level as i64)),
                ("status".to_string(), s(note.status)),
                ("at".to_string(), n(step.at_ms / 1000)),
                ("attempts".to_string(), n(0)),
            ]);
            if let Some(error) = &note.error {
                item.insert("error".into(), s(error));
            }
            if let Some(address) = &note.address {
                item.insert("address".into(), s(address));
            }
            if note.status == "pending" {
                // Claimed by this tick for a while; if it dies before
                // sending, a later tick finds it in the due index.
                let due_sk =
                    notification_due_sk(step.at_ms + SEND_CLAIM_MS, &step.incident_id, &sk);
                item.insert("gsi4pk".into(), s(DUE_NOTIFICATIONS));
                item.insert("gsi4sk".into(), s(&due_sk));
                if let Some(address) = &note.address {
                    pending.push(PendingEmail {
                        incident_id: step.incident_id.clone(),
                        sk: sk.clone(),
                        member_id: note.member_id.clone(),
                        address: address.clone(),
                        name: note.name.clone(),
                        level: note.level,
                        attempts: 0,
                        due_sk,
                    });
                }
            }
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        match self.send_transaction(items).await {
            Ok(()) => Ok(Some(pending)),
            Err(Cancelled::Reasons(_)) => Ok(None),
            Err(Cancelled::Fatal(e)) => Err(e),
        }
    }

    // ---- notifications ----

    /// Emails due to be sent or retried (their tick died, or a retry is
    /// due): one Query of the due index, then each claimed by a
    /// conditional write so that two ticks send an email once.
    pub async fn claim_due_emails(&self, now_ms: i64, limit: i32) -> ApiResult<Vec<PendingEmail>> {
        let (listed, _) = self
            .due_page(DUE_NOTIFICATIONS, now_ms, limit, None)
            .await?;
        // The claim is conditional on the due key the Query listed (due by
        // now), not the one the read finds: another tick may have claimed it
        // in between, and its claim must hold.
        let listed_due: HashMap<(String, String), String> = listed
            .iter()
            .filter_map(|i| {
                Some((
                    (get_opt_s(i, "pk")?, get_opt_s(i, "sk")?),
                    get_opt_s(i, "gsi4sk")?,
                ))
            })
            .collect();
        let items = self.items_listed(&listed).await?;
        let mut claimed = Vec::new();
        for item in &items {
            let Some(incident_id) =
                get_opt_s(item, "pk").and_then(|pk| pk.strip_prefix("INC#").map(str::to_string))
            else {
                continue;
            };
            let Some(mut email) = pending_email(&incident_id, item) else {
                continue;
            };
            let Some(seen) = listed_due.get(&(incident_pk(&incident_id), email.sk.clone())) else {
                continue;
            };
            if *seen != email.due_sk {
                // Claimed (or rescheduled) since the Query: not ours.
                continue;
            }
            let until = now_ms + SEND_CLAIM_MS;
            let due_sk = notification_due_sk(until, &incident_id, &email.sk);
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(incident_pk(&incident_id), &email.sk)))
                .update_expression("SET gsi4sk = :claimed")
                .condition_expression("gsi4sk = :seen")
                .expression_attribute_values(":claimed", s(&due_sk))
                .expression_attribute_values(":seen", s(&email.due_sk))
                .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
                .send()
                .await;
            match result {
                Ok(out) => {
                    self.count(Units::Write, out.consumed_capacity());
                    email.due_sk = due_sk;
                    claimed.push(email);
                }
                Err(err) if is_condition_failure(&err) => {}
                Err(err) => return Err(storage_error("UpdateItem", err)),
            }
        }
        Ok(claimed)
    }

    /// Record how sending an email went: `sent`, `failed` for good, or (with
    /// `retry_at_ms`) still pending until then. Only the claim holder
    /// records (`gsi4sk` still the one it claimed under).
    pub async fn finish_email(
        &self,
        email: &PendingEmail,
        outcome: Result<(), String>,
        retry_at_ms: Option<i64>,
    ) -> ApiResult<()> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(incident_pk(&email.incident_id), &email.sk)))
            .condition_expression("gsi4sk = :claimed")
            .expression_attribute_values(":claimed", s(&email.due_sk))
            .expression_attribute_values(":attempts", n(i64::from(email.attempts) + 1))
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes);
        update = match (&outcome, retry_at_ms) {
            (Ok(()), _) => update
                .update_expression(
                    "SET #st = :sent, attempts = :attempts REMOVE gsi4pk, gsi4sk, #err",
                )
                .expression_attribute_values(":sent", s("sent")),
            (Err(reason), Some(at)) => update
                .update_expression("SET #err = :err, attempts = :attempts, gsi4sk = :next")
                .expression_attribute_values(":err", s(reason))
                .expression_attribute_values(
                    ":next",
                    s(notification_due_sk(at, &email.incident_id, &email.sk)),
                ),
            (Err(reason), None) => update
                .update_expression(
                    "SET #st = :failed, #err = :err, attempts = :attempts REMOVE gsi4pk, gsi4sk",
                )
                .expression_attribute_values(":failed", s("failed"))
                .expression_attribute_values(":err", s(reason)),
        };
        update = update.expression_attribute_names("#err", "error");
        if outcome.is_ok() || retry_at_ms.is_none() {
            update = update.expression_attribute_names("#st", "status");
        }
        match update.send().await {
            Ok(out) => {
                self.count(Units::Write, out.consumed_capacity());
                Ok(())
            }
            // Another tick took it over after our claim ran out: it records.
            Err(err) if is_condition_failure(&err) => Ok(()),
            Err(err) => Err(storage_error("UpdateItem", err)),
        }
    }

    /// One page of an incident's notifications, oldest first, after
    /// `cursor` (the sort key of the last one of the previous page).
    pub async fn notifications(
        &self,
        incident_id: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> ApiResult<(Vec<Notification>, Option<String>)> {
        let (items, next) = self
            .partition_page(
                incident_pk(incident_id),
                Some(NOTIFICATION_PREFIX),
                cursor,
                limit,
            )
            .await?;
        let list = items
            .iter()
            .map(|item| {
                Ok(Notification {
                    member_id: get_s(item, "member_id")?,
                    via: get_s(item, "via")?,
                    level: get_n(item, "level")? as usize,
                    status: get_s(item, "status")?,
                    at: get_n(item, "at")?,
                    attempts: get_opt_n(item, "attempts").unwrap_or(0),
                    error: get_opt_s(item, "error"),
                })
            })
            .collect::<ApiResult<Vec<_>>>()?;
        Ok((list, next))
    }
}

/// Whether `sk` is a notification's sort key
/// (`NOTIF#{at_ms:015}#{n:03}#{member_id}#{via}`): a cursor the API issued.
pub fn is_notification_cursor(sk: &str) -> bool {
    let Some(rest) = sk.strip_prefix(NOTIFICATION_PREFIX) else {
        return false;
    };
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
    matches!(rest.split('#').collect::<Vec<_>>().as_slice(), [ms, n, member, via]
        if digits(ms, 15) && digits(n, 3) && crate::ids::is_valid_id(member)
            && matches!(*via, "email" | "im"))
}

fn is_condition_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(
    err: &aws_sdk_dynamodb::error::SdkError<E>,
) -> bool {
    err.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

fn pending_email(incident_id: &str, item: &Item) -> Option<PendingEmail> {
    (get_opt_s(item, "via").as_deref() == Some("email")
        && get_opt_s(item, "status").as_deref() == Some("pending"))
    .then_some(())?;
    Some(PendingEmail {
        incident_id: incident_id.to_string(),
        sk: get_opt_s(item, "sk")?,
        member_id: get_opt_s(item, "member_id")?,
        address: get_opt_s(item, "address")?,
        name: get_opt_s(item, "name").unwrap_or_default(),
        level: get_opt_n(item, "level")? as usize,
        attempts: get_opt_n(item, "attempts").unwrap_or(0) as u32,
        due_sk: get_opt_s(item, "gsi4sk")?,
    })
}

/// The chain an incident item holds, if any.
pub fn chain_of(item: &Item) -> ApiResult<Option<Chain>> {
    get_opt_s(item, "escalation")
        .map(|json| {
            serde_json::from_str(&json)
                .map_err(|_| ApiError::internal("stored escalation chain does not parse"))
        })
        .transpose()
}

pub fn escalation_from_item(item: &Item) -> ApiResult<EscalationRules> {
    serde_json::from_str(&get_s(item, "rules")?)
        .map_err(|_| ApiError::internal("stored escalation rules do not parse"))
}

#[cfg(test)]
mod tests {
    use super::is_notification_cursor;

    #[test]
    fn only_notification_sort_keys_are_cursors() {
        assert!(is_notification_cursor(
            "NOTIF#001764900000000#007#m_alice#email"
        ));
        assert!(is_notification_cursor("NOTIF#001764900000000#120#m_bob#im"));
        for not in [
            "NOTIF#001764900000000#07#m_alice#email",
            "NOTIF#1764900000000#007#m_alice#email",
            "NOTIF#001764900000000#007#m_alice#sms",
            "NOTIF#001764900000000#007#m#alice#im",
            "TL#001764900000000#00#abc",
            "NOTIF#",
        ] {
            assert!(!is_notification_cursor(not), "{not}");
        }
    }
}
