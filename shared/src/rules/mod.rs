//! What a team configures to shape the noise: the one condition language
//! ([`conditions`]) and the routes of shared integrations ([`routing`]), each
//! compiled once and cached with its integration or channel.

pub mod conditions;
pub mod routing;
