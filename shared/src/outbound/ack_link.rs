//! Acknowledgement links (SPEC 14): `{PUBLIC_BASE_URL}/ack/{token}`, where
//! the token names one incident and one member and an expiry at most 7 days
//! away, signed with HMAC-SHA256 under the service's secret. Nothing is
//! stored per link. Verification compares the tag in constant time, and
//! every failure (garbage, a bad tag, expired) is the same [`NotFound`],
//! so a caller learns nothing from a guess. Whether the incident is still
//! open is the caller's check: a link works until its incident closes.
//!
//! Layout before base64url (no padding): version `1`, expiry (unix seconds,
//! u64 big-endian), incident id and member id (each one length byte, then
//! the bytes), then the 32-byte tag over a domain label and all of that.

use base64::Engine as _;
use hmac::{KeyInit, Mac};

use crate::error::{ApiError, ApiResult};
use crate::ids::{is_valid_id, MAX_ID_CHARS};

type HmacSha256 = hmac::Hmac<sha2_011::Sha256>;

/// A link works at most this long.
pub const MAX_LIFETIME_SECS: i64 = 7 * 86_400;
/// A shorter signing secret is refused.
pub const MIN_SECRET_BYTES: usize = 32;

const VERSION: u8 = 1;
const TAG_BYTES: usize = 32;
/// Keeps these tags apart from anything else the same secret might sign.
const DOMAIN: &[u8] = b"alert-intake ack-link v1\0";
/// The longest token this module issues, with room to spare: anything
/// longer is refused before it is decoded.
const MAX_TOKEN_CHARS: usize = 4 * (1 + 8 + 2 * (1 + MAX_ID_CHARS) + TAG_BYTES) / 3 + 4;

/// What a valid token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckClaim {
    pub incident_id: String,
    pub member_id: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Any token that is not valid now. It carries no reason on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotFound;

impl From<NotFound> for ApiError {
    fn from(_: NotFound) -> Self {
        ApiError::ResourceNotFound("not found".into())
    }
}

fn mac(secret: &[u8]) -> Option<HmacSha256> {
    if secret.len() < MIN_SECRET_BYTES {
        return None;
    }
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(DOMAIN);
    Some(mac)
}

/// A token for `member_id` to acknowledge `incident_id`, valid from `now`
/// (unix seconds) for `lifetime_secs` (1 s to 7 days).
pub fn issue(
    secret: &[u8],
    incident_id: &str,
    member_id: &str,
    now: i64,
    lifetime_secs: i64,
) -> ApiResult<String> {
    if !(1..=MAX_LIFETIME_SECS).contains(&lifetime_secs) {
        return Err(ApiError::internal(
            "ack link lifetime must be 1 s to 7 days",
        ));
    }
    if !is_valid_id(incident_id) || !is_valid_id(member_id) {
        return Err(ApiError::internal("ack link ids must be service ids"));
    }
    let expires_at = u64::try_from(now + lifetime_secs)
        .map_err(|_| ApiError::internal("ack link expiry before 1970"))?;
    let mut mac = mac(secret).ok_or_else(|| {
        ApiError::internal(format!(
            "the ack link secret must be at least {MIN_SECRET_BYTES} bytes"
        ))
    })?;
    let mut bytes = Vec::with_capacity(1 + 8 + 2 + incident_id.len() + member_id.len() + TAG_BYTES);
    bytes.push(VERSION);
    bytes.extend_from_slice(&expires_at.to_be_bytes());
    for id in [incident_id, member_id] {
        // An id is at most 64 bytes (checked above), so its length fits.
        bytes.push(id.len() as u8);
        bytes.extend_from_slice(id.as_bytes());
    }
    mac.update(&bytes);
    bytes.extend_from_slice(&mac.finalize().into_bytes());
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The claim of a token that is genuine and unexpired at `now`.
pub fn verify(secret: &[u8], token: &str, now: i64) -> Result<AckClaim, NotFound> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(NotFound);
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| NotFound)?;
    let body_len = bytes.len().checked_sub(TAG_BYTES).ok_or(NotFound)?;
    let (body, tag) = bytes.split_at(body_len);
    let mut mac = mac(secret).ok_or(NotFound)?;
    mac.update(body);
    // Checked before anything in the body is believed; constant time.
    mac.verify_slice(tag).map_err(|_| NotFound)?;
    let (&version, rest) = body.split_first().ok_or(NotFound)?;
    if version != VERSION || rest.len() < 8 {
        return Err(NotFound);
    }
    let (expiry, mut rest) = rest.split_at(8);
    let expires_at = i64::try_from(u64::from_be_bytes(expiry.try_into().map_err(|_| NotFound)?))
        .map_err(|_| NotFound)?;
    let mut ids = [String::new(), String::new()];
    for id in &mut ids {
        let (&len, tail) = rest.split_first().ok_or(NotFound)?;
        let (raw, tail) = tail.split_at_checked(usize::from(len)).ok_or(NotFound)?;
        *id = std::str::from_utf8(raw).map_err(|_| NotFound)?.to_string();
        if !is_valid_id(id) {
            return Err(NotFound);
        }
        rest = tail;
    }
    // Also refuse an expiry further off than this module would issue.
    if !rest.is_empty() || now >= expires_at || expires_at - now > MAX_LIFETIME_SECS {
        return Err(NotFound);
    }
    let [incident_id, member_id] = ids;
    Ok(AckClaim {
        incident_id,
        member_id,
        expires_at,
    })
}

