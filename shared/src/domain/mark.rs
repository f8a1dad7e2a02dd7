//! Why an alert is stored but joins no incident.

/// Why an alert joins no incident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mark {
    /// By this silence rule.
    Silenced(String),
    /// By this source alert.
    Inhibited(String),
}
