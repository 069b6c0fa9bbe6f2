//! Reading the caller from the bearer token, in the two modes of `--auth`.
//!
//! - lenient (default): the JWT's claims are read without checking the signature; a missing
//!   header or a token that is not a JWT acts as the default application of the default tenant.
//!   A JWT whose `tid` is not a well-formed tenant id is refused.
//! - strict: only tokens signed by gcemu's key, with Graph's audience and unexpired on the
//!   emulator's clock, are accepted.

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::ids::TenantId;
use crate::domain::principal::{Caller, ConnectionScope, DEFAULT_APP_ID};
use crate::identity::keys::SigningKey;
use crate::identity::tokens::{self, Rejection};

/// `--auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    #[default]
    Lenient,
    Strict,
}

/// Why a request's token is refused (`401 InvalidAuthenticationToken`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// Strict mode, and no bearer token.
    Empty,
    Rejected(Rejection),
    /// `tid` is present but not a tenant id.
    InvalidTenant(String),
}

impl AuthFailure {
    /// Graph's message for the failure.
    pub fn message(&self) -> String {
        match self {
            AuthFailure::Empty => "Access token is empty.".to_string(),
            AuthFailure::Rejected(rejection) => rejection.message(),
            AuthFailure::InvalidTenant(tid) => format!(
                "Access token validation failure. The 'tid' claim '{tid}' is not a valid tenant id (1 to 128 characters, no control characters)."
            ),
        }
    }
}

/// The caller described by an `Authorization` header value, in `mode`, at `now`.
pub fn authenticate(
    mode: AuthMode,
    key: &SigningKey,
    now: DateTime<Utc>,
    authorization: Option<&str>,
) -> Result<Caller, AuthFailure> {
    let token = authorization
        .and_then(bearer_token)
        .filter(|token| !token.is_empty());
    match mode {
        AuthMode::Lenient => match token.and_then(jwt_claims) {
            Some(claims) => caller_from_claims(&claims),
            None => Ok(Caller::default_app()),
        },
        AuthMode::Strict => {
            let token = token.ok_or(AuthFailure::Empty)?;
            let claims = tokens::verify(key, token, now).map_err(AuthFailure::Rejected)?;
            caller_from_claims(&claims)
        }
    }
}

/// Lenient reading of a header, for tools that only describe a token (the CLI's tests).
pub fn caller_from_authorization(authorization: Option<&str>) -> Caller {
    let claims = authorization.and_then(bearer_token).and_then(jwt_claims);
    claims
        .and_then(|claims| caller_from_claims(&claims).ok())
        .unwrap_or_else(Caller::default_app)
}

fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Decodes the claims (middle part) of a compact JWT without verifying it.
pub fn jwt_claims(token: &str) -> Option<serde_json::Map<String, Value>> {
    let mut parts = token.split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(claims) => Some(claims),
        _ => None,
    }
}

