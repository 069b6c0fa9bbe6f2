//! Access tokens as Entra issues them for Microsoft Graph: RS256 JWTs with Entra's claim names
//! (v1.0 access tokens, which is what Graph receives), signed with gcemu's key; and their check
//! in strict mode, on the emulator's clock.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header, Validation};
use serde_json::{json, Map, Value};

use super::keys::SigningKey;
use crate::domain::ids::DEFAULT_TENANT_ID;
use crate::domain::principal::DEFAULT_APP_ID;

/// The audience of Graph tokens, and Graph's own application id (the other form `aud` takes).
pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// Lifetime of tokens the token endpoint issues, in seconds (Entra: 60 to 90 minutes).
pub const TOKEN_LIFETIME_SECONDS: i64 = 3599;

/// What a token says about its caller.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub tenant: Option<String>,
    /// For delegated tokens: the user's object id and UPN (either may be absent).
    pub user_id: Option<String>,
    pub user_principal_name: Option<String>,
    pub user_display_name: Option<String>,
    pub app_id: Option<String>,
    pub app_display_name: Option<String>,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    /// `aud`; Graph's when absent.
    pub audience: Option<String>,
    /// Seconds until `exp` (may be negative, for an expired token); TOKEN_LIFETIME_SECONDS when absent.
    pub lifetime_seconds: Option<i64>,
    /// How the application proved itself: `1` a secret, `2` a certificate (`appidacr`/`azpacr`).
    pub client_auth_method: Option<&'static str>,
}

impl TokenRequest {
    pub fn is_delegated(&self) -> bool {
        self.user_id.is_some() || self.user_principal_name.is_some()
    }
}

/// `https://sts.windows.net/{tenant}/`: the issuer of v1.0 access tokens.
pub fn issuer(tenant: &str) -> String {
    format!("https://sts.windows.net/{tenant}/")
}

