//! `POST /event/push/alert/aws-cloudwatch`: the AWS CloudWatch alarms through SNS integration endpoint.

fn main() -> Result<(), lambda_http::Error> {
    shared::runtime::serve_push(shared::intake::integrations::aws_cloudwatch::ENDPOINT)
}
