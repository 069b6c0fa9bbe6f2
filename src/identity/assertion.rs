//! Client assertions (certificate credentials): a JWT the application signs with the private key
//! of a certificate registered on it, checked against that certificate with webpki.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde_json::{Map, Value};

/// Why an assertion is refused; the token endpoint turns each into its AADSTS error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssertionError {
    /// Not a JWT, or its claims are not what an assertion holds.
    Malformed(String),
    /// `aud` is not this tenant's token endpoint.
    Audience(String),
    /// `iss` or `sub` is not the client id.
    Subject(String),
    /// Outside `nbf`..`exp`.
    TimeRange,
    /// No certificate of the application verifies the signature (or it has none).
    Signature,
}

/// A certificate registered on an application: PEM (`-----BEGIN CERTIFICATE-----`) or base64 DER,
/// as Graph's `keyCredentials.key` holds it. `None` when it is neither.
pub fn certificate_der(raw: &str) -> Option<CertificateDer<'static>> {
    let raw = raw.trim();
    if raw.starts_with("-----BEGIN") {
        return CertificateDer::from_pem_slice(raw.as_bytes()).ok();
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(raw.split_whitespace().collect::<String>())
        .ok()?;
    let der = CertificateDer::from(der);
    webpki::EndEntityCert::try_from(&der).ok()?;
    Some(der)
}

/// Checks the assertion `token` of application `client_id` for the tenant `tenant`, whose
/// token endpoint path ends in `/{tenant}/oauth2/v2.0/token`, against its `certificates`.
pub fn verify(
    token: &str,
    client_id: &str,
    tenant: &str,
    certificates: &[String],
    now: DateTime<Utc>,
) -> Result<(), AssertionError> {
    let malformed = |what: &str| AssertionError::Malformed(what.to_string());
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(
            "The client assertion is not a JWT (three dot-separated parts).",
        ));
    };
    let decode_json = |part: &str| -> Option<Map<String, Value>> {
        let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
        match serde_json::from_slice(&bytes).ok()? {
            Value::Object(map) => Some(map),
            _ => None,
        }
    };
    let header_claims = decode_json(header)
        .ok_or_else(|| malformed("The client assertion's header is not JSON."))?;
    let claims = decode_json(payload)
        .ok_or_else(|| malformed("The client assertion's claims are not JSON."))?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature.trim_end_matches('='))
        .map_err(|_| malformed("The client assertion's signature is not base64url."))?;
    let algorithm: &dyn rustls_pki_types::SignatureVerificationAlgorithm =
        match header_claims.get("alg").and_then(Value::as_str) {
            Some("RS256") => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
            Some("PS256") => webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            Some("ES256") => webpki::ring::ECDSA_P256_SHA256,
            other => {
                return Err(AssertionError::Malformed(format!(
                "The client assertion's algorithm {} is not supported; use RS256, PS256 or ES256.",
                other.unwrap_or("(none)")
            )))
            }
        };
    let text = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or_default();
    let audience = text("aud");
    let audience_path = audience
        .split_once("://")
        .map(|(_, rest)| rest.split_once('/').map_or("", |(_, path)| path))
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_ascii_lowercase();
    let tenant = tenant.to_ascii_lowercase();
    if ![
        format!("{tenant}/oauth2/v2.0/token"),
        format!("{tenant}/oauth2/token"),
        format!("{tenant}/v2.0"),
    ]
    .contains(&audience_path)
    {
        return Err(AssertionError::Audience(audience.to_string()));
    }
    for name in ["iss", "sub"] {
        if !text(name).eq_ignore_ascii_case(client_id) {
            return Err(AssertionError::Subject(format!(
                "The client assertion's '{name}' claim is '{}', not the client id '{client_id}'.",
                text(name)
            )));
        }
    }
    let now = now.timestamp();
    let expires = claims.get("exp").and_then(Value::as_i64);
    let not_before = claims.get("nbf").and_then(Value::as_i64);
    if expires.is_none_or(|exp| now >= exp) || not_before.is_some_and(|nbf| now < nbf) {
        return Err(AssertionError::TimeRange);
    }
    let message = format!("{header}.{payload}");
    // JWS carries ECDSA signatures as r || s; X.509 verification expects them DER-encoded.
    let signature = if header_claims.get("alg").and_then(Value::as_str) == Some("ES256") {
        fixed_to_der(&signature).ok_or(AssertionError::Signature)?
    } else {
        signature
    };
    let verified = certificates
        .iter()
        .filter_map(|raw| certificate_der(raw))
        .any(|der| {
            webpki::EndEntityCert::try_from(&der).is_ok_and(|cert| {
                cert.verify_signature(algorithm, message.as_bytes(), &signature)
                    .is_ok()
            })
        });
    if verified {
        Ok(())
    } else {
        Err(AssertionError::Signature)
    }
}

