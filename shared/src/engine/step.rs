//! An incident step: one change to one incident, decided by the engine as a
//! value and made so by one store module (`store::incidents::writer`), the
//! only code that turns a step into a condition and an update of the
//! incident item. The timeline and webhooks read the step's entries.
//!
//! A step carries its guard (what must still hold of the incident when it is
//! written, else the writer answers "not written" and the caller reads
//! again and asks again), its effect, and the timeline entries it records.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::escalation::{responders_for, Chain, Decision};
use super::incident::{accepts_alert, recovery_closes, ClosedBy, Transition};
use crate::domain::event::EventStatus;
use crate::error::ApiResult;
use crate::hashing::random_hex;
use crate::model::{Grouping, IncidentStatus, Responder, WindowType};

/// One timeline entry. Its `id` is the `event_id` webhooks send for it.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineEntry {
    pub id: String,
    pub kind: &'static str,
    pub at_ms: i64,
    pub detail: Value,
    /// Its place among the entries of one write (an opening and its flapping mark).
    pub index: u8,
}

impl TimelineEntry {
    /// An entry for `transition`; `extra` (an object) adds to the transition's own detail.
    pub fn new(transition: Transition, extra: Value, at_ms: i64, index: u8) -> ApiResult<Self> {
        let mut detail = transition.detail();
        if let (Some(d), Value::Object(more)) = (detail.as_object_mut(), extra) {
            d.extend(more);
        }
        Ok(TimelineEntry {
            id: random_hex(16)?,
            kind: transition.timeline_type(),
            at_ms,
            detail,
            index,
        })
    }
}

/// What an alert's opening records: `i_new` for a new incident or
/// `a_merge` for a join, then `i_m_flapping` when its key flaps. `on_record`:
/// the new alert's record carries the first entry, whose id is then the
/// alert's own (one entry per alert, and it sorts with the record).
pub fn opening_entries(
    new_incident: bool,
    alert_id: &str,
    on_record: bool,
    flapping: bool,
    now_ms: i64,
) -> ApiResult<Vec<TimelineEntry>> {
    let transition = if new_incident {
        Transition::Open
    } else {
        Transition::Merge
    };
    let mut first = TimelineEntry::new(transition, json!({ "alert_id": alert_id }), now_ms, 0)?;
    if on_record {
        first.id = alert_id.to_string();
    }
    let mut entries = vec![first];
    if flapping {
        entries.push(TimelineEntry::new(
            Transition::Flapping,
            json!({ "alert_id": alert_id }),
            now_ms,
            1,
        )?);
    }
    Ok(entries)
}

/// How many open alerts a recovery expects its incident to have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActiveAlerts {
    Exactly(i64),
    MoreThan(i64),
    AtLeast(i64),
}

/// What must still hold of the incident item for a step to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// No incident of this id exists yet (opening).
    Absent,
    /// It exists (sealing, comments).
    Exists,
    /// It exists and is not closed (an alert of it changed).
    Open,
    /// It takes a new alert at `now_ms`: what [`accepts_alert`] says, as a
    /// condition (open, not sealed, inside its merge window).
    Accepting { now_ms: i64 },
    /// Open, with this many open alerts (a recovery).
    OpenWithActive(ActiveAlerts),
    /// Still in this status (a person's action).
    Status(IncidentStatus),
    /// No storm level yet, or one below this threshold.
    StormBelow(u32),
}

/// What an opening incident starts with.
#[derive(Clone, Debug, PartialEq)]
pub struct Opening {
    pub title: String,
    pub labels: BTreeMap<String, String>,
    pub severity: EventStatus,
    /// 0: no merge window.
    pub merge_deadline_ms: i64,
    pub group_key: Option<String>,
    pub flapping: bool,
}

