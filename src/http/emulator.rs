//! The control plane under `/_emulator` (never under `/v1.0` or `/beta`): health and reset.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use crate::domain::ids::TenantId;
use crate::service;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/reset", post(reset))
}

async fn health() -> Response {
    Json(json!({ "status": "ok" })).into_response()
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
    state
        .store
        .reset(tenant)
        .await
        .map_err(service::Error::from)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
