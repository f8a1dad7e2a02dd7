//! Incidents: reads for the management API, a person's actions on an
//! incident, and the timeline every transition writes.

pub mod lifecycle;
pub mod reads;
pub mod timeline;
pub mod writer;
