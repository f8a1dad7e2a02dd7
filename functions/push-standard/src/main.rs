//! `POST /event/push/alert/standard`: the standard integration endpoint.

fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_push(shared::intake::integrations::standard::ENDPOINT)
}
