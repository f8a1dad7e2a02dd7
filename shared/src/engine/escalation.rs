//! The escalation chain (SPEC 14) as a state machine that performs no I/O,
//! quinn-proto style: it takes the chain's state, the incident's facts, one
//! input (a tick, an ack, an unack, a close, a reopen) and the time, and
//! returns the next state (with the time it next needs a tick) and at most
//! one page to send. The store writes the state with its `version` as the
//! condition, so two instances running the same tick notify a level once.
//!
//! Times are unix milliseconds, as in the rest of the engine.
//!
//! Why one file of about 670 lines before its tests: the rules' types, their
//! compiled form and the state machine that reads them change together (a
//! new rule field is a new branch of `advance_if_due`), and the unit tests of
//! the machine sit beside it.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::engine::incident::Transition;
use crate::engine::schedule::CompiledSchedule;
use crate::error::{ApiError, ApiResult};
use crate::ids::check_id;
use crate::model::{Incident, IncidentStatus, Responder};
use crate::rules::conditions::{ConditionGroups, Field, Matcher, Subject};

pub const MAX_RULES: usize = 20;
pub const MAX_LEVELS: usize = 5;
pub const MAX_DELAY_MINUTES: u32 = 60;
pub const MAX_ESCALATE_AFTER_MINUTES: u32 = 720;
pub const MAX_REPEAT: u32 = 6;
/// Not in SPEC 14: members (and schedules) one level may name.
pub const MAX_TARGETS: usize = 20;
pub const NAME_MAX_CHARS: usize = 64;
/// The incident fields a rule's `if` may test (besides `labels.NAME`).
pub const ESCALATION_FIELDS: &[&str] = &["severity", "title"];

const MINUTE_MS: i64 = 60_000;

/// `PUT /api/channels/{id}/escalation`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationRules {
    pub rules: Vec<EscalationRule>,
}

fn enabled_default() -> bool {
    true
}

fn both() -> Vec<Via> {
    vec![Via::Email, Via::Im]
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationRule {
    pub name: String,
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    #[serde(rename = "if", default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<ConditionGroups>,
    #[serde(default)]
    pub delay_minutes: u32,
    pub levels: Vec<Level>,
    #[serde(default)]
    pub repeat: u32,
    #[serde(default)]
    pub escalate_when: EscalateWhen,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    pub targets: Targets,
    #[serde(default = "both")]
    pub notify: Vec<Via>,
    pub escalate_after_minutes: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    #[serde(default)]
    pub member_ids: Vec<String>,
    #[serde(default)]
    pub schedule_ids: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Email,
    Im,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalateWhen {
    #[default]
    NotAcked,
    NotClosed,
}

/// A channel's rules, checked, with each `if` compiled.
#[derive(Clone, Debug, Default)]
pub struct CompiledEscalation {
    rules: Vec<(EscalationRule, Matcher)>,
}

impl EscalationRules {
    /// Check every field; the error names the first bad one.
    pub fn validate(&self) -> ApiResult<()> {
        self.compile().map(|_| ())
    }

    pub fn compile(&self) -> ApiResult<CompiledEscalation> {
        if self.rules.len() > MAX_RULES {
            return Err(ApiError::invalid(format!(
                "rules: at most {MAX_RULES} rules"
            )));
        }
        let rules = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let matcher = rule.compile(&format!("rules[{i}]"))?;
                Ok((rule.clone(), matcher))
            })
            .collect::<ApiResult<Vec<_>>>()?;
        Ok(CompiledEscalation { rules })
    }

    /// Every member id the rules name, with its place (for "still used by").
    pub fn member_places(&self) -> Vec<(String, &str)> {
        self.target_places(|t| &t.member_ids, "member_ids")
    }

    /// Every schedule id the rules name, with its place.
    pub fn schedule_places(&self) -> Vec<(String, &str)> {
        self.target_places(|t| &t.schedule_ids, "schedule_ids")
    }

    fn target_places<'a>(
        &'a self,
        ids: impl Fn(&'a Targets) -> &'a Vec<String>,
        name: &str,
    ) -> Vec<(String, &'a str)> {
        let mut places = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            for (j, level) in rule.levels.iter().enumerate() {
                for (k, id) in ids(&level.targets).iter().enumerate() {
                    places.push((
                        format!("rules[{i}].levels[{j}].targets.{name}[{k}]"),
                        id.as_str(),
                    ));
                }
            }
        }
        places
    }
}