/// What a step does to the incident item.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// The incident is created.
    Open(Box<Opening>),
    /// Alerts join: counters, severities, a sliding window's new deadline,
    /// and the flapping mark when a joining key flaps.
    Join {
        alerts: i64,
        severities: Vec<EventStatus>,
        deadline_ms: Option<i64>,
        flapping: bool,
    },
    /// An alert of it took a state change; its severity counts from now on.
    RaiseSeverity(EventStatus),
    /// An alert of it took a state change that the incident does not show:
    /// only the guard is checked.
    Unchanged,
    /// One of its alerts recovered, and it stays open.
    AlertRecovered,
    /// It closes: by hand, or by its last open alert recovering.
    Close(ClosedBy),
    /// A person moved it to `to` (ack, unack, reopen).
    SetStatus {
        to: IncidentStatus,
        transition: Transition,
    },
    /// It takes no new alert from now on (a manual close is under way, or
    /// its group moved on to a newer incident).
    Seal,
    /// Its alert count passed storm thresholds: the level becomes `level`.
    Storm { level: u32 },
    /// A manual close's sweep closed the alerts of every record up to
    /// `after` (a sort key); a later sweep starts past it.
    SweepProgress { after: String },
    /// A manual close ran out of time: the notify function continues it
    /// (the stream carries this change to it).
    ContinueResolve,
    /// Only the timeline changes (a comment).
    Note,
    /// Only its escalation chain changes (a tick): see [`ChainChange`].
    Escalation,
}

/// An incident's escalation chain as a step writes it, beside its effect:
/// kept on the incident item, written only if its version is still the one
/// read, so two ticks (or a tick and an ack) never both write a level.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainChange {
    /// The version read; `None` for the chain an opening starts.
    pub expected_version: Option<u64>,
    pub chain: Chain,
    /// The incident's responders from now on, when they change.
    pub responders: Option<Vec<Responder>>,
}

/// One change to one incident, as the engine decided it.
#[derive(Clone, Debug, PartialEq)]
pub struct IncidentStep {
    pub incident_id: String,
    pub channel_id: String,
    pub guard: Guard,
    pub effect: Effect,
    /// What the timeline records (and the stream and webhooks carry).
    pub entries: Vec<TimelineEntry>,
    pub at_ms: i64,
    /// Its escalation chain, when this step changes it.
    pub chain: Option<ChainChange>,
}

impl IncidentStep {
    fn new(incident_id: &str, channel_id: &str, guard: Guard, effect: Effect, at_ms: i64) -> Self {
        IncidentStep {
            incident_id: incident_id.to_string(),
            channel_id: channel_id.to_string(),
            guard,
            effect,
            entries: Vec::new(),
            at_ms,
            chain: None,
        }
    }

    fn recording(mut self, entries: Vec<TimelineEntry>) -> Self {
        self.entries = entries;
        self
    }

    /// The same step, also writing its escalation chain.
    pub fn with_chain(mut self, chain: Option<ChainChange>) -> Self {
        self.chain = chain;
        self
    }
}

/// A new alert opens an incident of its own (the first of its group, or
/// every alert with grouping `none`).
pub fn open_incident(
    incident_id: &str,
    channel_id: &str,
    opening: Opening,
    entries: Vec<TimelineEntry>,
    now_ms: i64,
) -> IncidentStep {
    IncidentStep::new(
        incident_id,
        channel_id,
        Guard::Absent,
        Effect::Open(Box::new(opening)),
        now_ms,
    )
    .recording(entries)
}

/// `alerts` new alerts join an open incident at `now_ms`, if it still takes
/// them ([`accepts_alert`]); a sliding window restarts with them.
#[allow(clippy::too_many_arguments)]
pub fn join_incident(
    incident_id: &str,
    channel_id: &str,
    grouping: &Grouping,
    alerts: i64,
    severities: Vec<EventStatus>,
    flapping: bool,
    entries: Vec<TimelineEntry>,
    now_ms: i64,
) -> IncidentStep {
    let sliding = grouping.window_type == WindowType::Sliding && grouping.window_minutes > 0;
    let deadline_ms = sliding.then(|| super::merge_deadline(grouping, now_ms, now_ms));
    IncidentStep::new(
        incident_id,
        channel_id,
        Guard::Accepting { now_ms },
        Effect::Join {
            alerts,
            severities,
            deadline_ms,
            flapping,
        },
        now_ms,
    )
    .recording(entries)
}

