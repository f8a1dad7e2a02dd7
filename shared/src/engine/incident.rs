//! Every incident transition (SPEC sections 5 and 11), decided here and
//! nowhere else. A decision is a [`Change`]: the store writes it (status,
//! index keys, timestamps) with the `from` status as its condition, and the
//! timeline and webhooks read its [`Transition`].

use serde::Serialize;

use crate::domain::event::EventStatus;
use crate::model::IncidentStatus;

/// Who closed an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClosedBy {
    /// Its last open alert recovered.
    Auto,
    /// Someone resolved it.
    Manual,
}

/// Everything that can happen to an incident, named as the timeline names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// A new alert opened it (`i_new`).
    Open,
    /// An alert joined it (`a_merge`).
    Merge,
    /// `Triggered` → `Processing` (`i_ack`).
    Ack,
    /// `Processing` → `Triggered` (`i_unack`).
    Unack,
    /// → `Closed` (`i_rslv`).
    Resolve(ClosedBy),
    /// `Closed` → `Triggered` (`i_reopen`).
    Reopen,
    /// Someone commented (`i_comm`); no status change.
    Comment,
    /// `alert_count` reached a storm threshold (`i_storm`).
    Storm(u32),
    /// An alert key flaps: the incident is marked (`i_m_flapping`).
    Flapping,
    /// Its escalation paged level 1 of a round (`i_assign`).
    Assign,
    /// Its escalation paged a later level (`i_escalate`).
    Escalate,
}

impl Transition {
    /// The timeline type of SPEC section 11.
    pub fn timeline_type(self) -> &'static str {
        match self {
            Self::Open => "i_new",
            Self::Merge => "a_merge",
            Self::Ack => "i_ack",
            Self::Unack => "i_unack",
            Self::Resolve(_) => "i_rslv",
            Self::Reopen => "i_reopen",
            Self::Comment => "i_comm",
            Self::Storm(_) => "i_storm",
            Self::Flapping => "i_m_flapping",
            Self::Assign => "i_assign",
            Self::Escalate => "i_escalate",
        }
    }

    /// What the timeline says about it beyond its type (callers add the
    /// alert id of a merge, a comment's text, a reopen's reason).
    pub fn detail(self) -> serde_json::Value {
        match self {
            Self::Resolve(by) => serde_json::json!({ "by": by }),
            Self::Storm(threshold) => serde_json::json!({ "threshold": threshold }),
            _ => serde_json::json!({}),
        }
    }
}

/// Every timeline type, in the order SPEC section 11 lists them, then the
/// on-call ones of section 14 (`i_assign`, `i_escalate`: a level of an
/// escalation chain began, recorded by the escalation tick): the default
/// event types of a webhook.
pub const INCIDENT_EVENT_TYPES: [&str; 11] = [
    "i_new",
    "a_merge",
    "i_ack",
    "i_unack",
    "i_rslv",
    "i_reopen",
    "i_comm",
    "i_storm",
    "i_m_flapping",
    "i_assign",
    "i_escalate",
];

/// The thresholds an incident's `alert_count` passed going from `old` to
/// `new` alerts, above the storm level it already has, lowest first: each is
/// recorded once (a later pass of the same threshold finds it at or below
/// `storm_level`).
pub fn storm_crossings(thresholds: &[u32], storm_level: i64, old: i64, new: i64) -> Vec<u32> {
    let mut crossed: Vec<u32> = thresholds
        .iter()
        .copied()
        .filter(|&t| {
            let t = i64::from(t);
            old < t && t <= new && t > storm_level
        })
        .collect();
    crossed.sort_unstable();
    crossed.dedup();
    crossed
}

/// What a key's recent openings say about the alert it opens now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlapState {
    /// When the key opened its recent alerts (ms), oldest first.
    pub opens: Vec<i64>,
    /// New incidents of the key are marked until then (ms).
    pub muted_until_ms: i64,
}

