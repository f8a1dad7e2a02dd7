//! `POST /event/push/alert/pagerduty`: the PagerDuty Events API (v1 and v2) integration endpoint.

fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_push(shared::intake::integrations::pagerduty::ENDPOINT)
}
