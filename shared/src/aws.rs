//! The AWS SDK configuration every client of the service is built from, once
//! per cold start: one HTTP client on the one rustls + ring TLS stack, with
//! the caller's timeouts (so that an unreachable service is a prompt error,
//! never a hang).

use aws_config::timeout::TimeoutConfig;
use aws_config::SdkConfig;
use aws_smithy_http_client::tls;

pub async fn sdk_config(timeouts: TimeoutConfig) -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(timeouts)
        .load()
        .await
}
