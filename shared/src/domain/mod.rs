//! The ground floor: the types every layer speaks. The standard event and
//! its limits ([`event`]), webhooks and deliveries ([`delivery`]), title templates ([`template`]), an alert's
//! [`mark`], on-call [`member`]s, what an event did ([`outcome`]) and the clock ([`time`]). Nothing
//! here imports another module of the crate but `error`, `hashing` and `ids`.

pub mod delivery;
pub mod event;
pub mod mark;
pub mod member;
pub mod outcome;
pub mod sns;
pub mod template;
pub mod time;
