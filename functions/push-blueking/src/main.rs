//! `POST /event/push/alert/blueking`: the blueking integration endpoint.

fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_push(shared::intake::integrations::blueking::ENDPOINT)
}
