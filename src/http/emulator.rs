//! The control plane under `/_emulator` (never under `/v1.0` or `/beta`): health, reset, clock.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::extract::{ApiVersion, JsonObject};
use crate::domain::acl::AclEntry;
use crate::domain::ids::TenantId;
use crate::domain::ids::{ConnectionId, ItemId};
use crate::service;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/reset", post(reset))
        .route("/clock", get(clock))
        .route("/clock/advance", post(advance_clock))
        .route("/token", post(token))
        .route(
            "/fixtures",
            post(super::fixtures::load).get(super::fixtures::export),
        )
        .route(
            "/connections/{connection_id}/items/{item_id}/access",
            get(explain_access),
        )
}

#[derive(Debug, Deserialize)]
struct AccessQuery {
    user: Option<String>,
    tenant: Option<String>,
    /// A Copilot Retrieval question: the answer then says which passages the item would yield.
    query: Option<String>,
}

/// Whether a directory user may see an item, which ACL entries matched, and through which
/// membership chains the group entries matched.
async fn explain_access(
    State(state): State<AppState>,
    Path((connection_id, item_id)): Path<(String, String)>,
    Query(query): Query<AccessQuery>,
) -> Result<Response, ApiError> {
    let Some(user) = query.user.filter(|user| !user.is_empty()) else {
        return Err(ApiError::invalid(
            "Name the user: ?user=<userPrincipalName or id>.",
        ));
    };
    let tenant = match query.tenant {
        Some(raw) => {
            TenantId::parse(&raw).map_err(|violation| ApiError::invalid(violation.message))?
        }
        None => TenantId::default_tenant(),
    };
    let item_id = ItemId::parse(&item_id).map_err(|_| ApiError::not_found("Item"))?;
    let explanation = service::access::explain(
        &state,
        &tenant,
        &ConnectionId::lookup(&connection_id),
        &item_id,
        &user,
    )
    .await?;
    let acl = &explanation.item.acl;
    let matched: Vec<AclEntry> = explanation
        .decision
        .matched
        .iter()
        .map(|index| acl[*index].clone())
        .collect();
    let paths: Vec<Vec<String>> = explanation
        .decision
        .chains
        .iter()
        .map(|(_, chain)| chain.iter().map(|member| member.describe()).collect())
        .collect();
    let mut body = json!({
        "allowed": explanation.decision.allowed,
        "matchedEntries": super::items::acl_json(ApiVersion::Beta, &matched),
        "reason": explanation.decision.reason,
        "paths": paths,
    });
    if let Some(question) = query.query.filter(|q| !q.trim().is_empty()) {
        let schema = state
            .index
            .effective_schema(&tenant, &ConnectionId::lookup(&connection_id));
        let text = schema
            .as_deref()
            .map(|schema| service::retrieval::item_text(&explanation.item, schema))
            .unwrap_or_default();
        let words = crate::domain::retrieval::query_words(&question);
        let extracts = tokio::task::spawn_blocking(move || {
            let n_passages = crate::domain::retrieval::passages(&text).len();
            let extracts = service::retrieval::extracts(&[text], &words);
            (n_passages, extracts, words)
        })
        .await
        .map_err(|error| service::Error::Internal(error.to_string()))?;
        let (n_passages, extracts, words) = extracts;
        body["retrieval"] = json!({
            "queryWords": words,
            "passages": n_passages,
            "extracts": extracts.into_iter().flatten().map(|e| json!({"text": e.text, "relevanceScore": e.relevance_score})).collect::<Vec<_>>(),
        });
    }
    Ok(Json(body).into_response())
}

async fn clock(State(state): State<AppState>) -> Response {
    Json(json!({ "now": state.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true) }))
        .into_response()
}

