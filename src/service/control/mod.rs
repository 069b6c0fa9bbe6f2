//! The test control plane (`/_emulator/*`) as use cases: reset, the clock, tokens, "why can this
//! user see this item", and the request journal, fault rules and throttling that the Graph
//! requests pass through. Handlers in `http::emulator` only read requests and render answers.

pub mod faults;
pub mod inspect;
pub mod journal;
pub mod report;
pub mod throttle;

use serde_json::Value;

use super::Error;
use crate::domain::acl::AclEntry;
use crate::domain::ids::{ConnectionId, ItemId, TenantId};
use crate::state::AppState;

pub use faults::Faults;
pub use journal::Journal;
pub use throttle::Throttle;

/// The control plane's own state, shared by every request.
#[derive(Debug, Clone)]
pub struct Control {
    pub journal: Journal,
    pub faults: Faults,
    pub throttle: Throttle,
}

impl Control {
    pub fn new(journal_size: usize, fault_seed: u64, limits: throttle::Limits) -> Control {
        Control {
            journal: Journal::new(journal_size),
            faults: Faults::new(fault_seed),
            throttle: Throttle::new(limits),
        }
    }
}

/// Empties all state, or one tenant's; the index and the principal cache follow in the store's
/// post-commit effect, so no write can land between the resets (nor be skipped if the client
/// goes away).
pub async fn reset(state: &AppState, tenant: Option<TenantId>) -> Result<(), Error> {
    let (index, principals, reset_tenant) = (
        state.index.clone(),
        state.principals.clone(),
        tenant.clone(),
    );
    let effect: crate::store::Effect = Box::new(move || {
        index.reset(reset_tenant.as_ref());
        match &reset_tenant {
            Some(tenant) => principals.membership_changed(tenant),
            None => principals.clear(),
        }
    });
    state.store.reset(tenant, Some(effect)).await?;
    state.index.flush().await?;
    Ok(())
}

/// Moves the emulator's clock forward and settles what came due (schema operations, index lag).
pub async fn advance_clock(
    state: &AppState,
    by: chrono::Duration,
) -> Result<chrono::DateTime<chrono::Utc>, Error> {
    state.clock.advance(by).map_err(|error| {
        Error::Invalid(crate::domain::Violation::new("seconds", format!("{error}")))
    })?;
    super::schema::settle_all(state).await?;
    state.index.release_due();
    Ok(state.clock.now())
}

/// What a token request asks for.
#[derive(Debug, Clone)]
pub struct TokenInput {
    pub tenant: TenantId,
    pub user: Option<String>,
    pub app: Option<String>,
    /// `None`: the declared application's granted roles (if it is declared).
    pub roles: Option<Vec<String>>,
    pub scopes: Vec<String>,
    /// `aud` (Graph's when absent): another audience makes a token strict mode refuses.
    pub audience: Option<String>,
    /// Seconds until the token expires (default 3599; zero or negative: already expired).
    pub lifetime_seconds: Option<i64>,
}

/// Mints a token for a directory user (by id or UPN) of the tenant, or for an application.
pub async fn mint_token(state: &AppState, input: TokenInput) -> Result<String, Error> {
    let app_id = input
        .app
        .clone()
        .unwrap_or_else(|| crate::domain::principal::DEFAULT_APP_ID.to_string());
    let app = super::applications::find(state, &input.tenant, &app_id).await?;
    let mut request = crate::identity::tokens::TokenRequest {
        tenant: Some(input.tenant.as_str().to_string()),
        app_id: Some(app_id),
        app_display_name: app.as_ref().map(|app| app.display_name.clone()),
        roles: input.roles.clone().unwrap_or_default(),
        scopes: input.scopes,
        audience: input.audience,
        lifetime_seconds: input.lifetime_seconds,
        ..Default::default()
    };
    // A token carries the permissions granted to its application (declared, or the default
    // one), unless the request names them itself.
    if let Some(app) = app {
        if input.user.is_none() && input.roles.is_none() {
            request.roles = app.roles;
        }
        if input.user.is_some() && request.scopes.is_empty() {
            request.scopes = app.scopes;
        }
    }
    if input.user.is_some() && request.scopes.is_empty() {
        request.scopes = vec!["ExternalItem.Read.All".to_string()];
    }
    if let Some(user) = &input.user {
        let Some(found) = super::access::find_user(state, &input.tenant, user).await? else {
            return Err(Error::NotFound {
                kind: super::ResourceKind::User,
                id: user.clone(),
            });
        };
        request.user_id = Some(found.id.as_str().to_string());
        request.user_principal_name = Some(found.user_principal_name);
        request.user_display_name = Some(found.display_name);
    }
    Ok(crate::identity::tokens::mint(
        &state.identity.key,
        &request,
        state.clock.now(),
    ))
}