impl EscalationRule {
    fn compile(&self, at: &str) -> ApiResult<Matcher> {
        let chars = self.name.trim().chars().count();
        if chars == 0 || chars > NAME_MAX_CHARS {
            return Err(ApiError::invalid(format!(
                "{at}.name: must be 1 to {NAME_MAX_CHARS} characters"
            )));
        }
        // Conditions see the incident: only its severity, title and labels.
        for (g, group) in self.conditions.iter().flatten().enumerate() {
            for (c, condition) in group.iter().enumerate() {
                Field::parse(
                    &condition.key,
                    &format!("{at}.if[{g}][{c}].key"),
                    ESCALATION_FIELDS,
                )?;
            }
        }
        let matcher = Matcher::compile_optional(self.conditions.as_ref(), &format!("{at}.if"))?;
        if self.delay_minutes > MAX_DELAY_MINUTES {
            return Err(ApiError::invalid(format!(
                "{at}.delay_minutes: must be 0 to {MAX_DELAY_MINUTES}"
            )));
        }
        if self.repeat > MAX_REPEAT {
            return Err(ApiError::invalid(format!(
                "{at}.repeat: must be 0 to {MAX_REPEAT}"
            )));
        }
        if self.levels.is_empty() || self.levels.len() > MAX_LEVELS {
            return Err(ApiError::invalid(format!(
                "{at}.levels: 1 to {MAX_LEVELS} levels"
            )));
        }
        for (j, level) in self.levels.iter().enumerate() {
            level.check(&format!("{at}.levels[{j}]"))?;
        }
        Ok(matcher)
    }
}

impl Level {
    fn check(&self, at: &str) -> ApiResult<()> {
        let t = &self.targets;
        if t.member_ids.is_empty() && t.schedule_ids.is_empty() {
            return Err(ApiError::invalid(format!(
                "{at}.targets: name at least one member_id or schedule_id"
            )));
        }
        for (name, ids) in [
            ("member_ids", &t.member_ids),
            ("schedule_ids", &t.schedule_ids),
        ] {
            if ids.len() > MAX_TARGETS {
                return Err(ApiError::invalid(format!(
                    "{at}.targets.{name}: at most {MAX_TARGETS}"
                )));
            }
            for (k, id) in ids.iter().enumerate() {
                check_id(&format!("{at}.targets.{name}[{k}]"), id)?;
            }
        }
        if self.notify.is_empty() {
            return Err(ApiError::invalid(format!(
                "{at}.notify: at least one of email, im"
            )));
        }
        // Each method once: a page writes one notification per member and
        // method, and its transaction must stay under DynamoDB's 100 items.
        for (k, via) in self.notify.iter().enumerate() {
            if self.notify[..k].contains(via) {
                return Err(ApiError::invalid(format!(
                    "{at}.notify[{k}]: each method at most once"
                )));
            }
        }
        if !(1..=MAX_ESCALATE_AFTER_MINUTES).contains(&self.escalate_after_minutes) {
            return Err(ApiError::invalid(format!(
                "{at}.escalate_after_minutes: must be 1 to {MAX_ESCALATE_AFTER_MINUTES}"
            )));
        }
        Ok(())
    }
}

impl CompiledEscalation {
    /// The first enabled rule whose `if` matches the incident.
    pub fn choose(&self, incident: &Incident) -> Option<&EscalationRule> {
        self.choose_for(
            incident.severity.as_str(),
            &incident.title,
            &incident.labels,
        )
    }

    /// [`Self::choose`] on an incident's severity, title and labels.
    pub fn choose_for(
        &self,
        severity: &str,
        title: &str,
        labels: &BTreeMap<String, String>,
    ) -> Option<&EscalationRule> {
        let subject = Subject {
            severity,
            title,
            description: "",
            alert_key: "",
            integration_id: None,
            labels,
        };
        self.rules
            .iter()
            .find(|(rule, matcher)| rule.enabled && matcher.matches(&subject))
            .map(|(rule, _)| rule)
    }
}

// ---- the chain ----

/// What the chain knows of its incident when it steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts {
    pub status: IncidentStatus,
    pub flapping: bool,
    /// Opened by silenced or inhibited alerts.
    pub muted: bool,
}

impl Facts {
    pub fn of(incident: &Incident, muted: bool) -> Self {
        Facts {
            status: incident.status,
            flapping: incident.flapping,
            muted,
        }
    }
}

/// What happened to the incident since the chain last stepped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// Only time passed.
    Tick,
    Ack,
    Unack,
    Close,
    Reopen,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainState {
    /// Waiting out `delay_minutes` before level 1.
    Delaying,
    /// A level was notified; waiting `escalate_after_minutes` for it.
    Waiting,
    /// Stopped by an acknowledgement (a `not_acked` chain); unack resumes it.
    Acked,
    /// Stopped by closing; reopen restarts it.
    Closed,
    /// Flapping, silenced or inhibited: it pages nobody.
    Suppressed,
    /// Every level of every round was notified.
    Exhausted,
}