/// How long a link sent now works: 7 days less a minute, so that a
/// verifier whose clock lags the issuer's by up to a minute does not take a
/// fresh link for one issued further ahead than [`verify`] allows.
pub const LINK_LIFETIME_SECS: i64 = MAX_LIFETIME_SECS - 60;

/// The path under the public base URL that serves the links (api/ack.rs).
pub const ACK_PATH_PREFIX: &str = "/ack/";

/// The link for `member_id` to acknowledge `incident_id`:
/// `{public_base_url}/ack/{token}`, working for [`LINK_LIFETIME_SECS`] from
/// `now_ms` (unix ms) or until the incident closes (checked at use).
/// `secret` is [`crate::store::Store::ack_link_secret`].
pub fn ack_url(
    public_base_url: &str,
    secret: &[u8],
    incident_id: &str,
    member_id: &str,
    now_ms: i64,
) -> ApiResult<String> {
    let token = issue(
        secret,
        incident_id,
        member_id,
        now_ms.div_euclid(1000),
        LINK_LIFETIME_SECS,
    )?;
    Ok(format!(
        "{}{ACK_PATH_PREFIX}{token}",
        public_base_url.trim_end_matches('/')
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_764_835_200;

    fn token() -> String {
        issue(SECRET, "inc0123456789abc", "mem0123456789abc", NOW, 3600).unwrap()
    }

    #[test]
    fn a_token_names_its_incident_and_member_until_it_expires() {
        let t = token();
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let claim = verify(SECRET, &t, NOW).unwrap();
        assert_eq!(
            claim,
            AckClaim {
                incident_id: "inc0123456789abc".into(),
                member_id: "mem0123456789abc".into(),
                expires_at: NOW + 3600,
            }
        );
        assert!(verify(SECRET, &t, NOW + 3599).is_ok());
        assert_eq!(verify(SECRET, &t, NOW + 3600), Err(NotFound));
    }

    #[test]
    fn any_tampered_byte_is_not_found() {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token())
            .unwrap();
        for i in 0..bytes.len() {
            let mut forged = bytes.clone();
            forged[i] ^= 0x01;
            let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged);
            assert_eq!(verify(SECRET, &forged, NOW), Err(NotFound), "byte {i}");
        }
        // Truncated, extended, another secret, garbage, too long, empty.
        let t = token();
        for bad in [
            t[..t.len() - 1].to_string(),
            format!("{t}AA"),
            "not a token!".to_string(),
            "A".repeat(10_000),
            String::new(),
        ] {
            assert_eq!(verify(SECRET, &bad, NOW), Err(NotFound));
        }
        assert_eq!(
            verify(b"another secret, also 32 bytes ok", &t, NOW),
            Err(NotFound)
        );
    }

    #[test]
    fn lifetimes_and_secrets_are_bounded() {
        assert!(issue(SECRET, "i", "m", NOW, MAX_LIFETIME_SECS).is_ok());
        assert!(issue(SECRET, "i", "m", NOW, MAX_LIFETIME_SECS + 1).is_err());
        assert!(issue(SECRET, "i", "m", NOW, 0).is_err());
        assert!(issue(b"short", "i", "m", NOW, 60).is_err());
        assert!(issue(SECRET, "i/../x", "m", NOW, 60).is_err());
        // An expiry more than 7 days after the verifier's clock cannot have
        // come from `issue` on a clock in step with it.
        let week = issue(SECRET, "i", "m", NOW, MAX_LIFETIME_SECS).unwrap();
        assert!(verify(SECRET, &week, NOW).is_ok());
        assert_eq!(verify(SECRET, &week, NOW - 1), Err(NotFound));
    }

    #[test]
    fn an_ack_url_carries_a_token_for_its_incident_and_member() {
        let now_ms = NOW * 1000 + 999;
        let url = ack_url("https://x.example/", SECRET, "inc1", "mem1", now_ms).unwrap();
        let token = url.strip_prefix("https://x.example/ack/").unwrap();
        let claim = verify(SECRET, token, NOW).unwrap();
        assert_eq!(
            (claim.incident_id.as_str(), claim.member_id.as_str()),
            ("inc1", "mem1")
        );
        assert_eq!(claim.expires_at, NOW + LINK_LIFETIME_SECS);
        // Accepted by a verifier a minute behind, refused once expired.
        assert!(verify(SECRET, token, NOW - 60).is_ok());
        assert_eq!(
            verify(SECRET, token, NOW + LINK_LIFETIME_SECS),
            Err(NotFound)
        );
        assert!(ack_url("https://x.example", b"short", "inc1", "mem1", now_ms).is_err());
    }

    #[test]
    fn not_found_says_nothing() {
        let err: ApiError = NotFound.into();
        assert_eq!(err.status(), 404);
        assert_eq!(err.message(), "not found");
    }
}
