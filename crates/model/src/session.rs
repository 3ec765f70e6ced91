//! Signed session tokens: any app server verifies one with the shared key, without a lookup.
//!
//! Wire form: `base64url(session id: 16 bytes ‖ issued at: 8 bytes BE) "." base64url(HMAC-SHA256)`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// An anonymous commenter's identity, as carried by a signed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionId(pub u128);

impl SessionId {
    pub fn to_hex(self) -> String {
        format!("{:032x}", self.0)
    }

    pub fn from_hex(text: &str) -> Option<SessionId> {
        if text.len() != 32 {
            return None;
        }
        u128::from_str_radix(text, 16).ok().map(SessionId)
    }
}

/// Signs and verifies session tokens with one secret shared by all app servers.
#[derive(Clone)]
pub struct SessionSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for SessionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSigner(..)")
    }
}

const PAYLOAD_BYTES: usize = 24;

impl SessionSigner {
    /// `key` should be at least 32 random bytes.
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(payload);
        mac
    }

    pub fn sign(&self, session: SessionId, issued_at_unix_s: i64) -> String {
        let mut payload = [0u8; PAYLOAD_BYTES];
        payload[..16].copy_from_slice(&session.0.to_be_bytes());
        payload[16..].copy_from_slice(&issued_at_unix_s.to_be_bytes());
        let tag = self.mac(&payload).finalize().into_bytes();
        format!("{}.{}", URL_SAFE_NO_PAD.encode(payload), URL_SAFE_NO_PAD.encode(tag))
    }

    /// The session a token names, if its signature is valid. Anything else is `None`.
    pub fn verify(&self, token: &str) -> Option<SessionId> {
        let (payload_b64, tag_b64) = token.trim().split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload_b64).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag_b64).ok()?;
        if payload.len() != PAYLOAD_BYTES {
            return None;
        }
        self.mac(&payload).verify_slice(&tag).ok()?;
        let id_bytes: [u8; 16] = payload[..16].try_into().ok()?;
        Some(SessionId(u128::from_be_bytes(id_bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_tokens_verify_and_tampering_fails() {
        let signer = SessionSigner::new(b"0123456789abcdef0123456789abcdef");
        let token = signer.sign(SessionId(77), 1_800_000_000);
        assert_eq!(signer.verify(&token), Some(SessionId(77)));
        let other = SessionSigner::new(b"another key, same length.........");
        assert_eq!(other.verify(&token), None);
        let mut tampered = token.clone().into_bytes();
        tampered[3] ^= 1;
        assert_eq!(signer.verify(&String::from_utf8_lossy(&tampered)), None);
        for junk in ["", ".", "abc", "a.b", "💥.💥"] {
            assert_eq!(signer.verify(junk), None);
        }
    }

    #[test]
    fn hex_round_trip() {
        let id = SessionId(0xdead_beef);
        assert_eq!(SessionId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(SessionId::from_hex("zz"), None);
    }
}
