//! `POST /event/push/alert/grafana`: the Grafana alerting webhook integration endpoint.

fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_push(shared::intake::integrations::grafana::ENDPOINT)
}
