//! `POST /event/push/alert/sentry`: the Sentry internal integration webhook endpoint.

fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_push(shared::intake::integrations::sentry::ENDPOINT)
}
