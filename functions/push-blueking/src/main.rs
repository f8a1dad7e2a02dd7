//! `POST /event/push/alert/blueking`: the blueking integration endpoint.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_push(shared::intake::integrations::blueking::ENDPOINT).await
}