/// Flapping (SPEC 11), counted per alert key: the key opens an alert at
/// `now_ms`. Answers the key's state afterwards and whether the alert's
/// incident is marked: it is the `max_changes`-th opening within the window,
/// or the key is still muted from an earlier mark (a mark restarts the mute).
pub fn flapping_on_open(
    settings: &crate::model::Flapping,
    state: &FlapState,
    now_ms: i64,
) -> (FlapState, bool) {
    if !settings.enabled {
        return (state.clone(), false);
    }
    let window_ms = i64::from(settings.window_minutes) * 60_000;
    let mut opens: Vec<i64> = state
        .opens
        .iter()
        .copied()
        .filter(|&t| t > now_ms - window_ms && t <= now_ms)
        .collect();
    opens.push(now_ms);
    let keep = settings.max_changes.max(1) as usize;
    if opens.len() > keep {
        opens.drain(..opens.len() - keep);
    }
    let flaps = opens.len() >= keep;
    let muted = now_ms < state.muted_until_ms;
    let muted_until_ms = if flaps {
        now_ms + i64::from(settings.mute_minutes) * 60_000
    } else {
        state.muted_until_ms
    };
    (
        FlapState {
            opens,
            muted_until_ms,
        },
        flaps || muted,
    )
}

/// What a person asks of an incident through the management API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Ack,
    Unack,
    Resolve,
    Reopen,
}

/// A status change to write: only if the incident is still in `from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub transition: Transition,
    pub from: IncidentStatus,
    pub to: IncidentStatus,
}

/// Why an action cannot apply, in words for the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal(pub String);

/// What `action` does to an incident in `status`. `Ok(None)`: it already is
/// what the action asks (repeating an action is harmless, so retries are).
pub fn decide_action(status: IncidentStatus, action: Action) -> Result<Option<Change>, Refusal> {
    use IncidentStatus::{Closed, Processing, Triggered};
    let change = |transition, to| {
        Ok(Some(Change {
            transition,
            from: status,
            to,
        }))
    };
    match (action, status) {
        (Action::Ack, Triggered) => change(Transition::Ack, Processing),
        (Action::Ack, Processing) | (Action::Unack, Triggered) => Ok(None),
        (Action::Unack, Processing) => change(Transition::Unack, Triggered),
        (Action::Ack | Action::Unack, Closed) => Err(Refusal(
            "the incident is closed; reopen it first".to_string(),
        )),
        (Action::Resolve, Triggered | Processing) => {
            change(Transition::Resolve(ClosedBy::Manual), Closed)
        }
        (Action::Resolve, Closed) => Ok(None),
        (Action::Reopen, Closed) => change(Transition::Reopen, Triggered),
        (Action::Reopen, Triggered | Processing) => Ok(None),
    }
}

/// Whether a recovering alert closes its incident by itself: it was the last
/// open one and the channel lets incidents close on recovery.
pub fn recovery_closes(active_alert_count: i64, auto_close: bool) -> bool {
    auto_close && active_alert_count <= 1
}

/// Whether an incident takes a new alert at `now_ms`: open, not being closed
/// by hand, and inside its merge window (`deadline_ms` 0: no window).
pub fn accepts_alert(status: IncidentStatus, closing: bool, deadline_ms: i64, now_ms: i64) -> bool {
    status != IncidentStatus::Closed && !closing && (deadline_ms == 0 || deadline_ms > now_ms)
}

