//! The library every function of the alert-intake service uses. Its folders
//! follow the path an event takes:
//!
//! 1. [`intake`]: the HTTP edge, the push handler, one parser per sender,
//!    the standard event and its limits, title templates, rate limits.
//! 2. [`rules`]: the condition language and routing.
//! 3. [`engine`]: pure decisions: what an event does to its alert, and every
//!    incident transition.
//! 4. [`store`]: DynamoDB, turning decisions into conditional writes.
//! 5. [`outbound`]: webhooks, fed by the table's stream (notify function).
//! 6. [`api`]: the management API, its OpenAPI document and the console.
//!
//! Under them all, the ground floor: [`domain`] (the standard event, marks,
//! outcomes, the clock), [`json`] (decoding that names the field), [`ids`],
//! [`hashing`], [`html`] (escaping), [`aws`] (the SDK configuration),
//! [`error`] (the one error type) and
//! [`metrics`] (the service's own metrics, written into its log lines). [`model`] holds the records
//! the API shows; [`app`] and [`runtime`] wire a function together.

pub mod api;
pub mod app;
pub mod aws;
pub mod domain;
pub mod engine;
pub mod error;
pub mod hashing;
pub mod html;
pub mod ids;
pub mod intake;
pub mod json;
pub mod metrics;
pub mod model;
pub mod outbound;
pub mod rules;
pub mod runtime;
pub mod store;
