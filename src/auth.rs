//! Reading the caller from the bearer token.
//!
//! Lenient mode (the only mode so far): the JWT's claims are read without checking the signature;
//! a missing header or a token that is not a JWT acts as the default application of the default tenant.

use base64::Engine;
use serde_json::Value;

use crate::domain::ids::TenantId;
use crate::domain::principal::{Caller, DEFAULT_APP_ID};

/// Returns the caller described by an `Authorization` header value.
pub fn caller_from_authorization(authorization: Option<&str>) -> Caller {
    let Some(token) = authorization.and_then(bearer_token) else {
        return Caller::default_app();
    };
    match jwt_claims(token) {
        Some(claims) => caller_from_claims(&claims),
        None => Caller::default_app(),
    }
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
pub fn caller_from_claims(claims: &serde_json::Map<String, Value>) -> Caller {
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let tenant = text("tid")
        .and_then(|tid| TenantId::parse(tid).ok())
        .unwrap_or_else(TenantId::default_tenant);
    let app_id = text("appid")
        .or_else(|| text("azp"))
        .unwrap_or(DEFAULT_APP_ID)
        .to_string();
    let user = text("oid")
        .or_else(|| text("upn"))
        .or_else(|| text("preferred_username"))
        .map(str::to_string);
    // An app-only token from Entra also carries `oid` (the service principal); a user is present
    // only when the token is delegated, which `scp` marks.
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
    let is_app_only = scopes.is_empty()
        && !roles.is_empty()
        && text("upn").is_none()
        && text("preferred_username").is_none();
    Caller {
        tenant,
        app_id,
        user: if is_app_only { None } else { user },
        roles,
        scopes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn token(claims: Value) -> String {
        format!(
            "Bearer {}.{}.sig",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    #[test]
    fn no_header_or_a_non_jwt_acts_as_the_default_app() {
        assert_eq!(caller_from_authorization(None), Caller::default_app());
        assert_eq!(
            caller_from_authorization(Some("Bearer opaque-token")),
            Caller::default_app()
        );
        assert_eq!(
            caller_from_authorization(Some("Basic abc")),
            Caller::default_app()
        );
    }

    #[test]
    fn claims_name_tenant_app_and_user() {
        let caller = caller_from_authorization(Some(&token(serde_json::json!({
            "tid": "ABCD-Tenant", "appid": "app-9", "upn": "adele@contoso.com", "scp": "ExternalItem.Read.All"
        }))));
        assert_eq!(caller.tenant.as_str(), "abcd-tenant");
        assert_eq!(caller.app_id, "app-9");
        assert_eq!(caller.user.as_deref(), Some("adele@contoso.com"));
        assert_eq!(caller.scopes, vec!["ExternalItem.Read.All"]);
    }

    #[test]
    fn an_app_only_token_has_no_user() {
        let caller = caller_from_authorization(Some(&token(serde_json::json!({
            "tid": "t1", "azp": "app-2", "oid": "sp-object-id", "roles": ["ExternalItem.ReadWrite.All"]
        }))));
        assert_eq!(caller.app_id, "app-2");
        assert_eq!(caller.user, None);
    }
}

/// What a minted token says about its caller.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub tenant: Option<String>,
    /// For delegated tokens: the user's object id and UPN (either may be absent).
    pub user_id: Option<String>,
    pub user_principal_name: Option<String>,
    pub app_id: Option<String>,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
}

/// Lifetime of minted tokens, in seconds.
pub const TOKEN_LIFETIME_SECONDS: i64 = 3600;

/// Mints a token whose claims lenient mode reads. It is an unsigned JWT (`alg: none`): lenient
/// mode never checks signatures.
pub fn mint(request: &TokenRequest, now: chrono::DateTime<chrono::Utc>) -> String {
    let tenant = request
        .tenant
        .clone()
        .unwrap_or_else(|| crate::domain::ids::DEFAULT_TENANT_ID.to_string());
    let app_id = request
        .app_id
        .clone()
        .unwrap_or_else(|| DEFAULT_APP_ID.to_string());
    let issued = now.timestamp();
    let mut claims = serde_json::Map::new();
    claims.insert(
        "aud".into(),
        serde_json::json!("https://graph.microsoft.com"),
    );
    claims.insert(
        "iss".into(),
        serde_json::json!(format!("https://sts.windows.net/{tenant}/")),
    );
    claims.insert("iat".into(), serde_json::json!(issued));
    claims.insert("nbf".into(), serde_json::json!(issued));
    claims.insert(
        "exp".into(),
        serde_json::json!(issued + TOKEN_LIFETIME_SECONDS),
    );
    claims.insert("tid".into(), serde_json::json!(tenant));
    claims.insert("appid".into(), serde_json::json!(app_id));
    claims.insert("azp".into(), serde_json::json!(app_id));
    let delegated = request.user_id.is_some() || request.user_principal_name.is_some();
    if let Some(user_id) = &request.user_id {
        claims.insert("oid".into(), serde_json::json!(user_id));
    }
    if let Some(upn) = &request.user_principal_name {
        claims.insert("upn".into(), serde_json::json!(upn));
        claims.insert("preferred_username".into(), serde_json::json!(upn));
    }
    if delegated {
        let scopes = if request.scopes.is_empty() {
            vec!["ExternalItem.Read.All".to_string()]
        } else {
            request.scopes.clone()
        };
        claims.insert("scp".into(), serde_json::json!(scopes.join(" ")));
    }
    if !request.roles.is_empty() || !delegated {
        claims.insert("roles".into(), serde_json::json!(request.roles));
    }
    let header =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string());
    format!("{header}.{payload}.")
}

#[cfg(test)]
mod mint_tests {
    use super::*;

    #[test]
    fn minted_tokens_read_back_as_the_same_caller() {
        let token = mint(
            &TokenRequest {
                tenant: Some("contoso".into()),
                user_id: Some("u-1".into()),
                user_principal_name: Some("adele@contoso.com".into()),
                ..TokenRequest::default()
            },
            chrono::Utc::now(),
        );
        let caller = caller_from_authorization(Some(&format!("Bearer {token}")));
        assert_eq!(caller.tenant.as_str(), "contoso");
        assert_eq!(caller.user.as_deref(), Some("u-1"));
        assert_eq!(caller.scopes, vec!["ExternalItem.Read.All"]);
        let app = mint(
            &TokenRequest {
                app_id: Some("app-7".into()),
                roles: vec!["ExternalItem.ReadWrite.All".into()],
                ..TokenRequest::default()
            },
            chrono::Utc::now(),
        );
        let caller = caller_from_authorization(Some(&format!("Bearer {app}")));
        assert_eq!((caller.app_id.as_str(), caller.user), ("app-7", None));
    }
}
