//! The key that signs acknowledgement links (SPEC 14; outbound/ack_link.rs):
//! 32 random bytes in one item of the table, made by whichever instance
//! first needs it.
//!
//! Why the table: it needs no deploy-time configuration (no parameter, no
//! secret store, nothing for `make run` to set up), and whoever can read the
//! table can already acknowledge any incident by writing it, so keeping the
//! key beside the incidents gives nobody a power they did not have.
//! Rotating it is deleting the item: the next request makes a new one (each
//! instance reads it once per cold start, so an instance still running keeps
//! the old key until it is recycled), and every link already sent stops
//! working.
//!
//! Requests: one strongly consistent GetItem per cold start; the first
//! instance ever also makes one conditional PutItem (and the loser of a race
//! one more GetItem).

use crate::error::{ApiError, ApiResult};
use crate::hashing::random_hex;
use crate::store::items::{get_opt_s, key, s};
use crate::store::Store;

const CONFIG_PK: &str = "CONFIG";
const ACK_LINK_SECRET_SK: &str = "ACK_LINK_SECRET";
/// 256 bits.
const SECRET_BYTES: usize = 32;

/// The secret as stored (hex), back to bytes; `None` for anything else.
fn decode_secret(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != SECRET_BYTES * 2 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Store {
    /// The key that signs acknowledgement links: read once per process (per
    /// `Store` and its clones), made on first use. Two instances racing to
    /// make it agree: the conditional put lets one win, and the other reads
    /// the winner's. Never log it.
    pub async fn ack_link_secret(&self) -> ApiResult<Vec<u8>> {
        self.ack_secret
            .get_or_try_init(|| self.load_or_make_ack_link_secret())
            .await
            .cloned()
    }

    async fn load_or_make_ack_link_secret(&self) -> ApiResult<Vec<u8>> {
        if let Some(secret) = self.read_ack_link_secret().await? {
            return Ok(secret);
        }
        let hex = random_hex(SECRET_BYTES)?;
        let mut item = key(CONFIG_PK, ACK_LINK_SECRET_SK);
        item.insert("secret".to_string(), s(&hex));
        if self.put_new(item).await? {
            return decode_secret(&hex).ok_or_else(|| ApiError::internal("ack link secret"));
        }
        // Another instance made it first: use theirs.
        self.read_ack_link_secret().await?.ok_or_else(|| {
            ApiError::internal("the ack link secret vanished while it was being made; retry")
        })
    }

    async fn read_ack_link_secret(&self) -> ApiResult<Option<Vec<u8>>> {
        let Some(item) = self.get(CONFIG_PK.to_string(), ACK_LINK_SECRET_SK).await? else {
            return Ok(None);
        };
        get_opt_s(&item, "secret")
            .as_deref()
            .and_then(decode_secret)
            .map(Some)
            .ok_or_else(|| {
                ApiError::internal(
                    "the stored ack link secret is malformed; delete the CONFIG / ACK_LINK_SECRET item to make a new one",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_stored_secret_of_the_right_length_decodes() {
        let hex = "00ff".repeat(16);
        assert_eq!(decode_secret(&hex).unwrap(), [0x00, 0xff].repeat(16));
        assert_eq!(decode_secret("00ff"), None);
        assert_eq!(decode_secret(&"zz".repeat(32)), None);
        assert_eq!(decode_secret(&"é".repeat(32)), None);
    }
}
