//! The escalation tick (SPEC 14): every minute in AWS (an EventBridge
//! schedule), every 5 s under `make run`. It finds the incidents whose chain
//! is due with one Query of the due index, lets the engine step each chain,
//! and has the one incident writer record the step (the chain, the
//! responders, `i_assign`/`i_escalate` on the timeline) together with the
//! notifications it starts, all under the chain's version: when two ticks
//! race, one write wins and the other changes nothing, so each level is
//! notified once. Then it sends the emails; an email that cannot be sent
//! now is retried on a schedule, and one whose tick died is found in the due
//! index and sent by a later tick. IM goes through the webhooks: the
//! timeline entry reaches the channel's IM webhooks through the stream, with
//! mentions (durable delivery, outbound/notify.rs).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::app::App;
use crate::domain::delivery::{Webhook, WebhookKind};
use crate::engine::escalation::{self, Chain, EscalateWhen, Facts, Input, Page, PageKind, Via};
use crate::engine::schedule::CompiledSchedule;
use crate::engine::step;
use crate::error::ApiResult;
use crate::model::{Incident, IncidentStatus};
use crate::outbound::email::{Mailer, PageEmail, SendFailure, NOT_CONFIGURED};
use crate::store::escalations::{NewNotification, PendingEmail, EMAIL_ATTEMPTS};

type WebhooksOnce = tokio::sync::OnceCell<Vec<Webhook>>;

/// Due chains read per Query, and Queries per tick at most.
const DUE_PAGE: i32 = 100;
const DUE_PAGES_PER_TICK: usize = 10;
/// Chains stepped at once.
const CONCURRENCY: usize = 8;

/// What a tick needs besides the table.
pub struct Escalator {
    /// `None` without `SMTP_URL`: email notifications are recorded `failed`.
    pub mailer: Option<Arc<Mailer>>,
    /// The console's base URL, for the links in emails.
    pub public_base_url: String,
}

/// What one tick did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Due chains stepped.
    pub chains: usize,
    /// Levels paged.
    pub pages: usize,
    pub emails_sent: usize,
    pub emails_failed: usize,
    pub emails_retrying: usize,
}

impl TickReport {
    fn add(&mut self, other: TickReport) {
        self.chains += other.chains;
        self.pages += other.pages;
        self.emails_sent += other.emails_sent;
        self.emails_failed += other.emails_failed;
        self.emails_retrying += other.emails_retrying;
    }
}

/// The member facts a page needs: who they are, where to mail, IM ids.
#[derive(Clone, Debug, Default)]
pub struct Contact {
    pub name: String,
    pub email: String,
    /// `{"slack_user_id", "feishu_open_id", "dingtalk_mobile", "wecom_user_id"}`, each optional.
    pub im: Value,
}

impl Escalator {
    /// Once per cold start: the mailer loads its root certificates and
    /// reads the SMTP password's secret.
    pub async fn from_env() -> ApiResult<Escalator> {
        let mailer = Mailer::from_env().await?.map(Arc::new);
        Ok(Escalator {
            mailer,
            public_base_url: std::env::var("PUBLIC_BASE_URL").unwrap_or_default(),
        })
    }

    /// One tick at `now_ms`.
    pub async fn tick(&self, app: &App, now_ms: i64) -> ApiResult<TickReport> {
        let mut report = TickReport::default();
        let mut after = None;
        // The webhooks, read once per tick and only if a page wants IM.
        let webhooks = WebhooksOnce::new();
        for _ in 0..DUE_PAGES_PER_TICK {
            let (due, last) = app.store.due_chains(now_ms, DUE_PAGE, after).await?;
            let results: Vec<ApiResult<TickReport>> = futures_util::stream::iter(due.iter())
                .map(|incident_id| self.step_chain(app, incident_id, &webhooks, now_ms))
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            for result in results {
                match result {
                    Ok(one) => report.add(one),
                    // One incident's trouble does not stop the others; it
                    // stays due and the next tick tries again.
                    Err(e) => tracing::error!(error = %e, "an escalation step failed"),
                }
            }
            // The next page starts after this one: chains that failed stay
            // due and are not read again by this tick.
            match last {
                Some(key) => after = Some(key),
                None => break,
            }
        }
        let emails = app.store.claim_due_emails(now_ms, DUE_PAGE).await?;
        for email in emails {
            // One email's trouble does not stop the others: its claim runs
            // out and a later tick tries it again.
            match self.retry_email(app, &email, now_ms).await {
                Ok(one) => report.add(one),
                Err(e) => tracing::error!(
                    error = %e,
                    incident_id = %email.incident_id,
                    "an escalation email could not be retried"
                ),
            }
        }
        Ok(report)
    }

