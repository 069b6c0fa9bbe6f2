//! The key gcemu signs its access tokens with: an RSA key generated once and kept in the data
//! dir (`identity/token-signing-key.pem`), or once per process with `--in-memory`.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};

/// Bits of the signing key, as Entra's keys have.
const KEY_BITS: usize = 2048;
/// Where the key lives under the data dir.
pub const KEY_FILE: &str = "identity/token-signing-key.pem";

pub struct SigningKey {
    /// The `kid` in each token's header and in the key set.
    pub kid: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// Modulus and exponent, base64url, for the key set.
    modulus: String,
    exponent: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish()
    }
}

impl SigningKey {
    /// The key kept in `data_dir`, created there on first use; with no data dir, one key per
    /// process (generated on first use, shared by every emulator the process runs).
    pub fn load_or_create(data_dir: Option<&Path>) -> anyhow::Result<Arc<SigningKey>> {
        match data_dir {
            Some(dir) => Ok(Arc::new(load_or_create_in(dir)?)),
            None => {
                static PROCESS_KEY: OnceLock<Arc<SigningKey>> = OnceLock::new();
                if let Some(key) = PROCESS_KEY.get() {
                    return Ok(key.clone());
                }
                let key = Arc::new(SigningKey::from_private(&generate()?)?);
                Ok(PROCESS_KEY.get_or_init(|| key).clone())
            }
        }
    }

    fn from_private(private: &RsaPrivateKey) -> anyhow::Result<SigningKey> {
        let pem = private
            .to_pkcs8_pem(LineEnding::LF)
            .context("encoding the signing key")?;
        let encoding =
            EncodingKey::from_rsa_pem(pem.as_bytes()).context("reading the signing key")?;
        let modulus = URL_SAFE_NO_PAD.encode(private.n().to_bytes_be());
        let exponent = URL_SAFE_NO_PAD.encode(private.e().to_bytes_be());
        let decoding = DecodingKey::from_rsa_components(&modulus, &exponent)
            .context("reading the signing key's public half")?;
        // A stable id for the key: the start of the SHA-256 of its public numbers, as 27
        // base64url characters like Entra's key ids.
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            format!("{modulus}.{exponent}").as_bytes(),
        );
        let kid = URL_SAFE_NO_PAD.encode(&digest.as_ref()[..20]);
        Ok(SigningKey {
            kid,
            encoding,
            decoding,
            modulus,
            exponent,
        })
    }

    /// The key set (`GET /{tenant}/discovery/v2.0/keys`), in Entra's shape.
    pub fn jwks(&self, issuer: &str) -> Value {
        json!({
            "keys": [{
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": self.kid,
                "n": self.modulus,
                "e": self.exponent,
                "issuer": issuer,
            }]
        })
    }
}

fn generate() -> anyhow::Result<RsaPrivateKey> {
    RsaPrivateKey::new(&mut rand::rngs::OsRng, KEY_BITS).context("generating the signing key")
}

fn load_or_create_in(data_dir: &Path) -> anyhow::Result<SigningKey> {
    let path = data_dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(pem) => {
            let private = RsaPrivateKey::from_pkcs8_pem(&pem)
                .with_context(|| format!("reading the token signing key {}", path.display()))?;
            SigningKey::from_private(&private)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let private = generate()?;
            let pem = private
                .to_pkcs8_pem(LineEnding::LF)
                .context("encoding the signing key")?;
            if super::create_private_file(&path, pem.as_bytes())? {
                SigningKey::from_private(&private)
            } else {
                // Another process (`gcemu token`, a second server) created it meanwhile: use theirs.
                load_or_create_in(data_dir)
            }
        }
        Err(error) => {
            Err(error).with_context(|| format!("reading the token signing key {}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_written_to_the_data_dir_is_the_key_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = SigningKey::load_or_create(Some(dir.path())).unwrap();
        let second = SigningKey::load_or_create(Some(dir.path())).unwrap();
        assert_eq!(first.kid, second.kid);
        assert_eq!(first.kid.len(), 27);
        let in_memory = SigningKey::load_or_create(None).unwrap();
        assert_ne!(in_memory.kid, first.kid);
        assert_eq!(SigningKey::load_or_create(None).unwrap().kid, in_memory.kid);
    }
}
