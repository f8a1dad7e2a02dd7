//! The network side of the CloudWatch/SNS integration: fetching signing
//! certificates (cached per instance) and confirming subscriptions. Only
//! https URLs on `sns.<region>.amazonaws.com(.cn)` hosts are ever fetched
//! ([`is_sns_url`] is checked again here, not only by the parser), so a
//! forged message cannot make the function call anything else.
//!
//! One TLS stack: hyper + rustls (ring), the one the DynamoDB client uses,
//! trusting the system's roots. Signatures are verified with ring through
//! webpki's certificate reader: RSA PKCS#1 v1.5 with SHA-1 (SNS signature
//! version 1) or SHA-256 (version 2).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ring::signature;
use rustls_pki_types::{
    alg_id, AlgorithmIdentifier, CertificateDer, InvalidSignature, SignatureVerificationAlgorithm,
};

use crate::error::{ApiError, ApiResult};
use crate::intake::integrations::aws_cloudwatch::{is_sns_url, SnsSignature};

/// Each fetch (connect, TLS, answer) must finish within this.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Certificates are a few KiB; SubscribeURL answers are small XML.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Certificates kept per instance (SNS rotates them rarely). Full, the cache
/// keeps what it has: a caller cannot empty it (SPEC 15).
const MAX_CACHED_CERTIFICATES: usize = 32;

type HttpsClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Empty<Bytes>,
>;

fn certificates() -> &'static Mutex<HashMap<String, Arc<Vec<u8>>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Vec<u8>>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The cache key of a signing certificate URL: its host and path, when the
/// URL is exactly `https://sns.<region>.amazonaws.com(.cn)/SimpleNotificationService-<hex>.pem`
/// (the form SNS uses), with no query or fragment. So the keys that can ever
/// be cached are SNS's real certificates, not whatever a caller writes.
fn certificate_key(url: &str) -> Option<String> {
    if !is_sns_url(url) || url.contains(['?', '#']) {
        return None;
    }
    let rest = url.get("https://".len()..)?;
    let (host, path) = rest.split_at(rest.find('/')?);
    let id = path
        .strip_prefix("/SimpleNotificationService-")?
        .strip_suffix(".pem")?;
    let id_ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let host = host.to_ascii_lowercase();
    let host = host.strip_suffix(":443").unwrap_or(&host);
    id_ok.then(|| format!("{host}{path}"))
}

fn certificate_url_refused() -> ApiError {
    ApiError::Unauthorized(
        "SigningCertURL: must be https://sns.<region>.amazonaws.com/SimpleNotificationService-<id>.pem"
            .into(),
    )
}

/// Keep a certificate unless the cache is full (then the ones it has stay).
fn remember(key: String, der: Arc<Vec<u8>>) {
    if let Ok(mut cache) = certificates().lock() {
        if cache.len() < MAX_CACHED_CERTIFICATES || cache.contains_key(&key) {
            cache.insert(key, der);
        }
    }
}

/// Put a certificate (PEM) in this instance's cache, as a fetch would.
/// Tests use it to verify real signatures without the network.
pub fn cache_certificate(url: &str, pem: &str) -> ApiResult<()> {
    let key = certificate_key(url).ok_or_else(certificate_url_refused)?;
    remember(key, Arc::new(pem_to_der(pem.as_bytes())?));
    Ok(())
}

fn client() -> ApiResult<&'static HttpsClient> {
    static CLIENT: OnceLock<HttpsClient> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(Arc::new(rustls::crypto::ring::default_provider()))
        .map_err(|e| ApiError::internal(format!("no TLS roots for SNS fetches: {e}")))?
        .https_only()
        .enable_http1()
        .build();
    Ok(CLIENT.get_or_init(|| Client::builder(TokioExecutor::new()).build(connector)))
}