/// Maps claims to a caller: `tid`; `oid` / `upn` / `preferred_username` for the user;
/// `appid` / `azp` for the application; `roles`; `scp` (space separated).
///
/// A token is app-only as Entra marks it: `idtyp: app`, or (without `idtyp`) no `scp`.
pub fn caller_from_claims(claims: &serde_json::Map<String, Value>) -> Result<Caller, AuthFailure> {
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let tenant = match claims.get("tid") {
        None | Some(Value::Null) => TenantId::default_tenant(),
        Some(Value::String(tid)) => {
            TenantId::parse(tid).map_err(|_| AuthFailure::InvalidTenant(tid.clone()))?
        }
        Some(other) => return Err(AuthFailure::InvalidTenant(other.to_string())),
    };
    let app_id = text("appid")
        .or_else(|| text("azp"))
        .unwrap_or(DEFAULT_APP_ID)
        .to_string();
    let user = text("oid")
        .or_else(|| text("upn"))
        .or_else(|| text("preferred_username"))
        .map(str::to_string);
    let scopes: Vec<String> = text("scp")
        .map(|scp| scp.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let roles: Vec<String> = claims
        .get("roles")
        .and_then(Value::as_array)
        .map(|roles| {
            roles
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    // An app-only token from Entra also carries `oid` (the service principal's).
    let is_app_only = match text("idtyp") {
        Some(kind) if kind.eq_ignore_ascii_case("app") => true,
        Some(kind) if kind.eq_ignore_ascii_case("user") => false,
        _ => text("scp").is_none(),
    };
    Ok(Caller {
        tenant,
        app_id,
        user: if is_app_only { None } else { user },
        roles,
        scopes,
        connection_scope: ConnectionScope::All,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    fn token(claims: Value) -> String {
        format!(
            "Bearer {}.{}.sig",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    fn lenient(header: Option<&str>) -> Result<Caller, AuthFailure> {
        let key = SigningKey::load_or_create(None).unwrap();
        authenticate(AuthMode::Lenient, &key, Utc::now(), header)
    }

    #[test]
    fn no_header_or_a_non_jwt_acts_as_the_default_app() {
        assert_eq!(lenient(None), Ok(Caller::default_app()));
        assert_eq!(
            lenient(Some("Bearer opaque-token")),
            Ok(Caller::default_app())
        );
        assert_eq!(lenient(Some("Basic abc")), Ok(Caller::default_app()));
    }

    #[test]
    fn claims_name_tenant_app_and_user() {
        let caller = lenient(Some(&token(json!({
            "tid": "ABCD-Tenant", "appid": "app-9", "upn": "adele@contoso.com", "scp": "ExternalItem.Read.All"
        }))))
        .unwrap();
        assert_eq!(caller.tenant.as_str(), "abcd-tenant");
        assert_eq!(caller.app_id, "app-9");
        assert_eq!(caller.user.as_deref(), Some("adele@contoso.com"));
        assert_eq!(caller.scopes, vec!["ExternalItem.Read.All"]);
    }

    #[test]
    fn app_only_is_read_as_entra_marks_it() {
        // No scp: app-only, even with no roles and a upn-looking claim.
        let caller = lenient(Some(&token(json!({
            "tid": "t1", "azp": "app-2", "oid": "sp-object-id"
        }))))
        .unwrap();
        assert_eq!((caller.app_id.as_str(), caller.user), ("app-2", None));
        // idtyp wins over scp.
        let caller = lenient(Some(&token(json!({
            "tid": "t1", "idtyp": "app", "oid": "sp", "scp": "x"
        }))))
        .unwrap();
        assert_eq!(caller.user, None);
        let caller = lenient(Some(&token(
            json!({"tid": "t1", "idtyp": "user", "oid": "u-1"}),
        )))
        .unwrap();
        assert_eq!(caller.user.as_deref(), Some("u-1"));
    }

    #[test]
    fn a_malformed_tid_is_refused_not_moved_to_the_default_tenant() {
        for tid in [
            json!(""),
            json!(42),
            json!("a\u{7}b"),
            json!("x".repeat(129)),
        ] {
            assert!(
                matches!(
                    lenient(Some(&token(json!({"tid": tid, "roles": ["r.a"]})))),
                    Err(AuthFailure::InvalidTenant(_))
                ),
                "{tid}"
            );
        }
    }

    #[test]
    fn strict_mode_needs_a_token_signed_by_gcemu() {
        let key = SigningKey::load_or_create(None).unwrap();
        let now = Utc::now();
        assert_eq!(
            authenticate(AuthMode::Strict, &key, now, None),
            Err(AuthFailure::Empty)
        );
        let unsigned =
            token(json!({"tid": "t1", "aud": tokens::GRAPH_AUDIENCE, "exp": now.timestamp() + 60}));
        assert_eq!(
            authenticate(AuthMode::Strict, &key, now, Some(&unsigned)),
            Err(AuthFailure::Rejected(Rejection::Signature))
        );
        let signed = tokens::mint(
            &key,
            &tokens::TokenRequest {
                tenant: Some("t1".into()),
                app_id: Some("app-3".into()),
                ..Default::default()
            },
            now,
        );
        let caller = authenticate(
            AuthMode::Strict,
            &key,
            now,
            Some(&format!("Bearer {signed}")),
        )
        .unwrap();
        assert_eq!(
            (caller.tenant.as_str(), caller.app_id.as_str()),
            ("t1", "app-3")
        );
    }
}
