//! `POST /event/push/alert/aliyun-prometheus`: the aliyun-prometheus integration endpoint.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_push(shared::intake::integrations::aliyun_prometheus::ENDPOINT).await
}