/// GET an SNS URL; the body of a 2xx answer.
async fn fetch(url: &str, what: &str) -> ApiResult<Vec<u8>> {
    if !is_sns_url(url) {
        return Err(ApiError::invalid(format!(
            "{what}: must be an https URL on an sns.<region>.amazonaws.com host"
        )));
    }
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| ApiError::invalid(format!("{what}: not a valid URL")))?;
    let failed = |why: String| ApiError::internal(format!("{what}: fetching it failed ({why})"));
    let request = hyper::Request::get(uri)
        .body(Empty::<Bytes>::new())
        .map_err(|e| failed(e.to_string()))?;
    let response = tokio::time::timeout(FETCH_TIMEOUT, client()?.request(request))
        .await
        .map_err(|_| failed("timed out".into()))?
        .map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    let body = tokio::time::timeout(
        FETCH_TIMEOUT,
        Limited::new(response.into_body(), MAX_RESPONSE_BYTES).collect(),
    )
    .await
    .map_err(|_| failed("timed out".into()))?
    .map_err(|e| failed(e.to_string()))?
    .to_bytes();
    if !status.is_success() {
        return Err(failed(format!("HTTP {}", status.as_u16())));
    }
    Ok(body.to_vec())
}

async fn certificate(url: &str) -> ApiResult<Arc<Vec<u8>>> {
    let key = certificate_key(url).ok_or_else(certificate_url_refused)?;
    if let Some(der) = certificates()
        .lock()
        .ok()
        .and_then(|c| c.get(&key).cloned())
    {
        return Ok(der);
    }
    let der = Arc::new(pem_to_der(&fetch(url, "SigningCertURL").await?)?);
    remember(key, Arc::clone(&der));
    Ok(der)
}

/// Check one message's signature; a bad one is `Unauthorized`.
pub async fn verify(sig: &SnsSignature) -> ApiResult<()> {
    let der = certificate(&sig.cert_url).await?;
    verify_with_certificate(sig, &der)
}

/// The signature against a certificate (DER).
pub fn verify_with_certificate(sig: &SnsSignature, der: &[u8]) -> ApiResult<()> {
    let cert_der = CertificateDer::from(der);
    let cert = webpki::EndEntityCert::try_from(&cert_der).map_err(|_| {
        ApiError::Unauthorized("SigningCertURL: the certificate could not be read".into())
    })?;
    let algorithm: &dyn SignatureVerificationAlgorithm = if sig.sha256 {
        &RsaPkcs1(&signature::RSA_PKCS1_2048_8192_SHA256)
    } else {
        &RsaPkcs1(&signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY)
    };
    cert.verify_signature(algorithm, sig.string_to_sign.as_bytes(), &sig.signature)
        .map_err(|_| {
            ApiError::Unauthorized(
                "Signature: does not verify against the SNS signing certificate".into(),
            )
        })
}

/// Confirm a subscription: SNS takes the GET of its `SubscribeURL` as the yes.
pub async fn confirm_subscription(subscribe_url: &str) -> ApiResult<()> {
    fetch(subscribe_url, "SubscribeURL").await.map(|_| ())
}

/// RSA PKCS#1 v1.5 through ring, for webpki's end-entity signature check
/// (webpki itself offers no SHA-1, which SNS signature version 1 needs).
#[derive(Debug)]
struct RsaPkcs1(&'static signature::RsaParameters);

impl SignatureVerificationAlgorithm for RsaPkcs1 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        signature::UnparsedPublicKey::new(self.0, public_key)
            .verify(message, signature)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_ENCRYPTION
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_PKCS1_SHA256
    }
}

