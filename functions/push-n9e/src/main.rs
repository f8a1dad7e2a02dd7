//! `POST /event/push/alert/n9e`: the Nightingale (n9e) integration endpoint.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_push(shared::intake::integrations::n9e::ENDPOINT).await
}
