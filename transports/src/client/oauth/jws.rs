//! ES256 signatures in JWS compact form: DPoP proofs (RFC 9449) and
//! `private_key_jwt` client assertions (RFC 7523). The signing is p256's;
//! this is only the encoding around it.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey as _;
use rand::RngCore as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// A P-256 signing key.
pub(crate) struct Key(SigningKey);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(P-256)")
    }
}

/// Seconds since the epoch.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A random `jti`.
fn jti() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Key {
    /// A fresh key.
    pub(crate) fn generate() -> Key {
        loop {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            // All but a 2^-128 sliver of 32-byte strings are valid scalars.
            if let Ok(key) = SigningKey::from_bytes(&bytes.into()) {
                return Key(key);
            }
        }
    }

    /// A key from a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub(crate) fn from_pem(pem: &str) -> Result<Key, String> {
        SigningKey::from_pkcs8_pem(pem)
            .map(Key)
            .map_err(|e| format!("not a P-256 PKCS#8 key: {e}"))
    }

    /// The public half as a JWK.
    fn public_jwk(&self) -> Value {
        let public = p256::PublicKey::from(self.0.verifying_key());
        serde_json::to_value(public.to_jwk()).unwrap_or(Value::Null)
    }

    /// `header.claims.signature`, ES256.
    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature: Signature = self.0.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    /// A DPoP proof for `method` at `url` (query and fragment dropped),
    /// bound to `token` when one is presented, with the server's `nonce`.
    pub(crate) fn dpop_proof(
        &self,
        method: &str,
        url: &reqwest::Url,
        token: Option<&str>,
        nonce: Option<&str>,
    ) -> String {
        let mut htu = url.clone();
        htu.set_query(None);
        htu.set_fragment(None);
        let mut claims = json!({ "jti": jti(), "htm": method, "htu": htu.as_str(), "iat": now() });
        if let Some(token) = token {
            claims["ath"] = URL_SAFE_NO_PAD
                .encode(Sha256::digest(token.as_bytes()))
                .into();
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = nonce.into();
        }
        let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.public_jwk() });
        self.sign(&header, &claims)
    }

    /// A client assertion: `client_id` vouching for itself to `audience`.
    pub(crate) fn client_assertion(&self, client_id: &str, audience: &str) -> String {
        let iat = now();
        let claims = json!({
            "iss": client_id, "sub": client_id, "aud": audience,
            "iat": iat, "exp": iat + 300, "jti": jti(),
        });
        self.sign(&json!({ "typ": "JWT", "alg": "ES256" }), &claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier as _;

    #[test]
    fn a_proof_verifies_with_the_key_it_carries() {
        let key = Key::generate();
        let url = reqwest::Url::parse("http://h:1/mcp?x=1#f").unwrap_or_else(|_| unreachable!());
        let proof = key.dpop_proof("POST", &url, Some("tok"), Some("n1"));
        let parts: Vec<&str> = proof.split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |p: &str| -> Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap_or_default())
                .unwrap_or_default()
        };
        let (header, claims) = (decode(parts[0]), decode(parts[1]));
        assert_eq!(header["typ"], "dpop+jwt");
        assert!(
            header["jwk"].get("d").is_none(),
            "the private key stays private"
        );
        assert_eq!(claims["htu"], "http://h:1/mcp");
        assert_eq!(claims["nonce"], "n1");
        let expected_ath = URL_SAFE_NO_PAD.encode(Sha256::digest(b"tok"));
        assert_eq!(claims["ath"], Value::from(expected_ath));
        let jwk: p256::elliptic_curve::JwkEcKey =
            serde_json::from_value(header["jwk"].clone()).unwrap_or_else(|_| unreachable!());
        let public = p256::PublicKey::from_jwk(&jwk).unwrap_or_else(|_| unreachable!());
        let verifying = p256::ecdsa::VerifyingKey::from(public);
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap_or_default();
        let signature = Signature::from_slice(&signature).unwrap_or_else(|_| unreachable!());
        let input = format!("{}.{}", parts[0], parts[1]);
        assert!(verifying.verify(input.as_bytes(), &signature).is_ok());
        // Two proofs never share a jti.
        let again = key.dpop_proof("POST", &url, Some("tok"), None);
        assert_ne!(decode(again.split('.').nth(1).unwrap_or("")), claims);
    }
}
