//! `/_emulator/applications`: declaring the applications (client ids, secrets, certificates,
//! granted permissions) that the token endpoint and strict mode know, besides fixtures.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::JsonObject;
use super::openapi::wire;
use crate::domain::application::Application;
use crate::domain::ids::TenantId;
use crate::service;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub(super) struct TenantQuery {
    tenant: Option<String>,
}

fn application_json(tenant: &TenantId, app: &Application) -> Value {
    json!({
        "tenant": tenant.as_str(),
        "appId": app.app_id,
        "displayName": app.display_name,
        "secrets": app.secrets,
        "roles": app.roles,
        "scopes": app.scopes,
        "certificates": app.certificates,
    })
}

/// `GET /_emulator/applications?tenant=`: the declared applications and the default one.
#[utoipa::path(
    get, path = "/applications", tag = "control plane", operation_id = "listApplications",
    params(("tenant" = Option<String>, Query, description = "Tenant (default tenant when absent).")),
    responses((status = 200, description = "The tenant's applications, the default application included unless an application with its id is declared.", body = wire::ApplicationList))
)]
pub(super) async fn list(
    State(state): State<AppState>,
    Query(query): Query<TenantQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = super::emulator::tenant_for_token(&state, &headers, query.tenant)?;
    let mut apps = service::applications::list(&state, &tenant).await?;
    let default = Application::default_app();
    if !apps
        .iter()
        .any(|app| app.app_id.eq_ignore_ascii_case(&default.app_id))
    {
        apps.insert(0, default);
    }
    let value: Vec<Value> = apps
        .iter()
        .map(|app| application_json(&tenant, app))
        .collect();
    Ok(Json(json!({ "value": value })).into_response())
}

/// `POST /_emulator/applications`: declares (or replaces) an application.
#[utoipa::path(
    post, path = "/applications", tag = "control plane", operation_id = "declareApplication",
    request_body = wire::ApplicationDeclaration,
    responses((status = 201, description = "The application as declared.", body = wire::ApplicationDeclaration))
)]
pub(super) async fn declare(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonObject(mut body): JsonObject,
) -> Result<Response, ApiError> {
    let raw = match body.remove("tenant") {
        None | Some(Value::Null) => None,
        Some(Value::String(raw)) => Some(raw),
        Some(_) => {
            return Err(ApiError::invalid("'tenant' must be a string.").with_target("tenant"))
        }
    };
    let tenant = super::emulator::tenant_for_token(&state, &headers, raw)?;
    let app = super::fixtures::read_application_body(&Value::Object(body))?;
    service::applications::declare(&state, &tenant, app.clone()).await?;
    Ok((StatusCode::CREATED, Json(application_json(&tenant, &app))).into_response())
}

/// `DELETE /_emulator/applications/{app_id}?tenant=`.
#[utoipa::path(
    delete, path = "/applications/{app_id}", tag = "control plane", operation_id = "removeApplication",
    params(
        ("app_id" = String, Path, description = "The application (client) id."),
        ("tenant" = Option<String>, Query, description = "Tenant (default tenant when absent)."),
    ),
    responses((status = 204, description = "Removed; the default application's own settings come back if it was its id."))
)]
pub(super) async fn remove(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    Query(query): Query<TenantQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = super::emulator::tenant_for_token(&state, &headers, query.tenant)?;
    service::applications::remove(&state, &tenant, &app_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