/// Why a user may or may not see an item, and with a question, what it would yield to retrieval.
#[derive(Debug, Clone)]
pub struct AccessExplanation {
    pub allowed: bool,
    pub matched_entries: Vec<AclEntry>,
    pub reason: String,
    pub paths: Vec<Vec<String>>,
    pub retrieval: Option<RetrievalExplanation>,
    /// The connection's result templates tried for the item, in priority order, up to the one
    /// the item gets (the last, when `chosen`).
    pub result_templates: Vec<crate::domain::result_template::TemplateOutcome>,
}

#[derive(Debug, Clone)]
pub struct RetrievalExplanation {
    pub query_words: Vec<String>,
    pub passages: usize,
    pub extracts: Vec<super::retrieval::Extract>,
}

pub async fn explain_access(
    state: &AppState,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    item_id: &ItemId,
    user: &str,
    question: Option<String>,
) -> Result<AccessExplanation, Error> {
    let explanation = super::access::explain(state, tenant, connection_id, item_id, user).await?;
    let acl = &explanation.item.acl;
    let matched_entries = explanation
        .decision
        .matched
        .iter()
        .map(|index| acl[*index].clone())
        .collect();
    let paths = explanation
        .decision
        .chains
        .iter()
        .map(|(_, chain)| chain.iter().map(|member| member.describe()).collect())
        .collect();
    let retrieval = match question.filter(|q| !q.trim().is_empty()) {
        None => None,
        Some(question) => {
            let schema = state.index.effective_schema(tenant, connection_id);
            let item = explanation.item.clone();
            let query_words = crate::domain::retrieval::query_words(&question);
            Some(
                tokio::task::spawn_blocking(move || {
                    let text = schema
                        .map(|schema| super::retrieval::item_text(&item, &schema))
                        .unwrap_or_default();
                    let passages = crate::domain::retrieval::passages(&text).len();
                    let extracts = super::retrieval::extracts(&[text], &query_words)
                        .into_iter()
                        .flatten()
                        .collect();
                    RetrievalExplanation {
                        query_words,
                        passages,
                        extracts,
                    }
                })
                .await
                .map_err(|error| Error::Internal(error.to_string()))?,
            )
        }
    };
    let (lookup_tenant, lookup_connection) = (tenant.clone(), connection_id.clone());
    let settings = state
        .store
        .read(move |db| {
            crate::store::connections::search_settings(db, &lookup_tenant, &lookup_connection)
        })
        .await?
        .flatten();
    let templates = crate::domain::result_template::search_result_templates(settings.as_ref());
    let result_templates = match state.index.effective_schema(tenant, connection_id) {
        Some(schema) => crate::domain::result_template::explain(
            &templates,
            &schema,
            &explanation.item.properties,
        ),
        None => Vec::new(),
    };
    Ok(AccessExplanation {
        result_templates,
        allowed: explanation.decision.allowed,
        matched_entries,
        reason: explanation.decision.reason,
        paths,
        retrieval,
    })
}

/// A JSON number of seconds as a clock step: finite, not negative, at most a billion.
pub fn seconds(value: Option<&Value>) -> Option<chrono::Duration> {
    value
        .and_then(Value::as_f64)
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0 && *seconds <= 1e9)
        .map(|seconds| chrono::Duration::milliseconds((seconds * 1000.0) as i64))
}
