//! The token endpoint's grants, as Entra answers them: client credentials (a secret or a
//! certificate's client assertion) and the password grant for directory users. Refusals carry
//! Entra's `error` and `AADSTS` code.

use crate::auth::AuthMode;
use crate::domain::application::Application;
use crate::domain::ids::TenantId;
use crate::identity::assertion::{self, AssertionError};
use crate::identity::tokens::{self, TokenRequest, TOKEN_LIFETIME_SECONDS};
use crate::state::AppState;

/// The assertion type of certificate credentials.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Scopes that ask for sign-in itself, not for a resource.
const OIDC_SCOPES: &[&str] = &["openid", "profile", "offline_access", "email"];

/// The token request's form fields that matter (unknown ones are ignored).
#[derive(Debug, Clone, Default)]
pub struct TokenForm {
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_assertion: Option<String>,
    pub client_assertion_type: Option<String>,
    pub scope: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `client_info=1`: MSAL asks for the account's ids.
    pub client_info: bool,
}

/// A refusal, as Entra words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInError {
    pub status: u16,
    /// OAuth's `error` (`invalid_client`, `invalid_grant`, ...).
    pub error: &'static str,
    /// The AADSTS number.
    pub code: u32,
    pub description: String,
}

impl SignInError {
    fn new(status: u16, error: &'static str, code: u32, description: impl Into<String>) -> Self {
        SignInError {
            status,
            error,
            code,
            description: description.into(),
        }
    }

    fn missing(parameter: &str) -> Self {
        SignInError::new(
            400,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{parameter}'."),
        )
    }
}

/// An issued token.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: String,
    pub expires_in: i64,
    /// The granted scopes (delegated tokens), space separated.
    pub scope: Option<String>,
    /// Password grant with `openid`: the user's ID token (MSAL builds its account from it).
    pub id_token: Option<String>,
    /// With `client_info=1` on a user's sign-in: base64url `{"uid", "utid"}`.
    pub client_info: Option<String>,
}