/// `r || s` (32 bytes each) as the DER `SEQUENCE { INTEGER r, INTEGER s }`.
fn fixed_to_der(signature: &[u8]) -> Option<Vec<u8>> {
    if signature.len() != 64 {
        return None;
    }
    let integer = |bytes: &[u8]| {
        let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
        let mut value = if trimmed.first().is_some_and(|&b| b >= 0x80) || trimmed.is_empty() {
            vec![0]
        } else {
            Vec::new()
        };
        value.extend(trimmed);
        let mut encoded = vec![0x02, value.len() as u8];
        encoded.extend(value);
        encoded
    };
    let mut body = integer(&signature[..32]);
    body.extend(integer(&signature[32..]));
    let mut der = vec![0x30, body.len() as u8];
    der.extend(body);
    Some(der)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A certificate and a JWT signed with its key (ECDSA P-256: rcgen generates those).
    fn signed_assertion(claims: Value) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["connector".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let message = format!("{header}.{payload}");
        let pkcs8 = key.serialize_der();
        let rng = ring::rand::SystemRandom::new();
        let signer = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &pkcs8,
            &rng,
        )
        .unwrap();
        let signature = signer.sign(&rng, message.as_bytes()).unwrap();
        (
            format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref())),
            cert.pem(),
        )
    }

    /// RS256 and PS256, as MSAL's certificate credentials sign, with an RSA certificate.
    #[test]
    fn rsa_certificates_verify_rs256_and_ps256_assertions() {
        use rsa::pkcs8::EncodePrivateKey;
        let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
        let pem = private.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        let key = rcgen::KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["connector".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let now = Utc::now();
        let client = "11111111-2222-3333-4444-555555555555";
        let claims = json!({"aud": "https://login.microsoftonline.com/contoso/oauth2/v2.0/token",
            "iss": client, "sub": client, "exp": now.timestamp() + 600, "nbf": now.timestamp()});
        let signing = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        for algorithm in [
            jsonwebtoken::Algorithm::RS256,
            jsonwebtoken::Algorithm::PS256,
        ] {
            let token =
                jsonwebtoken::encode(&jsonwebtoken::Header::new(algorithm), &claims, &signing)
                    .unwrap();
            assert_eq!(
                verify(
                    &token,
                    client,
                    "contoso",
                    std::slice::from_ref(&cert.pem()),
                    now
                ),
                Ok(()),
                "{algorithm:?}"
            );
        }
        // Base64 DER, as Graph's keyCredentials.key holds a certificate, works too.
        let der = base64::engine::general_purpose::STANDARD.encode(cert.der());
        assert!(certificate_der(&der).is_some());
    }

    #[test]
    fn an_assertion_signed_by_a_registered_certificate_passes_and_others_fail() {
        let now = Utc::now();
        let client = "11111111-2222-3333-4444-555555555555";
        let claims = json!({
            "aud": "https://127.0.0.1:5443/contoso/oauth2/v2.0/token",
            "iss": client, "sub": client, "jti": "1",
            "nbf": now.timestamp() - 10, "exp": now.timestamp() + 600,
        });
        let (token, cert) = signed_assertion(claims.clone());
        assert_eq!(
            verify(&token, client, "contoso", std::slice::from_ref(&cert), now),
            Ok(())
        );
        let (_, other_cert) = signed_assertion(claims.clone());
        assert_eq!(
            verify(&token, client, "contoso", &[other_cert], now),
            Err(AssertionError::Signature)
        );
        assert!(matches!(
            verify(&token, client, "fabrikam", std::slice::from_ref(&cert), now),
            Err(AssertionError::Audience(_))
        ));
        assert!(matches!(
            verify(
                &token,
                "99999999-2222-3333-4444-555555555555",
                "contoso",
                std::slice::from_ref(&cert),
                now
            ),
            Err(AssertionError::Subject(_))
        ));
        assert_eq!(
            verify(
                &token,
                client,
                "contoso",
                &[cert],
                now + chrono::Duration::seconds(601)
            ),
            Err(AssertionError::TimeRange)
        );
        assert!(matches!(
            verify("a.b", client, "contoso", &[], now),
            Err(AssertionError::Malformed(_))
        ));
    }
}
