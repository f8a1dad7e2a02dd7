//! `POST /event/push/alert/standard`: the standard integration endpoint.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_push(shared::intake::integrations::standard::ENDPOINT).await
}