/// Handles `POST /{tenant}/oauth2/v2.0/token`.
/// `origin` is `scheme://host` the client reached gcemu at (the ID token's issuer starts with it).
pub async fn issue(
    state: &AppState,
    raw_tenant: &str,
    form: TokenForm,
    origin: &str,
) -> Result<Issued, SignInError> {
    let tenant = TenantId::parse(raw_tenant).map_err(|_| {
        SignInError::new(
            400,
            "invalid_request",
            90002,
            format!("Tenant '{raw_tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
        )
    })?;
    let grant_type = form
        .grant_type
        .clone()
        .ok_or_else(|| SignInError::missing("grant_type"))?;
    let delegated = match grant_type.as_str() {
        "client_credentials" => false,
        "password" => true,
        other => {
            return Err(SignInError::new(
                400,
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{other}'. gcemu serves client_credentials and password."),
            ))
        }
    };
    let client_id = form
        .client_id
        .clone()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| SignInError::missing("client_id"))?;
    let scope = form
        .scope
        .clone()
        .filter(|scope| !scope.trim().is_empty())
        .ok_or_else(|| SignInError::missing("scope"))?;
    let app = super::applications::find(state, &tenant, &client_id)
        .await
        .map_err(unavailable)?;
    let app = match app {
        Some(app) => Some(app),
        None if state.config.auth == AuthMode::Lenient => None,
        None => {
            return Err(SignInError::new(
                400,
                "unauthorized_client",
                700016,
                format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."),
            ))
        }
    };
    let auth_method = check_client(state, &tenant, &client_id, app.as_ref(), &form, delegated)?;
    // An application gcemu does not know (lenient mode only) is granted what the default one is.
    let grant = app.clone().unwrap_or_else(Application::default_app);
    let mut request = TokenRequest {
        tenant: Some(tenant.as_str().to_string()),
        app_id: Some(
            app.as_ref()
                .map_or(client_id.clone(), |app| app.app_id.clone()),
        ),
        app_display_name: Some(grant.display_name.clone()),
        client_auth_method: Some(auth_method),
        ..TokenRequest::default()
    };
    let now = state.clock.now();
    let mut id_token = None;
    let mut client_info = None;
    let granted_scope = if delegated {
        let user = sign_in_user(state, &tenant, &form).await?;
        request.user_id = Some(user.id.as_str().to_string());
        request.user_principal_name = Some(user.user_principal_name.clone());
        request.user_display_name = Some(user.display_name.clone());
        request.scopes = delegated_scopes(&scope, &grant, app.is_some(), &client_id)?;
        if scope
            .split_whitespace()
            .any(|s| s.eq_ignore_ascii_case("openid"))
        {
            id_token = Some(tokens::sign(
                &state.identity.key,
                &tokens::id_token_claims(&request, &client_id, origin, now),
            ));
        }
        if form.client_info {
            use base64::Engine;
            let info = serde_json::json!({"uid": user.id.as_str(), "utid": tenant.as_str()});
            client_info =
                Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(info.to_string()));
        }
        // The granted permissions, and what was asked for as it was asked (`.default`, `openid`):
        // MSAL files the token under these and finds it again for the same request.
        let mut answered: Vec<String> = request
            .scopes
            .iter()
            .map(|name| format!("{}/{name}", tokens::GRAPH_AUDIENCE))
            .collect();
        let mut seen: std::collections::HashSet<String> =
            answered.iter().map(|s| s.to_ascii_lowercase()).collect();
        for requested in scope.split_whitespace() {
            if seen.insert(requested.to_ascii_lowercase()) {
                answered.push(requested.to_string());
            }
        }
        Some(answered.join(" "))
    } else {
        if let Some(bad) = scope.split_whitespace().find(|s| !s.ends_with("/.default")) {
            return Err(SignInError::new(
                400,
                "invalid_scope",
                1002012,
                format!("The provided value for scope {bad} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."),
            ));
        }
        request.roles = grant.roles.clone();
        None
    };
    Ok(Issued {
        access_token: tokens::mint(&state.identity.key, &request, now),
        expires_in: TOKEN_LIFETIME_SECONDS,
        scope: granted_scope,
        id_token,
        client_info,
    })
}

fn unavailable(error: super::Error) -> SignInError {
    SignInError::new(
        503,
        "temporarily_unavailable",
        90033,
        format!("A transient error has occurred. Please try again. ({error})"),
    )
}

/// Checks the client's credential; returns `appidacr` (`0` none, `1` secret, `2` certificate).
fn check_client(
    state: &AppState,
    tenant: &TenantId,
    client_id: &str,
    app: Option<&Application>,
    form: &TokenForm,
    delegated: bool,
) -> Result<&'static str, SignInError> {
    let invalid_client =
        |code: u32, description: String| SignInError::new(401, "invalid_client", code, description);
    if let Some(assertion) = &form.client_assertion {
        if form.client_assertion_type.as_deref() != Some(JWT_BEARER_ASSERTION) {
            return Err(SignInError::new(
                400,
                "invalid_request",
                50027,
                format!("The client_assertion_type must be '{JWT_BEARER_ASSERTION}'."),
            ));
        }
        let Some(app) = app else {
            // Lenient mode, an application gcemu does not know: nothing to check against.
            return Ok("2");
        };
        return match assertion::verify(
            assertion,
            &app.app_id,
            tenant.as_str(),
            &app.certificates,
            state.clock.now(),
        ) {
            Ok(()) => Ok("2"),
            Err(AssertionError::Signature) => Err(invalid_client(
                700027,
                format!("Client assertion failed signature validation: no certificate registered on application '{client_id}' verifies it."),
            )),
            Err(AssertionError::TimeRange) => Err(invalid_client(
                700024,
                "Client assertion is not within its valid time range.".to_string(),
            )),
            Err(AssertionError::Audience(audience)) => Err(invalid_client(
                50012,
                format!("Client assertion audience claim '{audience}' does not match Realm issuer: use this tenant's token endpoint."),
            )),
            Err(AssertionError::Subject(message)) | Err(AssertionError::Malformed(message)) => {
                Err(invalid_client(50027, format!("JWT token is invalid or malformed. {message}")))
            }
        };
    }
    match (&form.client_secret, app) {
        (Some(secret), Some(app)) => {
            if app.secrets.iter().any(|known| known == secret) {
                Ok("1")
            } else {
                Err(invalid_client(
                    7000215,
                    format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."),
                ))
            }
        }
        (Some(_), None) => Ok("1"),
        // The password grant works for public clients, which have no credential.
        (None, _) if delegated => Ok("0"),
        (None, _) => Err(invalid_client(
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".to_string(),
        )),
    }
}

