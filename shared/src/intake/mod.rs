//! The HTTP edge: where a push enters. The request is checked ([`http`],
//! [`push`]), the sender's payload parsed by its [`integrations`] source, each
//! alert normalised into the standard event (`domain::event`, titles by
//! `domain::template`), and the integration's rate limit
//! (`rules::ratelimit`, counted by `store::ratelimit`) consulted before
//! anything is written.

pub mod http;
pub mod integrations;
pub mod push;
pub mod shaping;
pub mod sns;
pub mod source_actions;
