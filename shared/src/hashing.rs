//! Stable, collision-resistant digests used for generated alert keys, content
//! fingerprints and stored secrets.

use sha2::Digest;
pub use sha2::Sha256;

/// Hex SHA-256 over the parts, each length-prefixed so that `["ab", "c"]` and
/// `["a", "bc"]` never collide.
pub fn digest_parts<S: AsRef<str>>(parts: &[S]) -> String {
    let mut hasher = Sha256::new();
    absorb(&mut hasher, parts);
    hex(&hasher.finalize())
}

/// Feed length-prefixed parts into a running digest (see [`digest_parts`]).
pub fn absorb<S: AsRef<str>>(hasher: &mut Sha256, parts: &[S]) {
    for part in parts {
        let bytes = part.as_ref().as_bytes();
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    }
}

/// The first 32 hex characters (128 bits) of a digest.
pub fn short_hex(hasher: Sha256) -> String {
    hex(&hasher.finalize()[..16])
}

/// A 32-hex-character (128-bit) stable key derived from the parts.
pub fn stable_key<S: AsRef<str>>(parts: &[S]) -> String {
    let mut full = digest_parts(parts);
    full.truncate(32);
    full
}

pub fn sha256_hex(input: &str) -> String {
    hex(&Sha256::digest(input.as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

/// Equality whose time depends only on the lengths (secrets and their hashes).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `n` bytes from the OS CSPRNG, hex-encoded. Used for ids and secrets.
pub fn random_hex(n: usize) -> Result<String, crate::error::ApiError> {
    let mut buf = vec![0u8; n];
    getrandom::getrandom(&mut buf)
        .map_err(|e| crate::error::ApiError::internal(format!("no randomness available: {e}")))?;
    Ok(hex(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_delimited() {
        assert_ne!(digest_parts(&["ab", "c"]), digest_parts(&["a", "bc"]));
        assert_eq!(stable_key(&["a", "b"]), stable_key(&["a", "b"]));
        assert_eq!(stable_key(&["a"]).len(), 32);
    }

    #[test]
    fn random_hex_has_requested_entropy() {
        let a = random_hex(16).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, random_hex(16).unwrap());
    }
}
