//! `POST /event/push/alert/prometheus`: the Prometheus Alertmanager webhook integration endpoint.

fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_push(shared::intake::integrations::prometheus::ENDPOINT)
}