/// The first `CERTIFICATE` block of a PEM text, decoded.
fn pem_to_der(pem: &[u8]) -> ApiResult<Vec<u8>> {
    use base64::Engine;
    let unreadable = || ApiError::Unauthorized("SigningCertURL: not a PEM certificate".into());
    let text = std::str::from_utf8(pem).map_err(|_| unreadable())?;
    let start = text
        .find("-----BEGIN CERTIFICATE-----")
        .ok_or_else(unreadable)?
        + "-----BEGIN CERTIFICATE-----".len();
    let end = text[start..]
        .find("-----END CERTIFICATE-----")
        .ok_or_else(unreadable)?
        + start;
    let b64: String = text[start..end].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| unreadable())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::integrations::{
        BodyFormat, IntegrationKind, ParseSettings, PushBody, SourceAction, SourceRequest,
    };

    fn fixture(path: &str) -> String {
        std::fs::read_to_string(format!("{}/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn signature_of(body: &str) -> SnsSignature {
        let empty = Default::default();
        let parsed = IntegrationKind::AwsCloudwatch
            .source()
            .parse(
                &SourceRequest {
                    method: "POST",
                    headers: &empty,
                    query: &empty,
                    body: PushBody {
                        bytes: body.as_bytes(),
                        format: BodyFormat::Json,
                    },
                },
                &ParseSettings::default(),
            )
            .unwrap();
        match parsed.action {
            Some(SourceAction::VerifySns(s)) => s,
            Some(SourceAction::ConfirmSnsSubscription {
                signature: Some(s), ..
            }) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn versions_1_and_2_verify_and_tampering_does_not() {
        let der = pem_to_der(fixture("sns-signing/cert.pem").as_bytes()).unwrap();
        for file in [
            "aws-cloudwatch/alarm-v1.json",
            "aws-cloudwatch/ok-v2.json",
            "sns-signing/subscription-confirmation.json",
        ] {
            let body = fixture(file);
            verify_with_certificate(&signature_of(&body), &der).unwrap();
            let tampered = body
                .replace("api-5xx-rate", "api-5xx-rat3")
                .replace("You have", "You hav3");
            let err = verify_with_certificate(&signature_of(&tampered), &der).unwrap_err();
            assert_eq!(err.code(), "Unauthorized", "{file}");
        }
        // The version says which digest: a v1 signature read as v2 fails.
        let mut sig = signature_of(&fixture("aws-cloudwatch/alarm-v1.json"));
        sig.sha256 = true;
        assert!(verify_with_certificate(&sig, &der).is_err());
    }

    #[test]
    fn pem_garbage_is_refused() {
        for bad in [
            "",
            "-----BEGIN CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----",
        ] {
            assert_eq!(
                pem_to_der(bad.as_bytes()).unwrap_err().code(),
                "Unauthorized"
            );
        }
    }

    #[test]
    fn certificate_keys_are_sns_certificates_only() {
        let real = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem";
        assert_eq!(
            certificate_key(real).as_deref(),
            Some("sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem")
        );
        assert_eq!(
            certificate_key(&real.replace(".com/", ".com:443/")),
            certificate_key(real)
        );
        for other in [
            format!("{real}?v=1"),
            format!("{real}#x"),
            real.replace("SimpleNotificationService-", "x-"),
            real.replace("9c64", "zz64"),
            "https://sns.us-east-1.amazonaws.com/anything.pem".to_string(),
            real.replace("https://", "http://"),
            real.replace("sns.us-east-1.amazonaws.com", "evil.example"),
        ] {
            assert_eq!(certificate_key(&other), None, "{other}");
        }
    }

    #[tokio::test]
    async fn a_full_cache_keeps_its_certificates() {
        let pem = fixture("sns-signing/cert.pem");
        let url = |i: usize| {
            format!("https://sns.eu-west-9.amazonaws.com/SimpleNotificationService-{i:032x}.pem")
        };
        for i in 0..MAX_CACHED_CERTIFICATES + 8 {
            cache_certificate(&url(i), &pem).unwrap();
        }
        {
            let cache = certificates().lock().unwrap();
            assert!(cache.len() <= MAX_CACHED_CERTIFICATES);
            // What this instance had first is still there: nothing was cleared.
            assert!(cache.contains_key(certificate_key(&url(0)).unwrap().as_str()));
        }
        // A URL with a query is refused before any fetch or cache use.
        let sig = signature_of(&fixture("aws-cloudwatch/alarm-v1.json"));
        let sig = SnsSignature {
            cert_url: format!("{}?x=1", url(0)),
            ..sig
        };
        assert_eq!(verify(&sig).await.unwrap_err().code(), "Unauthorized");
    }

    #[tokio::test]
    async fn only_sns_hosts_are_fetched() {
        for url in [
            "http://127.0.0.1:1/x.pem",
            "https://169.254.169.254/latest/meta-data",
            "https://sns.us-east-1.amazonaws.com.evil.example/x",
        ] {
            let err = confirm_subscription(url).await.unwrap_err();
            assert_eq!(err.code(), "InvalidParameter", "{url}");
        }
    }
}
