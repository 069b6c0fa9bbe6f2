//! The control plane under `/_emulator` (never under `/v1.0` or `/beta`): health, reset, clock,
//! tokens, fixtures, the explain endpoint, the request journal and fault rules. The logic lives
//! in `service::control`; these handlers read requests and render answers.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::extract::{json_kind, ApiVersion, JsonObject};
use super::openapi::wire;
use crate::domain::ids::TenantId;
use crate::domain::ids::{ConnectionId, ItemId};
use crate::service;
use crate::service::control::faults::{Rule, RuleSpec};
use crate::service::control::journal::{Entry, Filter};
use crate::service::control::TokenInput;
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(health))
        .routes(routes!(reset))
        .routes(routes!(clock))
        .routes(routes!(advance_clock))
        .routes(routes!(token))
        .routes(routes!(
            super::applications::list,
            super::applications::declare
        ))
        .routes(routes!(super::applications::remove))
        .routes(routes!(super::identity::ca_certificate))
        .routes(routes!(super::fixtures::load, super::fixtures::export))
        .routes(routes!(explain_access))
        .routes(routes!(requests, clear_requests))
        .routes(routes!(list_faults, add_fault, clear_faults))
        .routes(routes!(delete_fault))
        .routes(routes!(report))
        .routes(routes!(super::openapi::document))
        .routes(routes!(super::inspect::tenants))
        .routes(routes!(super::inspect::overview))
        .routes(routes!(super::inspect::items))
        .routes(routes!(super::inspect::item))
        .routes(routes!(super::inspect::groups))
        .routes(routes!(super::inspect::hidden))
        .routes(routes!(super::console::redirect))
        .routes(routes!(super::console::page))
        .routes(routes!(super::console::file))
}

const TOKEN_MEMBERS: &[&str] = &[
    "tenant",
    "user",
    "app",
    "roles",
    "scopes",
    "audience",
    "lifetimeSeconds",
];
/// A year: the longest lifetime a minted token may have.
const MAX_TOKEN_LIFETIME_SECONDS: i64 = 366 * 24 * 3600;

/// The tenant a control-plane request acts on: `?tenant=` (default tenant when absent); with a
/// bearer token, the token's tenant, and another `?tenant=` is refused, so that a token of one
/// tenant never reads, changes or explains another tenant's data.
pub(super) fn tenant_for_token(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    raw: Option<String>,
) -> Result<TenantId, ApiError> {
    match token_tenant(state, headers, raw.as_deref())? {
        Some(tenant) => Ok(tenant),
        None => tenant_of(raw),
    }
}

/// The tenant of the request's bearer token, if it carries one (a `raw` tenant naming another
/// one is refused with `403`).
pub(super) fn token_tenant(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    raw: Option<&str>,
) -> Result<Option<TenantId>, ApiError> {
    let Some(authorization) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
    else {
        return Ok(None);
    };
    let caller = crate::auth::authenticate(
        state.config.auth,
        &state.identity.key,
        state.clock.now(),
        Some(authorization),
    )
    .map_err(|failure| {
        ApiError::new(
            super::error::ErrorCode::InvalidAuthenticationToken,
            failure.message(),
        )
    })?;
    match raw {
        Some(raw) if TenantId::parse(raw).ok().as_ref() != Some(&caller.tenant) => {
            Err(ApiError::new(
                super::error::ErrorCode::Forbidden,
                format!(
                    "The bearer token belongs to tenant '{}'; it cannot act on tenant '{raw}'. Send no token to use the control plane as an administrator.",
                    caller.tenant
                ),
            ))
        }
        _ => Ok(Some(caller.tenant)),
    }
}

/// The tenant a request names, by bearer token or `?tenant=`; `None` when it names none (reset
/// and the journal then act on every tenant).
fn tenant_if_named(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    raw: Option<String>,
) -> Result<Option<TenantId>, ApiError> {
    match token_tenant(state, headers, raw.as_deref())? {
        Some(tenant) => Ok(Some(tenant)),
        None => raw.map(|raw| tenant_of(Some(raw))).transpose(),
    }
}

