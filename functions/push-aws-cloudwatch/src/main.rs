//! `POST /event/push/alert/aws-cloudwatch`: the AWS CloudWatch alarms through SNS integration endpoint.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_push(shared::intake::integrations::aws_cloudwatch::ENDPOINT).await
}