async fn sign_in_user(
    state: &AppState,
    tenant: &TenantId,
    form: &TokenForm,
) -> Result<crate::domain::directory::DirectoryUser, SignInError> {
    let username = form
        .username
        .clone()
        .filter(|name| !name.is_empty())
        .ok_or_else(|| SignInError::missing("username"))?;
    let password = form
        .password
        .clone()
        .ok_or_else(|| SignInError::missing("password"))?;
    let user = super::access::find_user(state, tenant, &username)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| {
            SignInError::new(
                400,
                "invalid_grant",
                50034,
                format!("The user account {{EUII Hidden}} does not exist in the {tenant} directory. To sign into this application, the account must be added to the directory."),
            )
        })?;
    if user
        .password
        .as_ref()
        .is_some_and(|known| *known != password)
    {
        return Err(SignInError::new(
            400,
            "invalid_grant",
            50126,
            "Error validating credentials due to invalid username or password.",
        ));
    }
    if !user.account_enabled {
        return Err(SignInError::new(
            400,
            "invalid_grant",
            50057,
            "The user account is disabled.",
        ));
    }
    Ok(user)
}

/// The `scp` of a delegated token: `.default` gives what the application is granted; named
/// permissions (`https://graph.microsoft.com/ExternalItem.Read.All` or the bare name) must be
/// granted to a known application.
fn delegated_scopes(
    scope: &str,
    app: &Application,
    known: bool,
    client_id: &str,
) -> Result<Vec<String>, SignInError> {
    let mut granted: Vec<String> = Vec::new();
    // A form may name thousands of scopes: names are looked up and deduplicated by hashing, and
    // `.default` is expanded once.
    let consented_by_name: std::collections::HashMap<String, &String> = app
        .scopes
        .iter()
        .map(|s| (s.to_ascii_lowercase(), s))
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut default_expanded = false;
    for requested in scope.split_whitespace() {
        if OIDC_SCOPES
            .iter()
            .any(|s| requested.eq_ignore_ascii_case(s))
        {
            continue;
        }
        let name = requested.rsplit('/').next().unwrap_or(requested);
        let names: Vec<String> = if name == ".default" {
            if std::mem::replace(&mut default_expanded, true) {
                continue;
            }
            app.scopes.clone()
        } else {
            vec![name.to_string()]
        };
        for name in names {
            let consented = consented_by_name.get(&name.to_ascii_lowercase());
            let name = match (consented, known) {
                (Some(consented), _) => consented.to_string(),
                (None, false) => name,
                (None, true) => {
                    return Err(SignInError::new(
                        400,
                        "invalid_grant",
                        65001,
                        format!("The user or administrator has not consented to use the application with ID '{client_id}' named '{}'. Send an interactive authorization request for this user and resource. (The application is not granted the delegated permission '{name}'.)", app.display_name),
                    ))
                }
            };
            if seen.insert(name.to_ascii_lowercase()) {
                granted.push(name);
            }
        }
    }
    Ok(granted)
}
