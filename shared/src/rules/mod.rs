//! What a team configures to shape the noise (SPEC sections 6 and 7), in the
//! order an event meets it: an integration's enrichment and pipeline
//! ([`integration`]), the routes of shared integrations ([`routing`]), then
//! a channel's drop, silence and inhibit rules ([`channel`], with silence
//! windows in [`silence`]), and an integration's rate limit ([`ratelimit`]:
//! its windows and the lease decisions the shared counter is written by).
//! All of them test events with the one condition
//! language ([`conditions`]); each is compiled once and cached with its
//! integration or channel.

pub mod channel;
pub mod conditions;
pub mod integration;
pub mod ratelimit;
pub mod routing;
pub mod silence;
