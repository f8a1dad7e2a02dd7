//! Outbound webhooks (SPEC 11): the last room of an event's path. The table's
//! stream feeds [`notify`], which turns each record into the changes it
//! carries ([`event`]), matches them against the webhooks read fresh for the
//! batch ([`config`]), shapes each for its kind ([`kinds`]: generic, Slack,
//! Feishu, DingTalk, WeCom, one file each behind one interface, signed by
//! [`sign`]) and sends it with retries ([`service`]), recording every
//! delivery in the history; [`target`] keeps it off addresses it must not
//! reach. A delivery that cannot be made now waits in its (webhook,
//! incident) queue and is tried again on [`retry`]'s schedule by the notify
//! function's scheduled run. [`stream`] reads DynamoDB Local's stream for
//! tests and `make run`. [`email`] pages on-call members over SMTP (SPEC 14).

pub mod ack_link;
pub mod config;
pub mod email;
pub mod escalate;
pub mod event;
pub mod kinds;
pub mod notify;
pub mod retry;
pub mod service;
pub mod sign;
pub mod stream;
pub mod target;