/// A chain as the store keeps it. It holds the rule chosen when the
/// incident opened: editing a channel's rules changes new incidents only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chain {
    pub rule: EscalationRule,
    pub state: ChainState,
    /// The level notified last in this round (0-based); `None` before level 1.
    pub level: Option<usize>,
    /// 0 for the first pass, up to `repeat`.
    pub round: u32,
    /// When it next needs a tick; `None` while nothing is due.
    pub due_at_ms: Option<i64>,
    /// Bumped by every change: the store's write condition.
    pub version: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum PageKind {
    /// Level 1 of a round.
    Assign,
    /// Any later level.
    Escalate,
}

impl PageKind {
    /// The timeline (and webhook) event type.
    pub fn timeline_type(self) -> &'static str {
        match self {
            PageKind::Assign => "i_assign",
            PageKind::Escalate => "i_escalate",
        }
    }
}

/// One level to notify now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Page {
    pub kind: PageKind,
    /// 1-based, as shown.
    pub level: usize,
    pub round: u32,
    /// The level's members, then whoever its schedules have on call, once each.
    pub member_ids: Vec<String>,
    pub via: Vec<Via>,
}

/// Who a schedule has on call at a moment: the caller resolves schedules
/// (it holds them, compiled; see [`crate::engine::schedule`]).
pub trait OnCallLookup {
    fn on_call(&self, schedule_id: &str, at_ms: i64) -> Vec<String>;
}

impl<F: Fn(&str, i64) -> Vec<String>> OnCallLookup for F {
    fn on_call(&self, schedule_id: &str, at_ms: i64) -> Vec<String> {
        self(schedule_id, at_ms)
    }
}

/// The schedules a channel's rules name, read and compiled by the caller
/// before it steps; a schedule missing here has nobody on call.
impl OnCallLookup for HashMap<String, CompiledSchedule> {
    fn on_call(&self, schedule_id: &str, at_ms: i64) -> Vec<String> {
        self.get(schedule_id)
            .map(|s| s.oncall(at_ms.div_euclid(1000)).member_ids)
            .unwrap_or_default()
    }
}

/// The chain after a step, and the page to send if a level is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub chain: Chain,
    pub page: Option<Page>,
}

impl Decision {
    /// Whether the store has anything to write.
    pub fn changed(&self, before: &Chain) -> bool {
        self.chain.version != before.version
    }
}

/// A new incident: choose its rule (once) and start the chain; `None` when
/// no rule matches. With no delay, level 1 is paged in the same decision.
/// The chain is new (`version` 0 unless it paged): the store writes it only
/// if the incident has none yet.
pub fn start(
    rules: &CompiledEscalation,
    incident: &Incident,
    facts: Facts,
    now_ms: i64,
    lookup: &dyn OnCallLookup,
) -> Option<Decision> {
    let rule = rules.choose(incident)?.clone();
    let due = now_ms + i64::from(rule.delay_minutes) * MINUTE_MS;
    let chain = Chain {
        rule,
        state: ChainState::Delaying,
        level: None,
        round: 0,
        due_at_ms: Some(due),
        version: 0,
    };
    Some(step(&chain, facts, Input::Tick, now_ms, lookup))
}

/// The chain a new incident starts with, before any page: the first
/// matching rule's, due when its delay ends (the tick pages level 1; with no
/// delay, at its next run). A flapping incident's chain pages nobody.
/// `None` when no rule matches.
pub fn begin(
    rules: &CompiledEscalation,
    severity: &str,
    title: &str,
    labels: &BTreeMap<String, String>,
    flapping: bool,
    now_ms: i64,
) -> Option<Chain> {
    let rule = rules.choose_for(severity, title, labels)?.clone();
    let (state, due_at_ms) = if flapping {
        (ChainState::Suppressed, None)
    } else {
        let due = now_ms + i64::from(rule.delay_minutes) * MINUTE_MS;
        (ChainState::Delaying, Some(due))
    };
    Some(Chain {
        rule,
        state,
        level: None,
        round: 0,
        due_at_ms,
        version: 1,
    })
}

/// The chain after a person's action, without paging: a level that becomes
/// due (a reopen without delay) is paged by the next tick, which resolves
/// its members. Unchanged (same version) when the input means nothing here.
pub fn told(chain: &Chain, input: Input, now_ms: i64) -> Chain {
    let mut next = chain.clone();
    if next.state != ChainState::Suppressed {
        apply(&mut next, input, now_ms);
    }
    if next != *chain {
        next.version = chain.version + 1;
    }
    next
}

