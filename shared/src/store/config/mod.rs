//! Configuration: what an admin sets and the push path reads. Channels,
//! integrations (and their key lookup items), app keys, channel rules,
//! mapping tables, on-call members and schedules.

pub mod app_keys;
pub mod channels;
pub mod integrations;
pub mod mapping;
pub mod members;
pub mod rules;
pub mod schedules;
