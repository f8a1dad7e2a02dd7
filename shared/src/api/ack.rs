//! `/ack/{token}` (SPEC 14): the acknowledgement link of an email. No app
//! key: the signed token (outbound/ack_link.rs) names the incident and the
//! member, and is the only authority.
//!
//! - `GET` shows the incident (title, severity, status) with an Acknowledge
//!   button, and changes nothing: mail scanners and link previews open
//!   every link they see.
//! - `POST` (the button: a form posting to the same URL) acknowledges as
//!   that member, through the same path as `POST /api/incidents/{id}/ack`
//!   (timeline `i_ack`, `detail.actor` = `{"member_id"}`). Again is fine.
//! - A bad, tampered or expired token, an incident that does not exist or
//!   is closed: 404, one page that names nothing.
//!
//! The pages are plain HTML with one inline style (allowed by its hash,
//! like the console's), no script and nothing loaded from elsewhere; every
//! piece of the incident is escaped. The token is never logged: the span
//! records the route pattern and, once verified, the incident id.
//!
//! Requests: GET one GetItem of the incident (plus the signing key's once
//! per cold start); POST that, then the lifecycle's own (a GetItem and the
//! step's transaction).

use std::sync::LazyLock;

use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::domain::time::now_ms;
use crate::engine::Action;
use crate::error::{ApiError, ApiResult};
use crate::html::escape;
use crate::intake::http::{respond, Inbound, Outbound};
use crate::model::{Incident, IncidentStatus};
use crate::outbound::ack_link::{verify, AckClaim, ACK_PATH_PREFIX};

