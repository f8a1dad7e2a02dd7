//! Inhibition: which open alerts of the channel inhibit an event.

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;

use super::{EventRules, Hints};
use crate::domain::event::StandardEvent;
use crate::domain::mark::Mark;
use crate::domain::outcome::Outcome;
use crate::error::ApiResult;
use crate::model::{Channel, IncidentStatus};
use crate::rules::channel::{CompiledInhibit, SourceAlert, Verdict, INHIBIT_SOURCE_FRESH_SECS};
use crate::rules::conditions::Subject;
use crate::store::items::*;
use crate::store::{storage_error, Store, Units};

impl Store {
    /// What the channel's silence and inhibit rules say about `ev`. Silence
    /// costs nothing; inhibition one Query of the channel's index of open
    /// alerts (shared by every rule that targets the event), plus one
    /// BatchGetItem of the candidate sources' incidents when there are any.
    pub(super) async fn verdict(
        &self,
        channel: &Channel,
        ev: &StandardEvent,
        rules: &EventRules<'_>,
        now_ms: i64,
        hints: &mut Hints,
    ) -> ApiResult<Verdict> {
        if let Some(silence) = &rules.silence {
            if *silence != Verdict::Pass {
                return Ok(silence.clone());
            }
        }
        if rules.inhibit.is_empty() {
            return Ok(Verdict::Pass);
        }
        if let Some(known) = &hints.inhibition {
            return Ok(known.clone());
        }
        let sources = self
            .fresh_sources(&channel.channel_id, now_ms / 1000)
            .await?;
        let target = Subject::of_event(ev, None);
        let mut candidates: Vec<(&CompiledInhibit, &SourceAlert)> = Vec::new();
        for rule in &rules.inhibit {
            for source in &sources {
                if rule.inhibits(source, &target) {
                    candidates.push((rule, source));
                }
            }
        }
        let verdict = if candidates.is_empty() {
            Verdict::Pass
        } else {
            let mut incidents: Vec<&str> = candidates
                .iter()
                .map(|(_, s)| s.incident_id.as_str())
                .collect();
            incidents.sort_unstable();
            incidents.dedup();
            incidents.truncate(100);
            let triggered = self.triggered_incidents(&incidents).await?;
            candidates
                .iter()
                .find(|(_, s)| triggered.contains(&s.incident_id))
                .map_or(Verdict::Pass, |(rule, source)| match rule.action {
                    crate::rules::channel::RuleAction::Drop => Verdict::Drop(Outcome::Inhibited),
                    crate::rules::channel::RuleAction::Mark => {
                        Verdict::Mark(Mark::Inhibited(source.alert_id.clone()))
                    }
                })
        };
        hints.inhibition = Some(verdict.clone());
        Ok(verdict)
    }

    /// Open, unmarked alerts of a channel whose last event is at most
    /// [`INHIBIT_SOURCE_FRESH_SECS`] old (to the minute: the index keeps the
    /// minute, so a source counts for the last 9 to 10 minutes). One page.
    pub async fn fresh_sources(&self, channel_id: &str, now_s: i64) -> ApiResult<Vec<SourceAlert>> {
        let oldest_minute = (now_s - INHIBIT_SOURCE_FRESH_SECS + 59).div_euclid(60) * 60;
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(crate::store::GSI3)
            .key_condition_expression("gsi3pk = :open AND gsi3sk >= :fresh")
            .expression_attribute_values(":open", s(open_alerts_scope(channel_id)))
            .expression_attribute_values(":fresh", s(source_freshness(oldest_minute)))
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .map_err(|e| storage_error("Query", e))?;
        self.count(Units::Read, out.consumed_capacity());
        Ok(out
            .items()
            .iter()
            .filter_map(|item| {
                Some(SourceAlert {
                    alert_id: get_opt_s(item, "alert_id")?,
                    incident_id: get_opt_s(item, "incident_id")?,
                    alert_key: get_opt_s(item, "alert_key")?,
                    severity: get_opt_s(item, "severity")?,
                    title: get_opt_s(item, "title").unwrap_or_default(),
                    description: get_opt_s(item, "description").unwrap_or_default(),
                    labels: get_map(item, "labels"),
                })
            })
            .collect())
    }

    /// Which of these incidents are `Triggered` (not acknowledged, not closed).
    async fn triggered_incidents(&self, incident_ids: &[&str]) -> ApiResult<Vec<String>> {
        let keys = incident_ids
            .iter()
            .map(|id| key(incident_pk(id), INCIDENT_SK))
            .collect();
        Ok(self
            .batch_get_projected(keys, "incident_id, #st", &[("#st", "status")])
            .await?
            .iter()
            .filter(|i| {
                get_opt_s(i, "status").as_deref() == Some(IncidentStatus::Triggered.as_str())
            })
            .filter_map(|i| get_opt_s(i, "incident_id"))
            .collect())
    }
}