/// What a person's action on the incident tells its chain.
pub fn input_for(transition: Transition) -> Option<Input> {
    match transition {
        Transition::Ack => Some(Input::Ack),
        Transition::Unack => Some(Input::Unack),
        Transition::Resolve(_) => Some(Input::Close),
        Transition::Reopen => Some(Input::Reopen),
        _ => None,
    }
}

/// The incident's responders once `page` went out at `now_ms`: the level's
/// members, none acknowledged yet.
pub fn responders_for(page: &Page, now_ms: i64) -> Vec<Responder> {
    page.member_ids
        .iter()
        .map(|member_id| Responder {
            member_id: member_id.clone(),
            level: page.level,
            assigned_at: now_ms.div_euclid(1000),
            acknowledged_at: None,
        })
        .collect()
}

/// The responders after `member_id` acknowledged at `now_ms` (through its
/// link); `None` when that member is not among them.
pub fn responder_acknowledged(
    responders: &[Responder],
    member_id: &str,
    now_ms: i64,
) -> Option<Vec<Responder>> {
    responders
        .iter()
        .any(|r| r.member_id == member_id)
        .then(|| {
            responders
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    if r.member_id == member_id && r.acknowledged_at.is_none() {
                        r.acknowledged_at = Some(now_ms.div_euclid(1000));
                    }
                    r
                })
                .collect()
        })
}

impl Page {
    /// Its timeline transition.
    pub fn transition(&self) -> Transition {
        match self.kind {
            PageKind::Assign => Transition::Assign,
            PageKind::Escalate => Transition::Escalate,
        }
    }
}

/// Apply one input at `now_ms`, then page the level that is due, if any.
pub fn step(
    chain: &Chain,
    facts: Facts,
    input: Input,
    now_ms: i64,
    lookup: &dyn OnCallLookup,
) -> Decision {
    let mut next = chain.clone();
    let mut page = None;
    if facts.flapping || facts.muted {
        next.state = ChainState::Suppressed;
        next.due_at_ms = None;
    } else {
        apply(&mut next, input, now_ms);
        page = advance_if_due(&mut next, facts, now_ms, lookup);
    }
    if next != *chain {
        next.version = chain.version + 1;
    }
    Decision { chain: next, page }
}

fn apply(chain: &mut Chain, input: Input, now_ms: i64) {
    use ChainState::*;
    let running = matches!(chain.state, Delaying | Waiting);
    match input {
        Input::Tick => {}
        Input::Ack if running && chain.rule.escalate_when == EscalateWhen::NotAcked => {
            chain.state = Acked;
            chain.due_at_ms = None;
        }
        Input::Ack => {}
        Input::Close if chain.state != Suppressed => {
            chain.state = Closed;
            chain.due_at_ms = None;
        }
        Input::Close => {}
        // Resume where it stopped, with a fresh timer: the delay if no level
        // was paged yet, else the current level's wait.
        Input::Unack if chain.state == Acked => match chain.level {
            None => {
                chain.state = Delaying;
                chain.due_at_ms = Some(now_ms + i64::from(chain.rule.delay_minutes) * MINUTE_MS);
            }
            Some(level) => {
                chain.state = Waiting;
                chain.due_at_ms = Some(now_ms + wait_ms(&chain.rule, level));
            }
        },
        Input::Unack => {}
        Input::Reopen if chain.state != Suppressed => {
            chain.state = Delaying;
            chain.level = None;
            chain.round = 0;
            chain.due_at_ms = Some(now_ms + i64::from(chain.rule.delay_minutes) * MINUTE_MS);
        }
        Input::Reopen => {}
    }
}

fn wait_ms(rule: &EscalationRule, level: usize) -> i64 {
    rule.levels.get(level).map_or(MINUTE_MS, |l| {
        i64::from(l.escalate_after_minutes) * MINUTE_MS
    })
}

/// The rule's condition on the incident: still open, and for `not_acked`
/// not acknowledged.
fn condition_holds(rule: &EscalationRule, status: IncidentStatus) -> bool {
    match rule.escalate_when {
        EscalateWhen::NotAcked => status == IncidentStatus::Triggered,
        EscalateWhen::NotClosed => status != IncidentStatus::Closed,
    }
}