/// A stable GUID-shaped id derived from `parts` (service principal object ids, pairwise `sub`).
fn derived_id(parts: &[&str]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, parts.join("\u{1f}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The claims of a token for `request`, issued at `now`.
pub fn claims(request: &TokenRequest, now: DateTime<Utc>) -> Map<String, Value> {
    let tenant = request
        .tenant
        .clone()
        .unwrap_or_else(|| DEFAULT_TENANT_ID.to_string());
    let app_id = request
        .app_id
        .clone()
        .unwrap_or_else(|| DEFAULT_APP_ID.to_string());
    let issued = now.timestamp();
    let lifetime = request.lifetime_seconds.unwrap_or(TOKEN_LIFETIME_SECONDS);
    let auth_method = request.client_auth_method.unwrap_or("1");
    let mut claims = Map::new();
    let mut put = |name: &str, value: Value| {
        claims.insert(name.to_string(), value);
    };
    put(
        "aud",
        json!(request.audience.as_deref().unwrap_or(GRAPH_AUDIENCE)),
    );
    put("iss", json!(issuer(&tenant)));
    put("iat", json!(issued));
    put("nbf", json!(issued));
    put("exp", json!(issued.saturating_add(lifetime)));
    put(
        "app_displayname",
        json!(request
            .app_display_name
            .as_deref()
            .unwrap_or("gcemu application")),
    );
    put("appid", json!(app_id));
    put("appidacr", json!(auth_method));
    put("idp", json!(issuer(&tenant)));
    put("tid", json!(tenant));
    put(
        "uti",
        json!(URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())),
    );
    put("ver", json!("1.0"));
    if request.is_delegated() {
        let user_key = request
            .user_id
            .as_deref()
            .or(request.user_principal_name.as_deref())
            .unwrap_or_default();
        put("idtyp", json!("user"));
        put("acr", json!("1"));
        put("amr", json!(["pwd"]));
        if let Some(user_id) = &request.user_id {
            put("oid", json!(user_id));
        }
        if let Some(upn) = &request.user_principal_name {
            put("upn", json!(upn));
            put("unique_name", json!(upn));
        }
        if let Some(name) = &request.user_display_name {
            put("name", json!(name));
        }
        put("sub", json!(derived_id(&[&tenant, &app_id, user_key])));
        put("scp", json!(request.scopes.join(" ")));
        if !request.roles.is_empty() {
            put("roles", json!(request.roles));
        }
    } else {
        let service_principal = derived_id(&[&tenant, &app_id]);
        put("idtyp", json!("app"));
        put("oid", json!(service_principal));
        put("sub", json!(service_principal));
        put("roles", json!(request.roles));
    }
    claims
}

/// The claims of a v2.0 ID token for the user of `request`, for application `client_id`, issued
/// by `{origin}/{tenant}/v2.0` (the authority the client signed in at).
pub fn id_token_claims(
    request: &TokenRequest,
    client_id: &str,
    origin: &str,
    now: DateTime<Utc>,
) -> Map<String, Value> {
    let tenant = request
        .tenant
        .clone()
        .unwrap_or_else(|| DEFAULT_TENANT_ID.to_string());
    let user_id = request.user_id.clone().unwrap_or_default();
    let issued = now.timestamp();
    let mut claims = Map::new();
    claims.insert("aud".into(), json!(client_id));
    claims.insert("iss".into(), json!(format!("{origin}/{tenant}/v2.0")));
    claims.insert("iat".into(), json!(issued));
    claims.insert("nbf".into(), json!(issued));
    claims.insert(
        "exp".into(),
        json!(issued.saturating_add(TOKEN_LIFETIME_SECONDS)),
    );
    claims.insert(
        "sub".into(),
        json!(derived_id(&[&tenant, client_id, &user_id])),
    );
    claims.insert("oid".into(), json!(user_id));
    claims.insert("tid".into(), json!(tenant));
    if let Some(upn) = &request.user_principal_name {
        claims.insert("preferred_username".into(), json!(upn));
    }
    if let Some(name) = &request.user_display_name {
        claims.insert("name".into(), json!(name));
    }
    claims.insert("ver".into(), json!("2.0"));
    claims
}

/// Mints a signed token for `request` at `now`.
pub fn mint(key: &SigningKey, request: &TokenRequest, now: DateTime<Utc>) -> String {
    sign(key, &claims(request, now))
}

/// Signs `claims` with gcemu's key (RS256, with `kid`).
pub fn sign(key: &SigningKey, claims: &Map<String, Value>) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("an RSA key signs any JSON object")
}

/// Why strict mode refuses a token, each with the message Graph gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Not three base64url parts of JSON.
    Malformed,
    /// Not signed by gcemu's key, or not RS256.
    Signature,
    /// `aud` is not Graph.
    Audience(String),
    Expired,
    NotYetValid,
    /// A claim gcemu needs is missing or of the wrong kind.
    Claims(&'static str),
}

impl Rejection {
    pub fn message(&self) -> String {
        match self {
            Rejection::Malformed => {
                "CompactToken parsing failed with error code: 80049217".to_string()
            }
            Rejection::Signature => {
                "Access token validation failure. The token's signature does not match a key of this emulator (ask its token endpoint for tokens).".to_string()
            }
            Rejection::Audience(audience) => format!(
                "Access token validation failure. Invalid audience '{audience}'; Microsoft Graph accepts {GRAPH_AUDIENCE} or {GRAPH_APP_ID}."
            ),
            Rejection::Expired => "Lifetime validation failed, the token is expired.".to_string(),
            Rejection::NotYetValid => {
                "Lifetime validation failed, the token is not yet valid.".to_string()
            }
            Rejection::Claims(what) => format!("Access token validation failure. {what}"),
        }
    }
}

