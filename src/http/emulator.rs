//! The control plane under `/_emulator` (never under `/v1.0` or `/beta`): health, reset, clock.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::extract::JsonObject;
use crate::domain::ids::TenantId;
use crate::service;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/reset", post(reset))
        .route("/clock", get(clock))
        .route("/clock/advance", post(advance_clock))
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
        .advance(chrono::Duration::milliseconds((seconds * 1000.0) as i64));
    service::schema::settle_all(&state).await?;
    Ok(Json(
        json!({ "now": state.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true) }),
    )
    .into_response())
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