    /// A claimed email whose retry is due (or whose tick died), composed
    /// from the incident as it is now. An incident closed since, or
    /// acknowledged under a chain that stops at an ack, pages nobody more:
    /// the email is recorded `failed` with that reason.
    async fn retry_email(
        &self,
        app: &App,
        email: &PendingEmail,
        now_ms: i64,
    ) -> ApiResult<TickReport> {
        let Some((incident, chain)) = app.store.incident_with_chain(&email.incident_id).await?
        else {
            return self.send_email(app, email, None, now_ms).await;
        };
        let stopped = match incident.status {
            IncidentStatus::Closed => Some("the incident closed before the email could be sent"),
            IncidentStatus::Processing
                if chain
                    .as_ref()
                    .is_some_and(|c| c.rule.escalate_when == EscalateWhen::NotAcked) =>
            {
                Some("the incident was acknowledged before the email could be sent")
            }
            _ => None,
        };
        if let Some(reason) = stopped {
            app.store
                .finish_email(email, Err(reason.to_string()), None)
                .await?;
            crate::metrics::notification("failed");
            return Ok(TickReport {
                emails_failed: 1,
                ..TickReport::default()
            });
        }
        let channel_name = channel_name(app, &incident).await?;
        let message = self
            .compose(&incident, &channel_name, email, app, now_ms)
            .await?;
        self.send_email(app, email, Some(message), now_ms).await
    }

    /// Step one due chain; a page is written with its notifications, then
    /// its emails are sent.
    async fn step_chain(
        &self,
        app: &App,
        incident_id: &str,
        webhooks: &WebhooksOnce,
        now_ms: i64,
    ) -> ApiResult<TickReport> {
        let mut report = TickReport::default();
        let Some((incident, Some(chain))) = app.store.incident_with_chain(incident_id).await?
        else {
            return Ok(report);
        };
        report.chains = 1;
        let schedules = self.schedules_of(app, &chain).await?;
        let facts = Facts::of(&incident, false);
        let decision = escalation::step(&chain, facts, Input::Tick, now_ms, &schedules);
        if !decision.changed(&chain) {
            return Ok(report);
        }
        let contacts = match &decision.page {
            Some(page) => load_contacts(app, &page.member_ids).await?,
            None => HashMap::new(),
        };
        let notifications = match &decision.page {
            Some(page) => {
                self.notifications(app, &incident, page, &contacts, webhooks)
                    .await?
            }
            None => Vec::new(),
        };
        let members = match &decision.page {
            Some(page) => members_detail(page, &contacts),
            None => Value::Null,
        };
        let paged = decision.page.clone();
        let step = step::escalation_tick(
            incident_id,
            &incident.channel_id,
            incident.status,
            &chain,
            decision,
            members,
            now_ms,
        )?;
        let Some(emails) = app.store.write_escalation(&step, &notifications).await? else {
            // Another tick (or an ack) wrote first: it is theirs.
            return Ok(report);
        };
        for note in &notifications {
            if note.status != "pending" {
                crate::metrics::notification(note.status);
            }
        }
        if let Some(page) = paged {
            report.pages = 1;
            if page.member_ids.is_empty() {
                // A schedule with a gap, or one deleted: the level counts as
                // paged and the chain moves on after its wait. Said loudly,
                // and counted as a failed notification (its alarm sees it).
                crate::metrics::notification("failed");
                tracing::warn!(
                    incident_id,
                    level = page.level,
                    "an escalation level paged nobody: its targets resolve to no member now"
                );
            }
            // How late the level went out: the tick's period plus any backlog.
            if let Some(due) = chain.due_at_ms {
                crate::metrics::escalation_lag(now_ms - due);
            }
            tracing::info!(
                incident_id,
                level = page.level,
                round = page.round,
                members = page.member_ids.len(),
                kind = page.kind.timeline_type(),
                "escalation level paged"
            );
        }
        if !emails.is_empty() {
            let channel_name = channel_name(app, &incident).await?;
            for email in emails {
                let message = self
                    .compose(&incident, &channel_name, &email, app, now_ms)
                    .await?;
                report.add(self.send_email(app, &email, Some(message), now_ms).await?);
            }
        }
        Ok(report)
    }