/// Whether an incident as read (or as a refused write returned it) takes a
/// new alert at `now_ms`: the question [`Guard::Accepting`] asks DynamoDB.
pub fn takes_alerts(
    status: IncidentStatus,
    sealed: bool,
    merge_deadline_ms: i64,
    now_ms: i64,
) -> bool {
    accepts_alert(status, sealed, merge_deadline_ms, now_ms)
}

/// An alert of an open incident took a state change (stored event): the
/// incident must still be open, and takes the severity if it raises it.
pub fn alert_changed(
    incident_id: &str,
    channel_id: &str,
    raises_severity: Option<EventStatus>,
    now_ms: i64,
) -> IncidentStep {
    let effect = match raises_severity {
        Some(severity) => Effect::RaiseSeverity(severity),
        None => Effect::Unchanged,
    };
    IncidentStep::new(incident_id, channel_id, Guard::Open, effect, now_ms)
}

/// An alert of an open incident recovered. `active_alerts` is what the
/// caller believes the incident's open-alert count is (a refused write
/// returns the real one); with auto-close, the last one closes it (`i_rslv`,
/// by `auto`), guarded by that count so that a wrong belief is refused.
pub fn alert_recovered(
    incident_id: &str,
    channel_id: &str,
    active_alerts: i64,
    auto_close: bool,
    now_ms: i64,
) -> ApiResult<IncidentStep> {
    let step = if recovery_closes(active_alerts, auto_close) {
        let entry = TimelineEntry::new(Transition::Resolve(ClosedBy::Auto), json!({}), now_ms, 0)?;
        IncidentStep::new(
            incident_id,
            channel_id,
            Guard::OpenWithActive(ActiveAlerts::Exactly(1)),
            Effect::Close(ClosedBy::Auto),
            now_ms,
        )
        .recording(vec![entry])
    } else {
        let expected = if auto_close {
            ActiveAlerts::MoreThan(1)
        } else {
            ActiveAlerts::AtLeast(1)
        };
        IncidentStep::new(
            incident_id,
            channel_id,
            Guard::OpenWithActive(expected),
            Effect::AlertRecovered,
            now_ms,
        )
    };
    Ok(step)
}

/// A person's action, decided by [`super::decide_action`], as a step guarded
/// by the status it was decided from. `extra` adds to the entry's detail (a
/// reopen's reason, who acted).
pub fn person_acts(
    incident_id: &str,
    channel_id: &str,
    change: super::Change,
    extra: Value,
    now_ms: i64,
) -> ApiResult<IncidentStep> {
    let effect = match change.transition {
        Transition::Resolve(by) => Effect::Close(by),
        transition => Effect::SetStatus {
            to: change.to,
            transition,
        },
    };
    let entry = TimelineEntry::new(change.transition, extra, now_ms, 0)?;
    Ok(IncidentStep::new(
        incident_id,
        channel_id,
        Guard::Status(change.from),
        effect,
        now_ms,
    )
    .recording(vec![entry]))
}

/// The incident takes no new alert from now on.
pub fn seal(incident_id: &str, channel_id: &str, now_ms: i64) -> IncidentStep {
    IncidentStep::new(incident_id, channel_id, Guard::Exists, Effect::Seal, now_ms)
}

/// A sweep's progress: every alert record up to `after` is closed.
pub fn sweep_progress(
    incident_id: &str,
    channel_id: &str,
    after: &str,
    now_ms: i64,
) -> IncidentStep {
    let effect = Effect::SweepProgress {
        after: after.to_string(),
    };
    IncidentStep::new(incident_id, channel_id, Guard::Exists, effect, now_ms)
}

/// A manual close is left to continue in another invocation.
pub fn continue_resolve(incident_id: &str, channel_id: &str, now_ms: i64) -> IncidentStep {
    IncidentStep::new(
        incident_id,
        channel_id,
        Guard::Exists,
        Effect::ContinueResolve,
        now_ms,
    )
}

