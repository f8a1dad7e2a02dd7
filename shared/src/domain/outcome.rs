//! What one event did, as the push answer and the rules name it.

use serde::Serialize;

/// What happened to one event, as the push response tells the sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new alert opened a new incident.
    NewIncident,
    /// A new alert joined an open incident.
    Merged,
    /// The event was stored and the alert took its status, title, description and labels.
    Updated,
    /// Same status, title and description as the last event: only labels were refreshed.
    Refreshed,
    /// Identical to the alert's last event: only the duplicate counter and last-seen time moved.
    Deduplicated,
    /// A retry of an event this alert already applied: nothing moved.
    AlreadyApplied,
    /// The alert recovered.
    Recovered,
    /// Accepted, nothing changed (stale event, `Ok` without an open alert, vendor notice without state).
    Ignored,
    /// A pipeline `drop` or a channel's drop rule discarded it; nothing was stored.
    Dropped,
    /// A silence rule applies: the alert is stored marked and joins no
    /// incident (`mark`), or nothing is stored (`drop`).
    Silenced,
    /// An active source alert inhibits it: marked like a silence, or dropped.
    Inhibited,
}

impl Outcome {
    /// The name the push response uses (serde's), for metric dimensions.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NewIncident => "new_incident",
            Outcome::Merged => "merged",
            Outcome::Updated => "updated",
            Outcome::Refreshed => "refreshed",
            Outcome::Deduplicated => "deduplicated",
            Outcome::AlreadyApplied => "already_applied",
            Outcome::Recovered => "recovered",
            Outcome::Ignored => "ignored",
            Outcome::Dropped => "dropped",
            Outcome::Silenced => "silenced",
            Outcome::Inhibited => "inhibited",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_are_the_push_response_ones() {
        use Outcome::*;
        for o in [
            NewIncident,
            Merged,
            Updated,
            Refreshed,
            Deduplicated,
            AlreadyApplied,
            Recovered,
            Ignored,
            Dropped,
            Silenced,
            Inhibited,
        ] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
    }
}