    /// The schedules the chain's rule names, compiled (one BatchGetItem).
    async fn schedules_of(
        &self,
        app: &App,
        chain: &Chain,
    ) -> ApiResult<HashMap<String, CompiledSchedule>> {
        let ids: BTreeSet<String> = chain
            .rule
            .levels
            .iter()
            .flat_map(|l| l.targets.schedule_ids.iter().cloned())
            .collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        load_schedules(app, &ids.into_iter().collect::<Vec<_>>()).await
    }

    /// What each member of a page gets, as the notifications to record.
    async fn notifications(
        &self,
        app: &App,
        incident: &Incident,
        page: &Page,
        contacts: &HashMap<String, Contact>,
        webhooks: &WebhooksOnce,
    ) -> ApiResult<Vec<NewNotification>> {
        let event_type = page.kind.timeline_type();
        let im_hooks = if page.via.contains(&Via::Im) {
            webhooks
                .get_or_try_init(|| app.store.list_webhooks())
                .await?
                .iter()
                .filter(|h| {
                    h.kind != WebhookKind::Generic && h.wants(event_type, &incident.channel_id)
                })
                .count()
        } else {
            0
        };
        let mut out = Vec::new();
        for member_id in &page.member_ids {
            let contact = contacts.get(member_id);
            for via in &page.via {
                let (status, error, address) = match (via, contact) {
                    (_, None) => (
                        "failed",
                        Some("no such member (deleted?)".to_string()),
                        None,
                    ),
                    (Via::Email, Some(_)) if self.mailer.is_none() => {
                        ("failed", Some(NOT_CONFIGURED.to_string()), None)
                    }
                    (Via::Email, Some(c)) if c.email.is_empty() => (
                        "failed",
                        Some("the member has no email address".to_string()),
                        None,
                    ),
                    (Via::Email, Some(c)) => ("pending", None, Some(c.email.clone())),
                    // IM rides on the webhook deliveries of the timeline
                    // entry: `sent` means handed to them (their history
                    // shows each attempt).
                    (Via::Im, Some(_)) if im_hooks > 0 => ("sent", None, None),
                    (Via::Im, Some(_)) => (
                        "failed",
                        Some(format!(
                            "no enabled IM webhook takes {event_type} events of this channel"
                        )),
                        None,
                    ),
                };
                out.push(NewNotification {
                    name: contact.map(|c| c.name.clone()).unwrap_or_default(),
                    member_id: member_id.clone(),
                    via: *via,
                    level: page.level,
                    status,
                    error,
                    address,
                });
            }
        }
        Ok(out)
    }

