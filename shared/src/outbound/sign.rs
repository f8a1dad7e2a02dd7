//! HMAC-SHA256 signatures: the generic kind's header, Feishu's and
//! DingTalk's `sign`. The `hmac`/`sha2` versions the AWS SDK already uses.

use base64::Engine as _;
use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2_011::Sha256>;

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// `X-Alert-Intake-Signature`: `sha256=` + hex HMAC of `timestamp.body`.
pub fn generic_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut message = Vec::with_capacity(timestamp.len() + 1 + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.push(b'.');
    message.extend_from_slice(body);
    format!(
        "sha256={}",
        crate::hashing::hex(&hmac_sha256(secret.as_bytes(), &message))
    )
}

/// Feishu/Lark custom bot: base64 HMAC keyed by `timestamp\nsecret` over nothing.
pub fn feishu_sign(secret: &str, timestamp_s: i64) -> String {
    let key = format!("{timestamp_s}\n{secret}");
    base64::engine::general_purpose::STANDARD.encode(hmac_sha256(key.as_bytes(), b""))
}

/// DingTalk custom robot: base64 HMAC keyed by the secret over
/// `timestamp_ms\nsecret` (URL-encoded by the caller).
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    let message = format!("{timestamp_ms}\n{secret}");
    base64::engine::general_purpose::STANDARD
        .encode(hmac_sha256(secret.as_bytes(), message.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            crate::hashing::hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn generic_signs_timestamp_dot_body() {
        let sig = generic_signature("Jefe", "what do ya want", b"for nothing?");
        // Same bytes as RFC 4231 case 2 except the joining dot.
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), 7 + 64);
        assert_ne!(
            sig,
            generic_signature("Jefe", "what do ya want", b"for nothing!")
        );
    }

    #[test]
    fn im_signatures_are_base64_of_32_bytes() {
        assert_eq!(feishu_sign("s", 1).len(), 44);
        assert_eq!(dingtalk_sign("s", 1).len(), 44);
        assert_ne!(feishu_sign("s", 1), feishu_sign("s", 2));
    }
}
