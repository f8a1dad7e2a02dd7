//! `POST /event/push/alert/n9e`: the Nightingale (n9e) integration endpoint.

fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_push(shared::intake::integrations::n9e::ENDPOINT)
}