/// The incident severity: the highest one in the set its alerts contributed.
pub fn highest_severity<'a>(severities: impl IntoIterator<Item = &'a EventStatus>) -> EventStatus {
    severities
        .into_iter()
        .copied()
        .filter(|s| !s.is_ok())
        .max_by_key(|s| s.rank())
        .unwrap_or(EventStatus::Info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use IncidentStatus::{Closed, Processing, Triggered};

    #[test]
    fn actions_move_between_statuses() {
        let to = |s, a| decide_action(s, a).map(|c| c.map(|c| (c.transition, c.to)));
        assert_eq!(
            to(Triggered, Action::Ack),
            Ok(Some((Transition::Ack, Processing)))
        );
        assert_eq!(to(Processing, Action::Ack), Ok(None));
        assert_eq!(
            to(Processing, Action::Unack),
            Ok(Some((Transition::Unack, Triggered)))
        );
        assert_eq!(to(Triggered, Action::Unack), Ok(None));
        assert!(to(Closed, Action::Ack).is_err());
        assert!(to(Closed, Action::Unack).is_err());
        for s in [Triggered, Processing] {
            assert_eq!(
                to(s, Action::Resolve),
                Ok(Some((Transition::Resolve(ClosedBy::Manual), Closed)))
            );
            assert_eq!(to(s, Action::Reopen), Ok(None));
        }
        assert_eq!(to(Closed, Action::Resolve), Ok(None));
        assert_eq!(
            to(Closed, Action::Reopen),
            Ok(Some((Transition::Reopen, Triggered)))
        );
    }

    #[test]
    fn the_change_is_conditional_on_the_status_it_was_decided_from() {
        let c = decide_action(Processing, Action::Resolve).unwrap().unwrap();
        assert_eq!(c.from, Processing);
    }

    #[test]
    fn recovery_closes_only_the_last_open_alert_with_auto_close() {
        assert!(recovery_closes(1, true));
        assert!(!recovery_closes(2, true));
        assert!(!recovery_closes(1, false));
    }

    #[test]
    fn merges_need_an_open_incident_inside_its_window() {
        assert!(accepts_alert(Triggered, false, 0, 5));
        assert!(accepts_alert(Processing, false, 10, 5));
        assert!(!accepts_alert(Processing, false, 5, 5));
        assert!(!accepts_alert(Closed, false, 0, 5));
        assert!(!accepts_alert(Triggered, true, 0, 5));
    }

    #[test]
    fn timeline_types() {
        assert_eq!(
            Transition::Resolve(ClosedBy::Auto).timeline_type(),
            "i_rslv"
        );
        assert_eq!(Transition::Merge.timeline_type(), "a_merge");
        assert_eq!(Transition::Storm(10).detail()["threshold"], 10);
        assert_eq!(Transition::Resolve(ClosedBy::Auto).detail()["by"], "auto");
        assert_eq!(Transition::Flapping.timeline_type(), "i_m_flapping");
    }

    #[test]
    fn storm_thresholds_are_crossed_once_each() {
        assert_eq!(storm_crossings(&[10, 100], 0, 9, 10), vec![10]);
        assert_eq!(storm_crossings(&[10, 100], 10, 10, 11), Vec::<u32>::new());
        assert_eq!(storm_crossings(&[100, 10], 0, 5, 150), vec![10, 100]);
        // Already recorded (another writer got there first): not again.
        assert_eq!(storm_crossings(&[10, 100], 100, 9, 150), Vec::<u32>::new());
        assert_eq!(storm_crossings(&[10, 100], 10, 50, 100), vec![100]);
        assert_eq!(storm_crossings(&[], 0, 0, 1000), Vec::<u32>::new());
    }

    #[test]
    fn flapping_marks_the_nth_opening_in_the_window_then_mutes() {
        let settings = crate::model::Flapping {
            enabled: true,
            max_changes: 3,
            window_minutes: 10,
            mute_minutes: 30,
        };
        let min = 60_000;
        let mut state = FlapState::default();
        let mut marks = Vec::new();
        for t in [0, min, 2 * min] {
            let (next, mark) = flapping_on_open(&settings, &state, t);
            state = next;
            marks.push(mark);
        }
        assert_eq!(marks, [false, false, true]);
        assert_eq!(state.muted_until_ms, 32 * min);
        // Muted: a lone opening 20 minutes later is marked too.
        let (next, mark) = flapping_on_open(&settings, &state, 25 * min);
        assert!(mark);
        assert_eq!(next.opens, vec![25 * min]);
        // After the mute, openings outside the window are not counted.
        let (_, mark) = flapping_on_open(&settings, &next, 60 * min);
        assert!(!mark);
        // Disabled: never.
        let off = crate::model::Flapping {
            enabled: false,
            ..settings
        };
        assert!(!flapping_on_open(&off, &state, 2 * min).1);
    }

    #[test]
    fn openings_spread_wider_than_the_window_never_flap() {
        let settings = crate::model::Flapping {
            enabled: true,
            max_changes: 2,
            window_minutes: 1,
            mute_minutes: 5,
        };
        let mut state = FlapState::default();
        for i in 0..5 {
            let (next, mark) = flapping_on_open(&settings, &state, i * 61_000);
            assert!(!mark);
            state = next;
        }
    }

    #[test]
    fn highest_severity_ignores_ok() {
        assert_eq!(
            highest_severity(&[
                EventStatus::Info,
                EventStatus::Critical,
                EventStatus::Warning
            ]),
            EventStatus::Critical
        );
        assert_eq!(highest_severity(&[EventStatus::Ok]), EventStatus::Info);
    }
}