/// The storm thresholds an incident passed (from [`super::storm_crossings`],
/// lowest first): the level becomes the highest, each gets its `i_storm`,
/// unless another writer recorded them first. `None`: nothing crossed.
pub fn storm(
    incident_id: &str,
    channel_id: &str,
    crossed: &[u32],
    now_ms: i64,
) -> ApiResult<Option<IncidentStep>> {
    let (Some(&lowest), Some(&highest)) = (crossed.first(), crossed.last()) else {
        return Ok(None);
    };
    let entries = crossed
        .iter()
        .enumerate()
        .map(|(i, &t)| TimelineEntry::new(Transition::Storm(t), json!({}), now_ms, i as u8))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Some(
        IncidentStep::new(
            incident_id,
            channel_id,
            Guard::StormBelow(lowest),
            Effect::Storm { level: highest },
            now_ms,
        )
        .recording(entries),
    ))
}

/// An escalation tick's decision on a chain read at `before`: the chain
/// changes (and, when a level is paged, the responders), and a page records
/// `i_assign` or `i_escalate` with its level, round, members and methods;
/// `members` (an array) says who they are, for IM mentions. Guarded by the
/// status it was decided on as well as the chain's version: an automatic
/// close (or an ack) landing meanwhile does not bump the version, and must
/// not be paged over.
pub fn escalation_tick(
    incident_id: &str,
    channel_id: &str,
    status: IncidentStatus,
    before: &Chain,
    decision: Decision,
    members: Value,
    now_ms: i64,
) -> ApiResult<IncidentStep> {
    let mut entries = Vec::new();
    let mut responders = None;
    if let Some(page) = &decision.page {
        let detail = json!({
            "level": page.level,
            "round": page.round,
            "member_ids": page.member_ids,
            "via": page.via,
            "members": members,
        });
        entries.push(TimelineEntry::new(page.transition(), detail, now_ms, 0)?);
        responders = Some(responders_for(page, now_ms));
    }
    let change = ChainChange {
        expected_version: Some(before.version),
        chain: decision.chain,
        responders,
    };
    Ok(IncidentStep::new(
        incident_id,
        channel_id,
        Guard::Status(status),
        Effect::Escalation,
        now_ms,
    )
    .recording(entries)
    .with_chain(Some(change)))
}

