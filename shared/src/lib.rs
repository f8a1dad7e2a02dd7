//! The library every function of the alert-intake service uses.
//!
//! The path an event takes, module by module: [`http`] checks the request,
//! [`integrations`] parses the vendor payload, [`event`] applies the limits of
//! the standard event (with [`template`] for titles), [`engine`] decides what
//! the event does to its alert and incident, and [`store`] makes it so in
//! DynamoDB. [`push`] and [`api`] are the two handlers the functions run.

pub mod api;
pub mod app;
pub mod conditions;
pub mod engine;
pub mod error;
pub mod event;
pub mod hashing;
pub mod http;
pub mod integrations;
pub mod model;
pub mod push;
pub mod ratelimit;
pub mod routing;
pub mod runtime;
pub mod store;
pub mod template;
