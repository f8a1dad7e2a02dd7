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

async fn app() -> Result<Arc<App>, Error> {
    init_tracing();
    Ok(Arc::new(App::from_env().await?))
}

/// Serve one push integration.
pub async fn serve_push(endpoint: Endpoint) -> Result<(), Error> {
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
}

/// Serve the management API.
pub async fn serve_api() -> Result<(), Error> {
    let app = app().await?;
    lambda_http::run(service_fn(move |req: Request| {
        let app = Arc::clone(&app);
        async move {
            let out = crate::api::handle_api(&app, Inbound::from_lambda(req)).await;
            Ok::<Response<Body>, Error>(out.into_lambda())
        }
    }))
    .await
}

/// Serve the notify function: batches of the table's stream records.
pub async fn serve_notify() -> Result<(), Error> {
    use aws_lambda_events::event::dynamodb::Event;
    use lambda_runtime::LambdaEvent;
    use tracing::Instrument;

    let app = app().await?;
    let notifier = Arc::new(crate::outbound::notify::Notifier::from_env(
        app.store.clone(),
    ));
    lambda_runtime::run(lambda_runtime::service_fn(move |ev: LambdaEvent<Event>| {
        let notifier = Arc::clone(&notifier);
        let span = tracing::info_span!("notify", request_id = %ev.context.request_id);
        // Boxed: the batch's future is deep (lanes of deliveries).
        let fut: std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>> = Box::pin(
            async move { Ok::<_, Error>(notifier.handle(&ev.payload.records).await) }
                .instrument(span),
        );
        fut
    }))
    .await
}