/// A comment on the timeline (`i_comm`); `extra` adds who wrote it.
pub fn comment(
    incident_id: &str,
    channel_id: &str,
    text: &str,
    extra: Value,
    now_ms: i64,
) -> ApiResult<IncidentStep> {
    let mut detail = json!({ "text": text });
    if let (Some(d), Value::Object(more)) = (detail.as_object_mut(), extra) {
        d.extend(more);
    }
    let entry = TimelineEntry::new(Transition::Comment, detail, now_ms, 0)?;
    Ok(
        IncidentStep::new(incident_id, channel_id, Guard::Exists, Effect::Note, now_ms)
            .recording(vec![entry]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{decide_action, Action};
    use crate::model::GroupingMethod;

    #[test]
    fn the_last_open_alert_recovering_closes_only_with_auto_close() {
        let closing = alert_recovered("i", "c", 1, true, 5_000).unwrap();
        assert_eq!(closing.effect, Effect::Close(ClosedBy::Auto));
        assert_eq!(
            closing.guard,
            Guard::OpenWithActive(ActiveAlerts::Exactly(1))
        );
        assert_eq!(closing.entries.len(), 1);
        assert_eq!(closing.entries[0].kind, "i_rslv");
        assert_eq!(closing.entries[0].detail, json!({"by": "auto"}));

        let staying = alert_recovered("i", "c", 3, true, 5_000).unwrap();
        assert_eq!(staying.effect, Effect::AlertRecovered);
        assert_eq!(
            staying.guard,
            Guard::OpenWithActive(ActiveAlerts::MoreThan(1))
        );
        assert!(staying.entries.is_empty());

        let manual_only = alert_recovered("i", "c", 1, false, 5_000).unwrap();
        assert_eq!(manual_only.effect, Effect::AlertRecovered);
        assert_eq!(
            manual_only.guard,
            Guard::OpenWithActive(ActiveAlerts::AtLeast(1))
        );
    }

    #[test]
    fn a_join_is_guarded_by_accepting_and_a_sliding_window_moves() {
        let mut grouping = Grouping {
            method: GroupingMethod::Rules,
            window_minutes: 10,
            window_type: WindowType::Sliding,
            ..Grouping::default()
        };
        let step = join_incident(
            "i",
            "c",
            &grouping,
            2,
            vec![EventStatus::Critical],
            false,
            vec![],
            1_000,
        );
        assert_eq!(step.guard, Guard::Accepting { now_ms: 1_000 });
        assert_eq!(
            step.effect,
            Effect::Join {
                alerts: 2,
                severities: vec![EventStatus::Critical],
                deadline_ms: Some(1_000 + 600_000),
                flapping: false
            }
        );
        grouping.window_type = WindowType::Tumbling;
        let step = join_incident("i", "c", &grouping, 1, vec![], true, vec![], 1_000);
        assert!(matches!(
            step.effect,
            Effect::Join {
                deadline_ms: None,
                flapping: true,
                ..
            }
        ));
    }

    #[test]
    fn takes_alerts_matches_the_accepting_guard() {
        use IncidentStatus::{Closed, Processing, Triggered};
        assert!(takes_alerts(Triggered, false, 0, 10));
        assert!(takes_alerts(Processing, false, 11, 10));
        assert!(!takes_alerts(Triggered, false, 10, 10));
        assert!(!takes_alerts(Triggered, true, 0, 10));
        assert!(!takes_alerts(Closed, false, 0, 10));
    }

    #[test]
    fn a_persons_action_is_guarded_by_the_status_it_was_decided_from() {
        let change = decide_action(IncidentStatus::Triggered, Action::Resolve)
            .unwrap()
            .unwrap();
        let step = person_acts("i", "c", change, json!({"actor": {"app_key_id": "k"}}), 9).unwrap();
        assert_eq!(step.guard, Guard::Status(IncidentStatus::Triggered));
        assert_eq!(step.effect, Effect::Close(ClosedBy::Manual));
        assert_eq!(
            step.entries[0].detail,
            json!({"by": "manual", "actor": {"app_key_id": "k"}})
        );
        let ack = decide_action(IncidentStatus::Triggered, Action::Ack)
            .unwrap()
            .unwrap();
        let step = person_acts("i", "c", ack, json!({}), 9).unwrap();
        assert_eq!(
            step.effect,
            Effect::SetStatus {
                to: IncidentStatus::Processing,
                transition: Transition::Ack
            }
        );
        assert_eq!(step.entries[0].kind, "i_ack");
    }

    #[test]
    fn a_storm_records_each_threshold_and_guards_the_lowest() {
        assert_eq!(storm("i", "c", &[], 1).unwrap(), None);
        let step = storm("i", "c", &[10, 100], 1).unwrap().unwrap();
        assert_eq!(step.guard, Guard::StormBelow(10));
        assert_eq!(step.effect, Effect::Storm { level: 100 });
        let kinds: Vec<_> = step.entries.iter().map(|e| (e.kind, e.index)).collect();
        assert_eq!(kinds, vec![("i_storm", 0), ("i_storm", 1)]);
    }

    #[test]
    fn an_opening_records_i_new_or_a_merge_then_flapping() {
        let new = opening_entries(true, "a", false, true, 1).unwrap();
        assert_eq!(
            new.iter().map(|e| e.kind).collect::<Vec<_>>(),
            ["i_new", "i_m_flapping"]
        );
        assert_ne!(new[0].id, "a");
        let join = opening_entries(false, "a", true, true, 1).unwrap();
        assert_eq!(join[0].kind, "a_merge");
        assert_eq!(join[0].detail, json!({"alert_id": "a"}));
        // Carried by the record: the alert's id; the flapping mark keeps its own.
        assert_eq!(join[0].id, "a");
        assert_ne!(join[1].id, "a");
    }
}