/// A `?tenant=` value, or the default tenant.
fn tenant_of(raw: Option<String>) -> Result<TenantId, ApiError> {
    match raw {
        Some(raw) => {
            TenantId::parse(&raw).map_err(|violation| ApiError::invalid(violation.message))
        }
        None => Ok(TenantId::default_tenant()),
    }
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
#[utoipa::path(
    get, path = "/connections/{connection_id}/items/{item_id}/access", tag = "control plane", operation_id = "explainAccess",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case)."),
        ("item_id" = String, Path, description = "The item id."),
        ("user" = String, Query, description = "The user: userPrincipalName or id."),
        ("tenant" = Option<String>, Query, description = "A tenant id (the default tenant when absent)."),
        ("query" = Option<String>, Query, description = "A Copilot Retrieval question: the answer then says which passages the item would yield.")),
    responses((status = 200, description = "Whether the user may see the item, and why.", body = wire::AccessExplanation))
)]
async fn explain_access(
    State(state): State<AppState>,
    Path((connection_id, item_id)): Path<(String, String)>,
    Query(query): Query<AccessQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let Some(user) = query.user.filter(|user| !user.is_empty()) else {
        return Err(ApiError::invalid(
            "Name the user: ?user=<userPrincipalName or id>.",
        ));
    };
    let tenant = tenant_for_token(&state, &headers, query.tenant)?;
    let item_id = ItemId::parse(&item_id).map_err(|_| ApiError::not_found("Item"))?;
    let explanation = service::control::explain_access(
        &state,
        &tenant,
        &ConnectionId::lookup(&connection_id),
        &item_id,
        &user,
        query.query,
    )
    .await?;
    let mut body = json!({
        "allowed": explanation.allowed,
        "matchedEntries": super::items::acl_json(ApiVersion::Beta, &explanation.matched_entries),
        "reason": explanation.reason,
        "paths": explanation.paths,
    });
    let tried: Vec<Value> = explanation
        .result_templates
        .iter()
        .map(|template| {
            json!({
                "id": template.id,
                "priority": template.priority,
                "chosen": template.chosen,
                "rules": template.rules.iter().map(|rule| json!({
                    "property": rule.property,
                    "operation": rule.operation.as_str(),
                    "values": rule.values,
                    "valuesJoinedBy": match rule.joined_by {
                        crate::domain::result_template::JoinedBy::Or => "or",
                        crate::domain::result_template::JoinedBy::And => "and",
                    },
                    "itemValue": rule.actual,
                    "holds": rule.holds,
                    "reason": rule.reason,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    body["resultTemplate"] = json!({
        "id": explanation.result_templates.iter().find(|t| t.chosen).map(|t| t.id.clone()),
        "tried": tried,
    });
    if let Some(retrieval) = explanation.retrieval {
        body["retrieval"] = json!({
            "queryWords": retrieval.query_words,
            "passages": retrieval.passages,
            "extracts": retrieval.extracts.iter().map(|e| json!({"text": e.text, "relevanceScore": e.relevance_score})).collect::<Vec<_>>(),
        });
    }
    Ok(Json(body).into_response())
}

fn instant(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[utoipa::path(
    get, path = "/clock", tag = "control plane", operation_id = "getClock",
    responses((status = 200, description = "The emulator clock.", body = wire::Clock))
)]
async fn clock(State(state): State<AppState>) -> Response {
    Json(json!({ "now": instant(state.clock.now()) })).into_response()
}

/// Moves the emulator's clock forward by `{"seconds": N}` and settles what came due.
#[utoipa::path(
    post, path = "/clock/advance", tag = "control plane", operation_id = "advanceClock",
    request_body = wire::ClockAdvance,
    responses((status = 200, description = "The clock after the move; operations that came due are settled.", body = wire::Clock))
)]
async fn advance_clock(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let by = service::control::seconds(body.get("seconds")).ok_or_else(|| {
        ApiError::invalid("The body must be {\"seconds\": N} with N a non-negative number.")
    })?;
    let now = service::control::advance_clock(&state, by)
        .await
        .map_err(|error| match error {
            service::Error::Invalid(violation) => {
                ApiError::invalid(format!("{}.", violation.message))
            }
            other => ApiError::from(other),
        })?;
    Ok(Json(json!({ "now": instant(now) })).into_response())
}

/// `ok` while the store and indexer threads run and every index is usable; otherwise `503`
/// with the reasons, so a container runtime (and a developer) sees why requests fail.
#[utoipa::path(
    get, path = "/health", tag = "control plane", operation_id = "health",
    responses(
        (status = 200, description = "`{\"status\": \"ok\"}` once ready.", body = wire::Health),
        (status = 503, description = "`unhealthy`, with the reasons.", body = wire::Health)
    )
)]
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
struct TenantQuery {
    tenant: Option<String>,
}

/// Empties all state, or one tenant's with `?tenant=`.
#[utoipa::path(
    post, path = "/reset", tag = "control plane", operation_id = "reset",
    params(
        ("tenant" = Option<String>, Query, description = "Empty only this tenant.")),
    responses((status = 204, description = "All state (or the tenant's) emptied."))
)]
async fn reset(
    State(state): State<AppState>,
    Query(query): Query<TenantQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    // With a bearer token, only the token's tenant is reset.
    let tenant = tenant_if_named(&state, &headers, query.tenant)?;
    service::control::reset(&state, tenant).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /_emulator/token`: a bearer token for a directory user (by id or UPN) or an application.
#[utoipa::path(
    post, path = "/token", tag = "control plane", operation_id = "mintToken",
    request_body = wire::TokenRequest,
    responses((status = 200, description = "A bearer token: an RS256 JWT signed with gcemu's key, which strict mode accepts too.", body = wire::TokenResponse))
)]
async fn token(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let text = |name: &str| {
        body.get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    let list = |name: &str| -> Option<Vec<String>> {
        match body.get(name) {
            Some(serde_json::Value::Array(values)) => Some(
                values
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            ),
            Some(serde_json::Value::String(joined)) => {
                Some(joined.split_whitespace().map(str::to_string).collect())
            }
            _ => None,
        }
    };
    if let Some(unknown) = body.keys().find(|k| !TOKEN_MEMBERS.contains(&k.as_str())) {
        return Err(ApiError::invalid(format!(
            "'{unknown}' is not a member of a token request ({}).",
            TOKEN_MEMBERS.join(", ")
        ))
        .with_target(unknown.clone()));
    }
    let lifetime_seconds = match body.get("lifetimeSeconds") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_i64() {
            Some(seconds)
                if (-MAX_TOKEN_LIFETIME_SECONDS..=MAX_TOKEN_LIFETIME_SECONDS).contains(&seconds) =>
            {
                Some(seconds)
            }
            _ => {
                return Err(ApiError::invalid(format!(
                    "'lifetimeSeconds' must be a whole number of seconds between -{MAX_TOKEN_LIFETIME_SECONDS} and {MAX_TOKEN_LIFETIME_SECONDS}."
                ))
                .with_target("lifetimeSeconds"))
            }
        },
    };
    let input = TokenInput {
        tenant: tenant_for_token(&state, &headers, text("tenant"))?,
        user: text("user"),
        app: text("app"),
        roles: list("roles"),
        scopes: list("scopes").unwrap_or_default(),
        audience: text("audience"),
        lifetime_seconds,
    };
    let user = input.user.clone();
    let access_token =
        service::control::mint_token(&state, input)
            .await
            .map_err(|error| match (error, user) {
                (service::Error::NotFound { .. }, Some(user)) => {
                    ApiError::not_found("User").with_target(user)
                }
                (other, _) => ApiError::from(other),
            })?;
    Ok(Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": lifetime_seconds.unwrap_or(crate::identity::tokens::TOKEN_LIFETIME_SECONDS).max(0),
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestsQuery {
    tenant: Option<String>,
    after: Option<String>,
    method: Option<String>,
    path_prefix: Option<String>,
    status: Option<String>,
    client_request_id: Option<String>,
}

fn entry_json(entry: &Entry) -> Value {
    let mut body = Map::new();
    body.insert("sequence".into(), json!(entry.sequence));
    body.insert("time".into(), json!(instant(entry.time)));
    body.insert("method".into(), json!(entry.method));
    body.insert("path".into(), json!(entry.path));
    body.insert("status".into(), json!(entry.status));
    body.insert("durationMs".into(), json!(entry.duration_ms));
    body.insert("tenant".into(), json!(entry.tenant));
    body.insert("caller".into(), json!(entry.caller));
    body.insert("clientRequestId".into(), json!(entry.client_request_id));
    body.insert("requestBytes".into(), json!(entry.request_bytes));
    let optional = [
        ("errorCode", entry.error_code.as_ref().map(|v| json!(v))),
        (
            "errorMessage",
            entry.error_message.as_ref().map(|v| json!(v)),
        ),
        (
            "retryAfterSeconds",
            entry.retry_after_seconds.map(|v| json!(v)),
        ),
        ("fault", entry.fault.as_ref().map(|v| json!(v))),
        ("throttled", entry.throttled.then(|| json!(true))),
        ("batch", entry.batch.as_ref().map(|v| json!(v))),
        ("proxiedHost", entry.proxied_host.as_ref().map(|v| json!(v))),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            body.insert(name.into(), value);
        }
    }
    Value::Object(body)
}

/// `GET /_emulator/requests`: the journal, oldest first, filtered.
#[utoipa::path(
    get, path = "/requests", tag = "control plane", operation_id = "listRequests",
    params(
        ("method" = Option<String>, Query, description = "Only this method."),
        ("pathPrefix" = Option<String>, Query, description = "Only paths starting with this (version included)."),
        ("status" = Option<u16>, Query, description = "Only this status."),
        ("clientRequestId" = Option<String>, Query, description = "Only this client-request-id."),
        ("tenant" = Option<String>, Query, description = "Only this tenant's requests (with a bearer token: only the token's tenant's)."),
        ("after" = Option<u64>, Query, description = "Only entries whose sequence is greater (to poll for new entries).")),
    responses((status = 200, description = "The request journal, oldest first.", body = wire::RequestJournal))
)]
async fn requests(
    State(state): State<AppState>,
    Query(query): Query<RequestsQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = tenant_if_named(&state, &headers, query.tenant)?;
    let after = query
        .after
        .map(|raw| {
            raw.parse::<u64>().map_err(|_| {
                ApiError::invalid(format!(
                    "?after= must be a journal sequence number, not '{}'.",
                    crate::domain::excerpt(&raw, 40)
                ))
            })
        })
        .transpose()?;
    let status = query
        .status
        .map(|raw| {
            raw.parse::<u16>().map_err(|_| {
                ApiError::invalid(format!("?status= must be an HTTP status, not '{raw}'."))
            })
        })
        .transpose()?;
    let filter = Filter {
        method: query.method,
        path_prefix: query.path_prefix,
        status,
        client_request_id: query.client_request_id,
        tenant: tenant.map(|tenant| tenant.as_str().to_string()),
        after,
    };
    let (entries, dropped) = state.control.journal.entries(&filter);
    Ok(Json(json!({
        "value": entries.iter().map(entry_json).collect::<Vec<_>>(),
        "dropped": dropped,
        "capacity": state.control.journal.capacity(),
    }))
    .into_response())
}

#[utoipa::path(
    delete, path = "/requests", tag = "control plane", operation_id = "clearRequests",
    params(("tenant" = Option<String>, Query, description = "Only this tenant's entries (with a bearer token: only the token's tenant's); all entries when absent.")),
    responses((status = 204, description = "The journal emptied (of the tenant's entries)."))
)]
async fn clear_requests(
    State(state): State<AppState>,
    Query(query): Query<TenantOnly>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = tenant_if_named(&state, &headers, query.tenant)?;
    match tenant {
        Some(tenant) => state.control.journal.clear_tenant(tenant.as_str()),
        None => state.control.journal.clear(),
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
struct TenantOnly {
    tenant: Option<String>,
}

fn rule_json(rule: &Rule) -> Value {
    let spec = &rule.spec;
    let mut body = Map::new();
    body.insert("id".into(), json!(rule.id));
    body.insert("method".into(), json!(spec.method));
    body.insert("path".into(), json!(spec.path));
    body.insert("status".into(), json!(spec.status));
    body.insert("code".into(), json!(spec.code));
    body.insert("message".into(), json!(spec.message));
    body.insert("retryAfterSeconds".into(), json!(spec.retry_after_seconds));
    body.insert("delayMs".into(), json!(spec.delay_ms));
    body.insert("count".into(), json!(spec.count));
    body.insert("probability".into(), json!(spec.probability));
    body.insert("fired".into(), json!(rule.fired));
    body.insert("remaining".into(), json!(rule.remaining));
    Value::Object(body)
}

/// Reads a fault rule body; every member has its JSON kind checked.
fn read_rule(body: &Map<String, Value>) -> Result<RuleSpec, ApiError> {
    const MEMBERS: &[&str] = &[
        "method",
        "path",
        "status",
        "code",
        "message",
        "retryAfterSeconds",
        "delayMs",
        "count",
        "probability",
    ];
    if let Some(unknown) = body.keys().find(|key| !MEMBERS.contains(&key.as_str())) {
        return Err(ApiError::invalid(format!(
            "'{unknown}' is not a member of a fault rule ({}).",
            MEMBERS.join(", ")
        ))
        .with_target(unknown.clone()));
    }
    let wrong = |name: &str, expected: &str, value: &Value| {
        ApiError::invalid(format!(
            "'{name}' must be {expected}, not {}.",
            json_kind(value)
        ))
        .with_target(name.to_string())
    };
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        match body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(wrong(name, "a string", other)),
        }
    };
    let whole = |name: &str| -> Result<Option<u64>, ApiError> {
        match body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_u64()
                .map(Some)
                .ok_or_else(|| wrong(name, "a non-negative integer", value)),
        }
    };
    let probability = match body.get("probability") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_f64()
                .ok_or_else(|| wrong("probability", "a number", value))?,
        ),
    };
    let status = whole("status")?.map(|status| u16::try_from(status).unwrap_or(u16::MAX));
    Ok(RuleSpec {
        method: text("method")?,
        path: text("path")?.ok_or_else(|| {
            ApiError::invalid("A fault rule needs a 'path' pattern, such as /v1.0/external/connections/*/items/*.")
                .with_target("path")
        })?,
        status,
        code: text("code")?,
        message: text("message")?,
        retry_after_seconds: whole("retryAfterSeconds")?,
        delay_ms: whole("delayMs")?,
        count: whole("count")?,
        probability,
    })
}

/// `POST /_emulator/faults`: `201` with the rule and its id.
#[utoipa::path(
    post, path = "/faults", tag = "control plane", operation_id = "addFault",
    request_body = wire::FaultRuleRequest,
    responses((status = 201, description = "The rule, with its id.", body = wire::FaultRule))
)]
async fn add_fault(
    State(state): State<AppState>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let spec = read_rule(&body)?;
    let rule = state.control.faults.add(spec).map_err(|violation| {
        ApiError::invalid(format!("{}.", violation.message)).with_target(violation.target)
    })?;
    Ok((StatusCode::CREATED, Json(rule_json(&rule))).into_response())
}

#[utoipa::path(
    get, path = "/faults", tag = "control plane", operation_id = "listFaults",
    responses((status = 200, description = "Every fault rule, used-up ones included.", body = wire::FaultRuleList))
)]
async fn list_faults(State(state): State<AppState>) -> Response {
    let rules = state.control.faults.list();
    Json(json!({ "value": rules.iter().map(rule_json).collect::<Vec<_>>() })).into_response()
}

#[utoipa::path(
    delete, path = "/faults", tag = "control plane", operation_id = "clearFaults",
    responses((status = 204, description = "Every rule removed."))
)]
async fn clear_faults(State(state): State<AppState>) -> Response {
    state.control.faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

#[utoipa::path(
    delete, path = "/faults/{id}", tag = "control plane", operation_id = "deleteFault",
    params(
        ("id" = String, Path, description = "The rule id.")),
    responses((status = 204, description = "Removed."))
)]
async fn delete_fault(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !state.control.faults.delete(&id) {
        return Err(ApiError::not_found("FaultRule").with_target(id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /_emulator/report[?tenant=T]`: what the connector did that would hurt it against the real
/// service, from the journal and the store (`service::control::report`).
#[utoipa::path(
    get, path = "/report", tag = "control plane", operation_id = "report",
    params(
        ("tenant" = Option<String>, Query, description = "A tenant id (the default tenant when absent).")),
    responses((status = 200, description = "The connector's conformance findings, from the journal and the store.", body = wire::ConnectorReport))
)]
async fn report(
    State(state): State<AppState>,
    Query(query): Query<TenantQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    use service::control::report::{Finding, Samples};
    let tenant = tenant_for_token(&state, &headers, query.tenant)?;
    let report = service::control::report::report(&state, &tenant).await?;
    let samples = |body: &mut Map<String, Value>, name: &str, count: &str, samples: &Samples| {
        body.insert(name.into(), json!(samples.values));
        body.insert(count.into(), json!(samples.total()));
    };
    let finding_json = |finding: &Finding| {
        let mut body = Map::new();
        body.insert("code".into(), json!(finding.code.as_str()));
        body.insert("severity".into(), json!(finding.severity().as_str()));
        body.insert("message".into(), json!(finding.message));
        body.insert("count".into(), json!(finding.count));
        samples(
            &mut body,
            "clientRequestIds",
            "clientRequestIdCount",
            &finding.client_request_ids,
        );
        let optional = [
            ("connectionId", &finding.connection_id),
            ("operationId", &finding.operation_id),
            ("property", &finding.property),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                body.insert(name.into(), json!(value));
            }
        }
        if !finding.item_ids.is_empty() {
            samples(&mut body, "itemIds", "itemIdCount", &finding.item_ids);
        }
        if !finding.principals.is_empty() {
            samples(
                &mut body,
                "principals",
                "principalCount",
                &finding.principals,
            );
        }
        Value::Object(body)
    };
    let summary: Map<String, Value> = report
        .summary
        .iter()
        .map(|(severity, n)| (severity.as_str().to_string(), json!(n)))
        .collect();
    Ok(Json(json!({
        "tenant": report.tenant.as_str(),
        "findings": report.findings.iter().map(finding_json).collect::<Vec<_>>(),
        "findingsOmitted": report.findings_omitted,
        "summary": summary,
        "journal": {"entries": report.journal_entries, "dropped": report.journal_dropped},
        "store": {
            "connections": report.scan.connections,
            "itemsScanned": report.scan.items,
            "itemLimit": service::control::report::MAX_SCANNED_ITEMS,
            "principalsChecked": report.scan.principals,
            "complete": report.scan.complete,
        },
    }))
    .into_response())
}
