//! Placeholder until the SMTP mailer lands (branch i20-email).

use std::collections::BTreeMap;

pub struct Mailer;

#[derive(Clone, Debug)]
pub struct SendFailure {
    pub transient: bool,
    pub reason: String,
}

#[derive(Clone, Debug)]
pub struct PageEmail {
    pub to: String,
    pub member_name: String,
    pub incident_id: String,
    pub title: String,
    pub severity: String,
    pub channel_name: String,
    pub labels: BTreeMap<String, String>,
    pub console_url: String,
    pub ack_url: String,
    pub level: usize,
}

impl Mailer {
    pub fn from_env() -> Result<Option<Mailer>, String> {
        Ok(None)
    }

    pub async fn send(&self, _msg: &PageEmail) -> Result<(), SendFailure> {
        Err(SendFailure {
            transient: false,
            reason: "not built".into(),
        })
    }
}