/// Moves the emulator's clock forward by `{"seconds": N}` and settles what came due.
async fn advance_clock(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let seconds = body
        .get("seconds")
        .and_then(serde_json::Value::as_f64)
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0 && *seconds <= 1e9)
        .ok_or_else(|| {
            ApiError::invalid("The body must be {\"seconds\": N} with N a non-negative number.")
        })?;
    state
        .clock
        .advance(chrono::Duration::milliseconds((seconds * 1000.0) as i64))
        .map_err(|error| ApiError::invalid(format!("{error}.")))?;
    service::schema::settle_all(&state).await?;
    state.index.release_due();
    Ok(Json(
        json!({ "now": state.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true) }),
    )
    .into_response())
}

/// `ok` while the store and indexer threads run and every index is usable; otherwise `503`
/// with the reasons, so a container runtime (and a developer) sees why requests fail.
async fn health(State(state): State<AppState>) -> Response {
    let mut problems = Vec::new();
    if !state.store.is_alive() {
        problems.push("the store thread has stopped".to_string());
    }
    if !state.index.is_alive() {
        problems.push("the indexer thread has stopped".to_string());
    }
    problems.extend(
        state
            .index
            .failures()
            .into_iter()
            .map(|failure| format!("index {failure}")),
    );
    if problems.is_empty() {
        return Json(json!({ "status": "ok" })).into_response();
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "unhealthy", "problems": problems })),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct ResetQuery {
    tenant: Option<String>,
}

/// Empties all state, or one tenant's with `?tenant=`.
async fn reset(
    State(state): State<AppState>,
    Query(query): Query<ResetQuery>,
) -> Result<Response, ApiError> {
    let tenant = query
        .tenant
        .map(|raw| TenantId::parse(&raw).map_err(|violation| ApiError::invalid(violation.message)))
        .transpose()?;
    // The index and the principal cache are reset by the store's post-commit effect, on the
    // store thread, so no write can land between the two resets (nor be skipped if the client
    // goes away).
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
    state
        .store
        .reset(tenant, Some(effect))
        .await
        .map_err(service::Error::from)?;
    state.index.flush().await.map_err(service::Error::from)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /_emulator/token`: a bearer token for a directory user (by id or UPN) or an application.
async fn token(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let text = |name: &str| {
        body.get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    let list = |name: &str| -> Vec<String> {
        match body.get(name) {
            Some(serde_json::Value::Array(values)) => values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(serde_json::Value::String(joined)) => {
                joined.split_whitespace().map(str::to_string).collect()
            }
            _ => Vec::new(),
        }
    };
    if let Some(unknown) = body
        .keys()
        .find(|k| !["tenant", "user", "app", "roles", "scopes"].contains(&k.as_str()))
    {
        return Err(ApiError::invalid(format!(
            "'{unknown}' is not a member of a token request (tenant, user, app, roles, scopes)."
        )));
    }
    let tenant = match text("tenant") {
        Some(raw) => {
            TenantId::parse(&raw).map_err(|violation| ApiError::invalid(violation.message))?
        }
        None => TenantId::default_tenant(),
    };
    let mut request = crate::auth::TokenRequest {
        tenant: Some(tenant.as_str().to_string()),
        app_id: text("app"),
        roles: list("roles"),
        scopes: list("scopes"),
        ..Default::default()
    };
    // An app token for a declared application carries the roles granted to it, unless the
    // request names roles itself.
    if let (Some(app_id), None, false) = (
        request.app_id.as_deref(),
        text("user"),
        body.contains_key("roles"),
    ) {
        if let Some(app) = service::applications::find(&state, &tenant, app_id).await? {
            request.roles = app.roles;
        }
    }
    if let Some(user) = text("user") {
        let Some(found) = service::access::find_user(&state, &tenant, &user).await? else {
            return Err(ApiError::not_found("User").with_target(user));
        };
        request.user_id = Some(found.id.as_str().to_string());
        request.user_principal_name = Some(found.user_principal_name);
    }
    let access_token = crate::auth::mint(&request, state.clock.now());
    Ok(Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": crate::auth::TOKEN_LIFETIME_SECONDS,
    }))
    .into_response())
}
