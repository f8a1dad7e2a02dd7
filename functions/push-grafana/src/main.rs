//! `POST /event/push/alert/grafana`: the Grafana alerting webhook integration endpoint.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_push(shared::intake::integrations::grafana::ENDPOINT).await
}