/// The route's pattern, as the template, the watch router and the OpenAPI
/// document write it.
pub const ACK_ROUTE: &str = "/ack/{token}";

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#1d2433;line-height:1.5}\
h1{font-size:1.4rem}dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}dt{color:#5b6478}dd{margin:0;overflow-wrap:anywhere}\
button{font-size:1rem;padding:.6rem 1.4rem;border:0;border-radius:.3rem;background:#1f6feb;color:#fff;cursor:pointer}\
.done{color:#116329}";

/// Only the page's own inline style; no script at all; the form may post
/// only here.
static CSP: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::digest(STYLE.as_bytes());
    format!(
        "default-src 'none'; style-src 'sha256-{}'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
});

/// Whether [`serve`] answers this path: anything under `/ack/`.
pub(super) fn is_ack_path(path: &str) -> bool {
    path.starts_with(ACK_PATH_PREFIX)
}

/// The answer for a path under `/ack/` (the token is the rest of it).
pub(super) async fn serve(app: &App, req: &Inbound, request_id: &str) -> Outbound {
    let token = req
        .path
        .strip_prefix(ACK_PATH_PREFIX)
        .unwrap_or_default()
        .trim_end_matches('/');
    let span = tracing::Span::current();
    span.record("route", ACK_ROUTE);
    let method = req.method.to_ascii_uppercase();
    let result = match method.as_str() {
        "GET" => show(app, token).await,
        "POST" => acknowledge(app, token).await,
        _ => {
            let refused =
                ApiError::MethodNotAllowed(format!("method: {ACK_ROUTE} takes GET, POST"));
            return respond(request_id, Err(refused));
        }
    };
    match result {
        Ok(page) => {
            tracing::info!(status = 200, "request served");
            page
        }
        Err(ApiError::ResourceNotFound(_)) => {
            tracing::warn!(status = 404, "ack link refused");
            not_found_page()
        }
        Err(err) => {
            tracing::error!(
                status = err.status(),
                code = err.code(),
                message = err.message(),
                "ack link failed"
            );
            html(
                500,
                "Something went wrong",
                "<p>The incident could not be read or changed just now. Try again in a moment.</p>",
            )
        }
    }
}

/// The claim of a token that is genuine and unexpired, and its incident if
/// it is still open; every other case is the same not-found.
async fn open_incident(app: &App, token: &str) -> ApiResult<(AckClaim, Incident)> {
    let secret = app.store.ack_link_secret().await?;
    let claim = verify(&secret, token, now_ms().div_euclid(1000))?;
    let incident = app
        .store
        .get_incident(&claim.incident_id)
        .await?
        .filter(|i| i.status != IncidentStatus::Closed)
        .ok_or_else(link_not_found)?;
    let span = tracing::Span::current();
    span.record("id", claim.incident_id.as_str());
    span.record("member_id", claim.member_id.as_str());
    Ok((claim, incident))
}

fn link_not_found() -> ApiError {
    ApiError::ResourceNotFound("not found".into())
}

async fn show(app: &App, token: &str) -> ApiResult<Outbound> {
    let (_, incident) = open_incident(app, token).await?;
    Ok(match incident.status {
        IncidentStatus::Processing => html(
            200,
            "Already acknowledged",
            &format!(
                "{}<p class=\"done\">This incident is already acknowledged.</p>",
                describe(&incident)
            ),
        ),
        _ => html(
            200,
            "Acknowledge this incident?",
            &format!(
                "{}<form method=\"post\"><button type=\"submit\">Acknowledge</button></form>",
                describe(&incident)
            ),
        ),
    })
}

async fn acknowledge(app: &App, token: &str) -> ApiResult<Outbound> {
    let (claim, before) = open_incident(app, token).await?;
    let after = app
        .store
        .act_on_incident_with(
            &claim.incident_id,
            Action::Ack,
            json!({ "actor": { "member_id": claim.member_id } }),
            now_ms(),
        )
        .await
        .map_err(|e| match e {
            // Closed (refused) or gone since it was read: as if never open.
            ApiError::InvalidParameter(_) | ApiError::ResourceNotFound(_) => link_not_found(),
            other => other,
        })?;
    let (title, words) = if before.status == IncidentStatus::Processing {
        ("Already acknowledged", "It was already acknowledged.")
    } else {
        tracing::info!("incident acknowledged by link");
        ("Acknowledged", "You acknowledged this incident.")
    };
    Ok(html(
        200,
        title,
        &format!("{}<p class=\"done\">{words}</p>", describe(&after)),
    ))
}

/// Title, severity and status, escaped.
fn describe(incident: &Incident) -> String {
    format!(
        "<dl><dt>Incident</dt><dd>{}</dd><dt>Severity</dt><dd>{}</dd><dt>Status</dt><dd>{}</dd></dl>",
        escape(&incident.title),
        escape(incident.severity.as_str()),
        escape(incident.status.as_str()),
    )
}

fn not_found_page() -> Outbound {
    html(
        404,
        "This link does not work",
        "<p>It may have expired, its incident may be closed, or the link may be incomplete. Open the incident from the console instead.</p>",
    )
}

/// A whole page: `heading` and `body` are this module's own markup, with
/// anything from the incident already escaped.
fn html(status: u16, heading: &str, body: &str) -> Outbound {
    Outbound {
        status,
        headers: vec![
            ("content-type".into(), "text/html; charset=utf-8".into()),
            ("content-security-policy".into(), CSP.clone()),
            ("cache-control".into(), "no-store".into()),
            ("x-content-type-options".into(), "nosniff".into()),
            ("referrer-policy".into(), "no-referrer".into()),
            ("x-robots-tag".into(), "noindex".into()),
        ],
        body: format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><title>{heading}</title><style>{STYLE}</style></head>\
<body><main><h1>{heading}</h1>{body}</main></body></html>"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_self_contained_and_confined() {
        let page = not_found_page();
        assert_eq!(page.status, 404);
        assert!(page.body.contains(&format!("<style>{STYLE}</style>")));
        for needle in ["<script", "src=", "href=", "url(", "@import"] {
            assert!(!page.body.contains(needle), "{needle}");
        }
        let header = |name: &str| {
            page.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(header("cache-control"), "no-store");
        assert_eq!(header("referrer-policy"), "no-referrer");
        let csp = header("content-security-policy");
        assert!(csp.starts_with("default-src 'none'"));
        let digest = Sha256::digest(STYLE.as_bytes());
        assert!(csp.contains(&base64::engine::general_purpose::STANDARD.encode(digest)));
        assert!(!csp.contains("script-src"));
    }
}
