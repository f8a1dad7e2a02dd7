//! `POST /event/push/alert/prometheus`: the Prometheus Alertmanager webhook integration endpoint.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_push(shared::intake::integrations::prometheus::ENDPOINT).await
}