/// Checks `token` as strict mode does: signed by `key` with RS256, Graph's audience, and valid
/// at `now` on the emulator's clock (no leeway). Returns its claims.
pub fn verify(
    key: &SigningKey,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Map<String, Value>, Rejection> {
    let looks_like_a_jwt = crate::auth::jwt_claims(token).is_some();
    let header = jsonwebtoken::decode_header(token).map_err(|_| {
        // `alg: none` and other algorithms gcemu never signs with still are tokens, unsigned by it.
        if looks_like_a_jwt {
            Rejection::Signature
        } else {
            Rejection::Malformed
        }
    })?;
    if header.alg != Algorithm::RS256 || header.kid.as_deref() != Some(key.kid.as_str()) {
        // Another key (or none) signed it: the signature check below would fail too.
        return Err(if looks_like_a_jwt {
            Rejection::Signature
        } else {
            Rejection::Malformed
        });
    }
    let mut validation = Validation::new(Algorithm::RS256);
    // Time and audience are checked below: time on the emulator's clock, audience with its message.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &validation)
        .map_err(|error| match error.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => Rejection::Signature,
            _ => Rejection::Malformed,
        })?;
    let claims = data.claims;
    let audience = claims
        .get("aud")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if audience != GRAPH_AUDIENCE
        && audience != format!("{GRAPH_AUDIENCE}/")
        && !audience.eq_ignore_ascii_case(GRAPH_APP_ID)
    {
        return Err(Rejection::Audience(audience.to_string()));
    }
    let Some(expires) = claims.get("exp").and_then(Value::as_i64) else {
        return Err(Rejection::Claims("The token has no 'exp' claim."));
    };
    let now = now.timestamp();
    if now >= expires {
        return Err(Rejection::Expired);
    }
    if claims
        .get("nbf")
        .and_then(Value::as_i64)
        .is_some_and(|not_before| now < not_before)
    {
        return Err(Rejection::NotYetValid);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> std::sync::Arc<SigningKey> {
        SigningKey::load_or_create(None).unwrap()
    }

    #[test]
    fn a_minted_token_verifies_with_entra_claims() {
        let now = Utc::now();
        let token = mint(
            &key(),
            &TokenRequest {
                tenant: Some("contoso".into()),
                roles: vec!["ExternalItem.ReadWrite.All".into()],
                ..TokenRequest::default()
            },
            now,
        );
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some(key().kid.as_str()));
        let claims = verify(&key(), &token, now).unwrap();
        assert_eq!(claims["tid"], "contoso");
        assert_eq!(claims["idtyp"], "app");
        assert_eq!(claims["aud"], GRAPH_AUDIENCE);
        assert_eq!(claims["iss"], "https://sts.windows.net/contoso/");
        assert_eq!(claims["oid"], claims["sub"]);
        assert_eq!(claims["roles"], json!(["ExternalItem.ReadWrite.All"]));
        assert!(claims.get("scp").is_none());
    }

    #[test]
    fn expiry_audience_and_tampering_are_refused() {
        let now = Utc::now();
        let request = TokenRequest {
            user_id: Some("u-1".into()),
            scopes: vec!["ExternalItem.Read.All".into()],
            ..TokenRequest::default()
        };
        let token = mint(&key(), &request, now);
        assert_eq!(
            verify(
                &key(),
                &token,
                now + chrono::Duration::seconds(TOKEN_LIFETIME_SECONDS)
            ),
            Err(Rejection::Expired)
        );
        assert!(verify(&key(), &token, now + chrono::Duration::seconds(60)).is_ok());
        let other_audience = mint(
            &key(),
            &TokenRequest {
                audience: Some("api://other".into()),
                ..request.clone()
            },
            now,
        );
        assert_eq!(
            verify(&key(), &other_audience, now),
            Err(Rejection::Audience("api://other".into()))
        );
        // Claims changed after signing: the signature no longer matches.
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let mut claims = crate::auth::jwt_claims(&token).unwrap();
        claims.insert("tid".into(), json!("another-tenant"));
        parts[1] = URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string());
        assert_eq!(
            verify(&key(), &parts.join("."), now),
            Err(Rejection::Signature)
        );
        assert_eq!(
            verify(&key(), "not a token", now),
            Err(Rejection::Malformed)
        );
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            parts[1]
        );
        assert_eq!(verify(&key(), &unsigned, now), Err(Rejection::Signature));
    }
}
