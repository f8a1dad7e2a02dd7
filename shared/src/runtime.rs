//! Lambda wiring shared by every function: JSON tracing, one `App` per cold
//! start, and the adapters between `lambda_http` and the handlers.

use std::sync::Arc;

use lambda_http::{service_fn, Body, Error, Request, Response};

use crate::app::App;
use crate::intake::http::Inbound;
use crate::intake::integrations::Endpoint;

/// JSON logs, one object per line; the handlers' spans put the request id on each.
/// `RUST_LOG` takes a level and `target=level` directives (`Targets`): span
/// and field filters would link a regex engine into every function for them.
pub fn init_tracing() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;

    let filter: Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time();
    let _ = tracing_subscriber::registry()
        .with(json.with_filter(filter))
        .try_init();
}

/// The system's certificate bundle, first found wins: Amazon Linux 2023
/// (Lambda's provided.al2023), then Debian and Ubuntu.
const CERT_BUNDLES: &[&str] = &[
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
];

/// Point the TLS root loader (`rustls-native-certs`, used by the SDK's client
/// and the webhook client) at the system's one bundle file. Unpointed, it
/// reads that file and then every file of the certificate folder (146 on
/// Debian), about a third of a cold start here. Left alone when either
/// variable is set, or no bundle is found.
fn prefer_cert_bundle() {
    if std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some() {
        return;
    }
    if let Some(bundle) = CERT_BUNDLES
        .iter()
        .find(|p| std::path::Path::new(p).is_file())
    {
        // Sound only while the process has one thread: before the runtime starts.
        std::env::set_var("SSL_CERT_FILE", bundle);
    }
}

/// The runtime `#[tokio::main]` would build, after the process-wide settings.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    prefer_cert_bundle();
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn app() -> Result<Arc<App>, Error> {
    init_tracing();
    crate::metrics::enable();
    Ok(Arc::new(App::from_env().await?))
}

/// Serve one push integration.
pub fn serve_push(endpoint: Endpoint) -> Result<(), Error> {
    runtime()?.block_on(async move {
        let app = app().await?;
        lambda_http::run(service_fn(move |req: Request| {
            let app = Arc::clone(&app);
            async move {
                let out =
                    crate::intake::push::handle_endpoint(&app, endpoint, Inbound::from_lambda(req))
                        .await;
                Ok::<Response<Body>, Error>(out.into_lambda())
            }
        }))
        .await
    })
}

/// Serve the management API.
pub fn serve_api() -> Result<(), Error> {
    runtime()?.block_on(async {
        let app = app().await?;
        lambda_http::run(service_fn(move |req: Request| {
            let app = Arc::clone(&app);
            async move {
                let out = crate::api::handle_api(&app, Inbound::from_lambda(req)).await;
                Ok::<Response<Body>, Error>(out.into_lambda())
            }
        }))
        .await
    })
}

/// Serve the notify function: batches of the table's stream records, and
/// its scheduled run (an EventBridge schedule; `make run`'s stream pump
/// sends the same event) that retries the deliveries now due.
pub fn serve_notify() -> Result<(), Error> {
    use aws_lambda_events::event::dynamodb::Event;
    use lambda_runtime::LambdaEvent;
    use tracing::Instrument;

    runtime()?.block_on(async {
        let app = app().await?;
        let notifier = Arc::new(crate::outbound::notify::Notifier::from_env(
            app.store.clone(),
        ));
        lambda_runtime::run(lambda_runtime::service_fn(
            move |ev: LambdaEvent<serde_json::Value>| {
                let notifier = Arc::clone(&notifier);
                let span = tracing::info_span!("notify", request_id = %ev.context.request_id);
                // Boxed: the batch's future is deep (lanes of deliveries).
                let fut: std::pin::Pin<
                    Box<dyn std::future::Future<Output = Result<serde_json::Value, Error>> + Send>,
                > = Box::pin(
                    async move {
                        if ev.payload.get("Records").is_some() {
                            let batch: Event = serde_json::from_value(ev.payload)?;
                            let response = notifier.handle(&batch.records).await;
                            Ok(serde_json::to_value(response)?)
                        } else {
                            let report = notifier.retry_due().await?;
                            // A run with nothing due is the common case (every
                            // minute in AWS, every 5 s under `make run`): not news.
                            if report.lanes > 0 {
                                tracing::info!(?report, "scheduled delivery run");
                            } else {
                                tracing::debug!(?report, "scheduled delivery run");
                            }
                            Ok(serde_json::json!({"lanes": report.lanes}))
                        }
                    }
                    .instrument(span),
                );
                fut
            },
        ))
        .await
    })
}

/// Serve the escalation tick: each invocation (a scheduled event) steps the
/// chains due now and sends the emails due now.
pub fn serve_escalate() -> Result<(), Error> {
    use lambda_runtime::LambdaEvent;
    use tracing::Instrument;

    runtime()?.block_on(async {
        let app = app().await?;
        let escalator = Arc::new(crate::outbound::escalate::Escalator::from_env().await?);
        lambda_runtime::run(lambda_runtime::service_fn(
            move |ev: LambdaEvent<serde_json::Value>| {
                let (app, escalator) = (Arc::clone(&app), Arc::clone(&escalator));
                let span = tracing::info_span!("escalate", request_id = %ev.context.request_id);
                async move {
                    let report = escalator.tick(&app, crate::domain::time::now_ms()).await?;
                    if report.chains > 0 || report.emails_retrying > 0 {
                        tracing::info!(?report, "escalation tick");
                    } else {
                        tracing::debug!(?report, "escalation tick");
                    }
                    Ok::<_, Error>(serde_json::json!({
                        "chains": report.chains,
                        "pages": report.pages,
                    }))
                }
                .instrument(span)
            },
        ))
        .await
    })
}
