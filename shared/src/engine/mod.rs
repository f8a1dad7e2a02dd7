//! Pure decisions, no I/O. [`alert`]: what an event does to its alert
//! (SPEC section 5). [`grouping`]: which incident a new alert belongs to.
//! [`incident`]: every incident transition, decided in one place as one value
//! that the store writes (and that the timeline and webhooks read).

pub mod alert;
pub mod escalation;
pub mod grouping;
pub mod incident;
pub mod schedule;
pub mod step;

pub use alert::*;
pub use grouping::*;
pub use incident::*;
pub use step::{IncidentStep, TimelineEntry};
