//! Every incident transition (SPEC sections 5 and 11), decided here and
//! nowhere else. A decision is a [`Change`]: the store writes it (status,
//! index keys, timestamps) with the `from` status as its condition, and the
//! timeline and webhooks read its [`Transition`].

use serde::Serialize;

use crate::intake::event::EventStatus;
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
        }
    }
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
