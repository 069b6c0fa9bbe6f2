//! gcemu as Entra: the token endpoint, OpenID Connect metadata, the signing keys and instance
//! discovery, enough for the official identity libraries to sign in offline; and the local CA.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::context::request_origin;
use super::error::{ApiError, ErrorCode};
use super::openapi::wire;
use crate::service::sign_in::{self, SignInError, TokenForm};
use crate::state::AppState;

/// The largest token request read (form bodies are small; assertions a few KB).
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Whether `path` is one of the identity provider's (`/{tenant}/oauth2/...`, `/{tenant}/v2.0/...`,
/// `/{tenant}/discovery/...`, `/common/discovery/...`).
pub fn is_identity_path(path: &str) -> bool {
    let mut segments = path.trim_start_matches('/').split('/');
    let (Some(_tenant), Some(next)) = (segments.next(), segments.next()) else {
        return false;
    };
    matches!(next, "oauth2" | "discovery")
        || (next == "v2.0" && segments.next() == Some(".well-known"))
}

/// The identity routes, at the root as on `login.microsoftonline.com`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(token))
        .routes(routes!(openid_configuration))
        .routes(routes!(keys))
        .routes(routes!(instance_discovery))
        .routes(routes!(user_realm))
}

/// `GET /common/userrealm/{user}`: whether a user signs in at a federated identity provider; MSAL
/// asks before the password grant. Every gcemu tenant is managed (cloud-only accounts).
#[utoipa::path(
    get, path = "/common/userrealm/{user}", tag = "identity", operation_id = "userRealm",
    params(("user" = String, Path, description = "The user's UPN.")),
    responses((status = 200, description = "A managed (not federated) realm.", body = Object))
)]
async fn user_realm(Path(user): Path<String>) -> Response {
    let domain = user.rsplit_once('@').map_or("", |(_, domain)| domain);
    Json(json!({
        "ver": "1.0",
        "account_type": "Managed",
        "domain_name": domain,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_audience_urn": "urn:federation:MicrosoftOnline"
    }))
    .into_response()
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`: where the token endpoint and the keys are.
#[utoipa::path(
    get, path = "/{tenant}/v2.0/.well-known/openid-configuration", tag = "identity", operation_id = "openidConfiguration",
    params(("tenant" = String, Path, description = "Tenant id or name.")),
    responses((status = 200, description = "OpenID Connect metadata; every URL starts with the scheme and host the request used.", body = Object))
)]
async fn openid_configuration(Path(tenant): Path<String>, parts: Parts) -> Response {
    let base = format!("{}/{tenant}", request_origin(&parts));
    Json(json!({
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": format!("{base}/kerberos"),
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net"
    }))
    .into_response()
}

/// `GET /{tenant}/discovery/v2.0/keys`: the key set that verifies gcemu's tokens.
#[utoipa::path(
    get, path = "/{tenant}/discovery/v2.0/keys", tag = "identity", operation_id = "signingKeys",
    params(("tenant" = String, Path, description = "Tenant id or name.")),
    responses((status = 200, description = "A JSON Web Key Set with gcemu's RS256 signing key.", body = Object))
)]
async fn keys(State(state): State<AppState>, Path(tenant): Path<String>, parts: Parts) -> Response {
    let issuer = format!("{}/{tenant}/v2.0", request_origin(&parts));
    Json(state.identity.key.jwks(&issuer)).into_response()
}

#[derive(Debug, Deserialize)]
struct DiscoveryQuery {
    authorization_endpoint: Option<String>,
}

/// `GET /common/discovery/instance`: what MSAL asks `login.microsoftonline.com` before it signs
/// in (unless instance discovery is disabled).
#[utoipa::path(
    get, path = "/common/discovery/instance", tag = "identity", operation_id = "instanceDiscovery",
    params(("authorization_endpoint" = Option<String>, Query, description = "The authority's authorization endpoint, whose first path segment is the tenant.")),
    responses((status = 200, description = "Instance discovery metadata pointing at gcemu.", body = Object))
)]
async fn instance_discovery(Query(query): Query<DiscoveryQuery>, parts: Parts) -> Response {
    let origin = request_origin(&parts);
    // The tenant is the first path segment of the authorization endpoint it names.
    let tenant = query
        .authorization_endpoint
        .as_deref()
        .and_then(|endpoint| endpoint.split_once("://"))
        .and_then(|(_, rest)| rest.split('/').nth(1))
        .filter(|tenant| !tenant.is_empty())
        .unwrap_or("common")
        .to_string();
    let host = origin
        .split_once("://")
        .map_or(origin.as_str(), |(_, host)| host)
        .to_string();
    Json(json!({
        "tenant_discovery_endpoint": format!("{origin}/{tenant}/v2.0/.well-known/openid-configuration"),
        "api-version": "1.1",
        "metadata": [{
            "preferred_network": host,
            "preferred_cache": host,
            "aliases": [host, "login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"]
        }]
    }))
    .into_response()
}

/// `POST /{tenant}/oauth2/v2.0/token`: client credentials (secret or certificate assertion)
/// and the password grant; refusals in Entra's shape with AADSTS codes.
#[utoipa::path(
    post, path = "/{tenant}/oauth2/v2.0/token", tag = "identity", operation_id = "token",
    params(("tenant" = String, Path, description = "Tenant id or name (the tokens' `tid`).")),
    request_body(content = wire::TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "An access token for Microsoft Graph.", body = wire::TokenEndpointAnswer),
        (status = 400, description = "Entra's error body (`invalid_request`, `invalid_grant`, `unauthorized_client`, `invalid_scope`, `unsupported_grant_type`).", body = wire::EntraError),
        (status = 401, description = "Entra's error body (`invalid_client`: a wrong secret or assertion).", body = wire::EntraError)
    )
)]
async fn token(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    parts: Parts,
    body: Bytes,
) -> Response {
    let headers = &parts.headers;
    let correlation_id = headers
        .get("client-request-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| uuid::Uuid::parse_str(value).ok())
        .unwrap_or_else(uuid::Uuid::new_v4)
        .to_string();
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase());
    let result = if body.len() > MAX_FORM_BYTES {
        Err(SignInError {
            status: 400,
            error: "invalid_request",
            code: 90020,
            description: format!("The request body exceeds {MAX_FORM_BYTES} bytes."),
        })
    } else if essence.as_deref() != Some("application/x-www-form-urlencoded") {
        Err(SignInError {
            status: 400,
            error: "invalid_request",
            code: 900144,
            description: "The request body must contain the following parameter: 'grant_type'. (Send the token request as application/x-www-form-urlencoded.)".to_string(),
        })
    } else {
        let form = read_form(&body, headers);
        sign_in::issue(&state, &tenant, form, &request_origin(&parts)).await
    };
    match result {
        Ok(issued) => {
            let mut answer = json!({
                "token_type": "Bearer",
                "expires_in": issued.expires_in,
                "ext_expires_in": issued.expires_in,
                "access_token": issued.access_token,
            });
            if let Some(scope) = issued.scope {
                answer["scope"] = Value::String(scope);
            }
            if let Some(id_token) = issued.id_token {
                answer["id_token"] = Value::String(id_token);
            }
            if let Some(client_info) = issued.client_info {
                answer["client_info"] = Value::String(client_info);
            }
            no_store(Json(answer).into_response(), &correlation_id)
        }
        Err(error) => refusal(&state, error, &correlation_id),
    }
}

/// The form's fields; HTTP Basic client authentication (`client_secret_basic`) fills in the
/// client id and secret.
fn read_form(body: &[u8], headers: &HeaderMap) -> TokenForm {
    let mut form = TokenForm::default();
    for (name, value) in form_urlencoded_pairs(body) {
        let slot = match name.as_str() {
            "client_info" => {
                form.client_info = value == "1";
                continue;
            }
            "grant_type" => &mut form.grant_type,
            "client_id" => &mut form.client_id,
            "client_secret" => &mut form.client_secret,
            "client_assertion" => &mut form.client_assertion,
            "client_assertion_type" => &mut form.client_assertion_type,
            "scope" => &mut form.scope,
            "username" => &mut form.username,
            "password" => &mut form.password,
            _ => continue,
        };
        *slot = Some(value);
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
        })
        .and_then(|decoded| String::from_utf8(decoded).ok());
    if let Some((id, secret)) = basic.as_deref().and_then(|pair| pair.split_once(':')) {
        let decode = |raw: &str| {
            percent_encoding::percent_decode_str(&raw.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        form.client_id.get_or_insert_with(|| decode(id));
        form.client_secret.get_or_insert_with(|| decode(secret));
    }
    form
}

fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    let decode = |raw: &[u8]| {
        let spaced: Vec<u8> = raw
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        percent_encoding::percent_decode(&spaced)
            .decode_utf8_lossy()
            .into_owned()
    };
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(at) => (decode(&pair[..at]), decode(&pair[at + 1..])),
            None => (decode(pair), String::new()),
        })
        .collect()
}

fn no_store(mut response: Response, correlation_id: &str) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(correlation_id) {
        headers.insert("client-request-id", value);
    }
    response
}

/// Entra's error body: `{error, error_description, error_codes, timestamp, trace_id,
/// correlation_id, error_uri}`.
fn refusal(state: &AppState, error: SignInError, correlation_id: &str) -> Response {
    let trace_id = uuid::Uuid::new_v4().to_string();
    let timestamp = state.clock.now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    let description = format!(
        "AADSTS{}: {} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}",
        error.code, error.description
    );
    tracing::debug!(
        code = error.code,
        error = error.error,
        "token request refused"
    );
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({
        "error": error.error,
        "error_description": description,
        "error_codes": [error.code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": format!("https://login.microsoftonline.com/error?code={}", error.code),
    });
    no_store((status, Json(body)).into_response(), correlation_id)
}

/// `GET /_emulator/ca.pem`: gcemu's CA certificate, for clients to trust.
#[utoipa::path(
    get, path = "/ca.pem", tag = "control plane", operation_id = "caCertificate",
    responses(
        (status = 200, description = "The PEM certificate of gcemu's local CA (served with `--tls`).", content_type = "application/x-pem-file", body = String),
        (status = 404, description = "gcemu serves http, or https with your own certificate.")
    )
)]
pub(super) async fn ca_certificate(State(state): State<AppState>) -> Result<Response, ApiError> {
    match &state.identity.ca {
        Some(ca) => Ok((
            [(header::CONTENT_TYPE, "application/x-pem-file")],
            ca.cert_pem.clone(),
        )
            .into_response()),
        None => Err(ApiError::new(
            ErrorCode::ItemNotFound,
            "gcemu has no CA in use: start it with --tls (without --tls-cert) to serve https with a certificate from its local CA.",
        )),
    }
}