fn advance_if_due(
    chain: &mut Chain,
    facts: Facts,
    now_ms: i64,
    lookup: &dyn OnCallLookup,
) -> Option<Page> {
    let running = matches!(chain.state, ChainState::Delaying | ChainState::Waiting);
    if !running || chain.due_at_ms.is_none_or(|due| due > now_ms) {
        return None;
    }
    if !condition_holds(&chain.rule, facts.status) {
        // An ack or close this chain was not told of: stop as if it had been.
        chain.state = if facts.status == IncidentStatus::Closed {
            ChainState::Closed
        } else {
            ChainState::Acked
        };
        chain.due_at_ms = None;
        return None;
    }
    let levels = chain.rule.levels.len();
    let (level, round, kind) = match chain.level {
        None => (0, chain.round, PageKind::Assign),
        Some(l) if l + 1 < levels => (l + 1, chain.round, PageKind::Escalate),
        Some(_) if chain.round < chain.rule.repeat => (0, chain.round + 1, PageKind::Assign),
        Some(_) => {
            chain.state = ChainState::Exhausted;
            chain.due_at_ms = None;
            return None;
        }
    };
    let target = chain.rule.levels.get(level)?;
    let mut member_ids: Vec<String> = Vec::new();
    let on_call = target
        .targets
        .schedule_ids
        .iter()
        .flat_map(|s| lookup.on_call(s, now_ms));
    for id in target.targets.member_ids.iter().cloned().chain(on_call) {
        if !member_ids.contains(&id) {
            member_ids.push(id);
        }
    }
    let page = Page {
        kind,
        level: level + 1,
        round,
        member_ids,
        via: target.notify.clone(),
    };
    chain.state = ChainState::Waiting;
    chain.level = Some(level);
    chain.round = round;
    // From now, not from the due time: a late tick still gives the level
    // its whole wait.
    chain.due_at_ms = Some(now_ms + wait_ms(&chain.rule, level));
    Some(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T0: i64 = 1_764_835_200_000;

    fn rule(value: serde_json::Value) -> EscalationRule {
        serde_json::from_value(value).unwrap()
    }

    /// Two levels: alice, then the "primary" schedule's on-call member.
    fn two_levels(extra: serde_json::Value) -> EscalationRule {
        let mut body = json!({
            "name": "default",
            "levels": [
                {"targets": {"member_ids": ["alice"]}, "escalate_after_minutes": 1},
                {"targets": {"schedule_ids": ["primary"]}, "escalate_after_minutes": 10}
            ]
        });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        rule(body)
    }

    fn primary(schedule: &str, _at: i64) -> Vec<String> {
        match schedule {
            "primary" => vec!["bob".to_string(), "alice".to_string()],
            _ => Vec::new(),
        }
    }

    fn incident() -> Incident {
        serde_json::from_value(json!({
            "incident_id": "i1", "channel_id": "c1", "title": "disk full on db-1",
            "severity": "Critical", "status": "Triggered", "labels": {"team": "db"},
            "alert_count": 1, "active_alert_count": 1, "created_at": 0,
            "acknowledged_at": null, "closed_at": null
        }))
        .unwrap()
    }

    fn facts(status: IncidentStatus) -> Facts {
        Facts {
            status,
            flapping: false,
            muted: false,
        }
    }

    fn compiled(rule: EscalationRule) -> CompiledEscalation {
        EscalationRules { rules: vec![rule] }.compile().unwrap()
    }

    /// The default two-level chain, opened at T0 (level 1 paged).
    fn started() -> Decision {
        let rules = compiled(two_levels(json!({})));
        start(
            &rules,
            &incident(),
            facts(IncidentStatus::Triggered),
            T0,
            &primary,
        )
        .unwrap()
    }

    fn tick(chain: &Chain, status: IncidentStatus, now: i64) -> Decision {
        step(chain, facts(status), Input::Tick, now, &primary)
    }

    /// Simulated time: a tick every 10 s from T0 for `minutes`, with the
    /// inputs applied at their minute (and the status they leave behind).
    /// Returns (minute, page) for every page.
    fn simulate(
        rule: EscalationRule,
        minutes: i64,
        inputs: &[(i64, Input, IncidentStatus)],
    ) -> (Vec<(f64, Page)>, Chain) {
        let rules = compiled(rule);
        let mut status = IncidentStatus::Triggered;
        let mut pages = Vec::new();
        let first = start(&rules, &incident(), facts(status), T0, &primary).unwrap();
        pages.extend(first.page.map(|p| (0.0, p)));
        let mut chain = first.chain;
        let mut pending = inputs.to_vec();
        for tick in 1..=minutes * 6 {
            let now = T0 + tick * 10_000;
            let mut step_once = |input, status| {
                let d = step(&chain, facts(status), input, now, &primary);
                pages.extend(d.page.map(|p| ((now - T0) as f64 / 60_000.0, p)));
                chain = d.chain;
            };
            while let Some(&(minute, input, after)) = pending.first() {
                if T0 + minute * MINUTE_MS > now {
                    break;
                }
                status = after;
                step_once(input, status);
                pending.remove(0);
            }
            step_once(Input::Tick, status);
        }
        (pages, chain)
    }

    fn summary(pages: &[(f64, Page)]) -> Vec<(f64, &'static str, usize, u32)> {
        pages
            .iter()
            .map(|(m, p)| (*m, p.kind.timeline_type(), p.level, p.round))
            .collect()
    }

    #[test]
    fn two_levels_page_at_once_then_escalate_after_a_minute() {
        let (pages, chain) = simulate(two_levels(json!({})), 8 * 60, &[]);
        assert_eq!(
            summary(&pages),
            vec![(0.0, "i_assign", 1, 0), (1.0, "i_escalate", 2, 0)]
        );
        assert_eq!(pages[0].1.member_ids, vec!["alice"]);
        assert_eq!(
            pages[1].1.member_ids,
            vec!["bob", "alice"],
            "the schedule's on-call"
        );
        assert_eq!(pages[0].1.via, vec![Via::Email, Via::Im], "default: both");
        assert_eq!(chain.state, ChainState::Exhausted);
        assert_eq!(chain.due_at_ms, None);
    }

    #[test]
    fn repeat_starts_again_from_level_one() {
        let (pages, _) = simulate(two_levels(json!({"repeat": 2})), 8 * 60, &[]);
        assert_eq!(
            summary(&pages),
            vec![
                (0.0, "i_assign", 1, 0),
                (1.0, "i_escalate", 2, 0),
                (11.0, "i_assign", 1, 1),
                (12.0, "i_escalate", 2, 1),
                (22.0, "i_assign", 1, 2),
                (23.0, "i_escalate", 2, 2),
            ]
        );
    }

    #[test]
    fn a_blip_within_the_delay_pages_nobody() {
        let rule = two_levels(json!({"delay_minutes": 5}));
        let (pages, chain) = simulate(
            rule.clone(),
            6 * 60,
            &[(3, Input::Close, IncidentStatus::Closed)],
        );
        assert!(pages.is_empty());
        assert_eq!(chain.state, ChainState::Closed);
        // Left open, level 1 comes after the delay.
        let (pages, _) = simulate(rule, 60, &[]);
        assert_eq!(summary(&pages)[0], (5.0, "i_assign", 1, 0));
    }

    #[test]
    fn ack_stops_a_not_acked_chain_and_unack_resumes_it_with_a_fresh_timer() {
        let rule = two_levels(json!({}));
        let (pages, chain) = simulate(
            rule.clone(),
            5 * 60,
            &[(0, Input::Ack, IncidentStatus::Processing)],
        );
        assert_eq!(summary(&pages), vec![(0.0, "i_assign", 1, 0)]);
        assert_eq!(chain.state, ChainState::Acked);
        let (pages, _) = simulate(
            rule,
            5 * 60,
            &[
                (0, Input::Ack, IncidentStatus::Processing),
                (30, Input::Unack, IncidentStatus::Triggered),
            ],
        );
        assert_eq!(
            summary(&pages),
            vec![(0.0, "i_assign", 1, 0), (31.0, "i_escalate", 2, 0)],
            "level 1 resumes at minute 30 and escalates one minute later"
        );
    }

    #[test]
    fn a_not_closed_chain_escalates_past_an_ack_but_close_stops_it() {
        let rule = two_levels(json!({"escalate_when": "not_closed", "repeat": 6}));
        let (pages, chain) = simulate(
            rule,
            10 * 60,
            &[
                (0, Input::Ack, IncidentStatus::Processing),
                (15, Input::Close, IncidentStatus::Closed),
            ],
        );
        assert_eq!(
            summary(&pages),
            vec![
                (0.0, "i_assign", 1, 0),
                (1.0, "i_escalate", 2, 0),
                (11.0, "i_assign", 1, 1),
                (12.0, "i_escalate", 2, 1)
            ]
        );
        assert_eq!(chain.state, ChainState::Closed);
    }

    #[test]
    fn reopen_restarts_at_level_one() {
        let (pages, _) = simulate(
            two_levels(json!({})),
            3 * 60,
            &[
                (5, Input::Close, IncidentStatus::Closed),
                (60, Input::Reopen, IncidentStatus::Triggered),
            ],
        );
        assert_eq!(
            summary(&pages),
            vec![
                (0.0, "i_assign", 1, 0),
                (1.0, "i_escalate", 2, 0),
                (60.0, "i_assign", 1, 0),
                (61.0, "i_escalate", 2, 0),
            ]
        );
    }

    #[test]
    fn flapping_or_muted_incidents_page_nobody() {
        let rules = compiled(two_levels(json!({})));
        for (flapping, muted) in [(true, false), (false, true)] {
            let f = Facts {
                status: IncidentStatus::Triggered,
                flapping,
                muted,
            };
            let d = start(&rules, &incident(), f, T0, &primary).unwrap();
            assert_eq!(d.page, None);
            assert_eq!(d.chain.state, ChainState::Suppressed);
            let later = step(
                &d.chain,
                facts(IncidentStatus::Triggered),
                Input::Reopen,
                T0 + 3_600_000,
                &primary,
            );
            assert_eq!(later.page, None, "a suppressed chain stays quiet");
        }
        // Marked flapping while the chain runs: it stops paging.
        let d = started();
        let f = Facts {
            status: IncidentStatus::Triggered,
            flapping: true,
            muted: false,
        };
        let later = step(&d.chain, f, Input::Tick, T0 + 3_600_000, &primary);
        assert_eq!(
            (later.page, later.chain.state),
            (None, ChainState::Suppressed)
        );
    }

    #[test]
    fn a_repeated_tick_pages_once_and_a_stale_version_is_visible() {
        let d = started();
        assert_eq!(d.chain.version, 1);
        // Two instances step the same stored chain at the same due time: both
        // decide the same page from the same version; the store's condition on
        // `version` lets one write. Stepping the written chain again pages nothing.
        let now = T0 + MINUTE_MS;
        let a = tick(&d.chain, IncidentStatus::Triggered, now);
        let b = tick(&d.chain, IncidentStatus::Triggered, now);
        assert_eq!(a, b);
        assert!(a.page.is_some() && a.changed(&d.chain));
        let again = tick(&a.chain, IncidentStatus::Triggered, now);
        assert_eq!(again.page, None);
        assert!(!again.changed(&a.chain));
        // Before it is due, a tick changes nothing.
        let early = tick(&a.chain, IncidentStatus::Triggered, now + 1);
        assert!(!early.changed(&a.chain));
    }

    #[test]
    fn a_schedule_target_pages_whoever_is_on_call_then() {
        let schedule: crate::engine::schedule::Schedule = serde_json::from_value(json!({
            "name": "primary", "time_zone": "UTC",
            "layers": [{"name": "l", "member_ids": ["bob", "carol"], "start": T0 / 1000,
                        "shift": {"unit": "hours", "length": 1}}]
        }))
        .unwrap();
        let schedules = HashMap::from([("primary".to_string(), schedule.compile().unwrap())]);
        let rule = two_levels(json!({"repeat": 6}));
        let rules = compiled(rule);
        let d = start(
            &rules,
            &incident(),
            facts(IncidentStatus::Triggered),
            T0,
            &schedules,
        )
        .unwrap();
        let mut chain = d.chain;
        let mut escalations = Vec::new();
        for minute in 1..=70 {
            let now = T0 + minute * MINUTE_MS;
            let d = step(
                &chain,
                facts(IncidentStatus::Triggered),
                Input::Tick,
                now,
                &schedules,
            );
            if let Some(page) = d.page.filter(|p| p.kind == PageKind::Escalate) {
                escalations.push((minute, page.member_ids));
            }
            chain = d.chain;
        }
        let who = |name: &str| vec![name.to_string()];
        // Level 2 every 11 minutes from minute 1: bob's hour, then carol's.
        let expected: Vec<(i64, Vec<String>)> = [1, 12, 23, 34, 45, 56]
            .into_iter()
            .map(|m| (m, who("bob")))
            .chain([(67, who("carol"))])
            .collect();
        assert_eq!(escalations, expected);
        let missing: HashMap<String, CompiledSchedule> = HashMap::new();
        assert!(missing.on_call("primary", T0).is_empty());
    }

    #[test]
    fn a_missed_ack_or_close_is_noticed_at_the_due_tick() {
        let d = started();
        let acked = tick(&d.chain, IncidentStatus::Processing, T0 + MINUTE_MS);
        assert_eq!((acked.page, acked.chain.state), (None, ChainState::Acked));
        let closed = tick(&d.chain, IncidentStatus::Closed, T0 + MINUTE_MS);
        assert_eq!(
            (closed.page, closed.chain.state),
            (None, ChainState::Closed)
        );
    }

    #[test]
    fn the_first_enabled_matching_rule_is_chosen() {
        let rules = EscalationRules {
            rules: vec![
                rule(json!({"name": "off", "enabled": false, "levels": [{"targets": {"member_ids": ["x"]}, "escalate_after_minutes": 5}]})),
                rule(json!({"name": "web", "if": [[{"key": "labels.team", "oper": "IN", "vals": ["web"]}]],
                            "levels": [{"targets": {"member_ids": ["w"]}, "escalate_after_minutes": 5}]})),
                rule(json!({"name": "critical", "if": [[{"key": "severity", "oper": "IN", "vals": ["Critical"]}]],
                            "levels": [{"targets": {"member_ids": ["c"]}, "escalate_after_minutes": 5}]})),
                rule(json!({"name": "rest", "levels": [{"targets": {"member_ids": ["r"]}, "escalate_after_minutes": 5}]})),
            ],
        }
        .compile()
        .unwrap();
        let mut i = incident();
        assert_eq!(rules.choose(&i).map(|r| r.name.as_str()), Some("critical"));
        i.severity = serde_json::from_value(json!("Warning")).unwrap();
        assert_eq!(rules.choose(&i).map(|r| r.name.as_str()), Some("rest"));
        assert!(
            CompiledEscalation::default().choose(&i).is_none(),
            "no rules: nobody"
        );
        assert!(start(
            &CompiledEscalation::default(),
            &i,
            facts(IncidentStatus::Triggered),
            T0,
            &primary
        )
        .is_none());
    }

    #[test]
    fn validation_names_the_field() {
        let base = json!({"rules": [{
            "name": "r", "delay_minutes": 0, "repeat": 0,
            "if": [[{"key": "title", "oper": "IN", "vals": ["*disk*"]}]],
            "levels": [{"targets": {"member_ids": ["a"], "schedule_ids": ["s"]}, "notify": ["email"], "escalate_after_minutes": 1}]
        }]});
        let parse = |v: serde_json::Value| serde_json::from_value::<EscalationRules>(v).unwrap();
        assert!(parse(base.clone()).validate().is_ok());
        let cases = [
            (
                "/rules/0/delay_minutes",
                json!(61),
                "rules[0].delay_minutes:",
            ),
            ("/rules/0/repeat", json!(7), "rules[0].repeat:"),
            (
                "/rules/0/levels/0/escalate_after_minutes",
                json!(0),
                "rules[0].levels[0].escalate_after_minutes:",
            ),
            (
                "/rules/0/levels/0/escalate_after_minutes",
                json!(721),
                "rules[0].levels[0].escalate_after_minutes:",
            ),
            ("/rules/0/levels", json!([]), "rules[0].levels:"),
            (
                "/rules/0/levels/0/targets",
                json!({}),
                "rules[0].levels[0].targets:",
            ),
            (
                "/rules/0/levels/0/targets/member_ids/0",
                json!("a b"),
                "rules[0].levels[0].targets.member_ids[0]:",
            ),
            (
                "/rules/0/levels/0/notify",
                json!([]),
                "rules[0].levels[0].notify:",
            ),
            (
                "/rules/0/levels/0/notify",
                json!(["email", "im", "email"]),
                "rules[0].levels[0].notify[2]: each method at most once",
            ),
            (
                "/rules/0/if/0/0/key",
                json!("description"),
                "rules[0].if[0][0].key:",
            ),
            (
                "/rules/0/if/0/0/vals/0",
                json!("/[/"),
                "rules[0].if[0][0].vals[0]:",
            ),
            ("/rules/0/name", json!(""), "rules[0].name:"),
        ];
        for (pointer, value, expected) in cases {
            let mut body = base.clone();
            *body.pointer_mut(pointer).unwrap() = value;
            let err = parse(body).validate().unwrap_err();
            assert_eq!(err.code(), "InvalidParameter");
            assert!(
                err.message().starts_with(expected),
                "{pointer}: {}",
                err.message()
            );
        }
        let mut body = base.clone();
        let one = body["rules"][0].clone();
        body["rules"] = json!(vec![one; 21]);
        assert!(parse(body)
            .validate()
            .unwrap_err()
            .message()
            .starts_with("rules:"));
        let mut body = base.clone();
        let level = body["rules"][0]["levels"][0].clone();
        body["rules"][0]["levels"] = json!(vec![level; 6]);
        assert!(parse(body)
            .validate()
            .unwrap_err()
            .message()
            .starts_with("rules[0].levels:"));
        let rules = parse(base);
        assert_eq!(
            rules.member_places(),
            vec![("rules[0].levels[0].targets.member_ids[0]".to_string(), "a")]
        );
        assert_eq!(
            rules.schedule_places(),
            vec![(
                "rules[0].levels[0].targets.schedule_ids[0]".to_string(),
                "s"
            )]
        );
    }
}