    /// Send one claimed email and record how it went.
    async fn send_email(
        &self,
        app: &App,
        email: &PendingEmail,
        message: Option<PageEmail>,
        now_ms: i64,
    ) -> ApiResult<TickReport> {
        let mut report = TickReport::default();
        let Some(mailer) = &self.mailer else {
            app.store
                .finish_email(email, Err(NOT_CONFIGURED.into()), None)
                .await?;
            report.emails_failed = 1;
            return Ok(report);
        };
        let outcome = match &message {
            Some(message) => mailer.send(message).await,
            None => Err(SendFailure {
                transient: false,
                reason: "the incident no longer exists".into(),
            }),
        };
        match outcome {
            Ok(()) => {
                app.store.finish_email(email, Ok(()), None).await?;
                crate::metrics::notification("sent");
                report.emails_sent = 1;
            }
            Err(failure) => {
                let attempts = email.attempts + 1;
                let retry_at = (failure.transient && attempts < EMAIL_ATTEMPTS)
                    .then(|| now_ms + retry_delay_ms(attempts));
                tracing::warn!(
                    incident_id = %email.incident_id,
                    member_id = %email.member_id,
                    attempts,
                    retrying = retry_at.is_some(),
                    reason = %failure.reason,
                    "an escalation email was not sent"
                );
                app.store
                    .finish_email(email, Err(failure.reason), retry_at)
                    .await?;
                if retry_at.is_some() {
                    report.emails_retrying = 1;
                } else {
                    crate::metrics::notification("failed");
                    report.emails_failed = 1;
                }
            }
        }
        Ok(report)
    }

    /// The email of a pending notification.
    async fn compose(
        &self,
        incident: &Incident,
        channel_name: &str,
        email: &PendingEmail,
        app: &App,
        now_ms: i64,
    ) -> ApiResult<PageEmail> {
        let base = self.public_base_url.trim_end_matches('/');
        let ack_url = ack_url(app, base, &incident.incident_id, &email.member_id, now_ms).await?;
        Ok(PageEmail {
            to: email.address.clone(),
            member_name: email.name.clone(),
            incident_id: incident.incident_id.clone(),
            title: incident.title.clone(),
            severity: incident.severity.as_str().to_string(),
            channel_name: channel_name.to_string(),
            labels: incident.labels.clone(),
            console_url: format!("{base}/console#/incidents/{}", incident.incident_id),
            ack_url,
            // Level 1 opens every round (SPEC 14's i_assign); later levels escalate.
            kind: if email.level <= 1 {
                PageKind::Assign
            } else {
                PageKind::Escalate
            },
            level: email.level,
        })
    }
}

async fn channel_name(app: &App, incident: &Incident) -> ApiResult<String> {
    Ok(app
        .store
        .get_channel(&incident.channel_id)
        .await?
        .map(|c| c.name)
        .unwrap_or_else(|| incident.channel_id.clone()))
}

/// 1, 2, 4, 8 minutes between attempts (about a quarter of an hour in all).
fn retry_delay_ms(attempts: u32) -> i64 {
    60_000 * (1_i64 << attempts.saturating_sub(1).min(4))
}

/// Who each member of a page is, for the timeline entry and IM mentions.
fn members_detail(page: &Page, contacts: &HashMap<String, Contact>) -> Value {
    Value::Array(
        page.member_ids
            .iter()
            .map(|id| match contacts.get(id) {
                Some(c) => json!({"member_id": id, "name": c.name, "im": c.im}),
                None => json!({"member_id": id, "name": id, "im": {}}),
            })
            .collect(),
    )
}

/// The members a page names, by id (one BatchGetItem per 100); a member
/// deleted meanwhile is absent.
async fn load_contacts(app: &App, ids: &[String]) -> ApiResult<HashMap<String, Contact>> {
    Ok(app
        .store
        .batch_get_members(ids)
        .await?
        .into_iter()
        .map(|(id, m)| {
            let contact = Contact {
                name: m.name,
                email: m.email,
                im: serde_json::json!(m.im),
            };
            (id, contact)
        })
        .collect())
}

/// The schedules a chain names, compiled (one BatchGetItem per 100).
async fn load_schedules(app: &App, ids: &[String]) -> ApiResult<HashMap<String, CompiledSchedule>> {
    app.store.load_compiled_schedules(ids).await
}

async fn ack_url(
    app: &App,
    base: &str,
    incident_id: &str,
    member_id: &str,
    now_ms: i64,
) -> ApiResult<String> {
    let secret = app.store.ack_link_secret().await?;
    crate::outbound::ack_link::ack_url(base, &secret, incident_id, member_id, now_ms)
}
