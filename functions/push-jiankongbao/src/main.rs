//! `POST /event/push/alert/jiankongbao`: the jiankongbao integration endpoint.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_push(shared::intake::integrations::jiankongbao::ENDPOINT).await
}
