//! `.../groups` (external groups) and `.../groups/{id}/members` (spec/groups-and-acl.md).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::extract::{ApiVersion, GraphRequest, JsonObject, Members};
use super::openapi::wire;
use crate::domain::directory::ExternalMemberType;
use crate::domain::ids::ConnectionId;
use crate::service;
use crate::state::AppState;
use crate::store::groups::ExternalGroup;

const GROUP_TYPE: &str = "microsoft.graph.externalConnectors.externalGroup";
const IDENTITY_TYPE: &str = "microsoft.graph.externalConnectors.identity";

#[utoipa::path(
    post, path = "/external/connections/{connection_id}/groups", tag = "external groups", operation_id = "createExternalGroup",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case).")),
    request_body = wire::ExternalGroupCreate,
    responses((status = 201, description = "Created.", body = wire::ExternalGroup))
)]
pub async fn create(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path(connection_id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let group = read_group(&body)?;
    let connection_id = ConnectionId::lookup(&connection_id);
    let group = service::groups::create(&state, &graph.caller, &connection_id, group).await?;
    Ok((
        StatusCode::CREATED,
        Json(Value::Object(group_json(&graph, &connection_id, &group))),
    )
        .into_response())
}

/// Reads an external group's create body (also a group of a fixtures document).
pub(super) fn read_group(body: &Map<String, Value>) -> Result<ExternalGroup, ApiError> {
    let members = Members::new(body, GROUP_TYPE);
    members.allow_only(&["id", "displayName", "description"])?;
    let id = match members.string("id")? {
        Some(Some(id)) => id,
        _ => return Err(ApiError::invalid("An external group needs an 'id'.").with_target("id")),
    };
    Ok(ExternalGroup {
        id,
        display_name: members.string("displayName")?.flatten(),
        description: members.string("description")?.flatten(),
    })
}

#[utoipa::path(
    get, path = "/external/connections/{connection_id}/groups/{group_id}", tag = "external groups", operation_id = "getExternalGroup",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case)."),
        ("group_id" = String, Path, description = "The external group id.")),
    responses((status = 200, description = "The group.", body = wire::ExternalGroup))
)]
pub async fn get(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path((connection_id, group_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let connection_id = ConnectionId::lookup(&connection_id);
    let group = service::groups::get(&state, &graph.caller, &connection_id, &group_id).await?;
    Ok(Json(Value::Object(group_json(&graph, &connection_id, &group))).into_response())
}

#[utoipa::path(
    patch, path = "/external/connections/{connection_id}/groups/{group_id}", tag = "external groups", operation_id = "updateExternalGroup",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case)."),
        ("group_id" = String, Path, description = "The external group id.")),
    request_body = wire::ExternalGroupUpdate,
    responses((status = 204, description = "Updated."))
)]
pub async fn update(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path((connection_id, group_id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let members = Members::new(&body, GROUP_TYPE);
    members.allow_only(&["id", "displayName", "description"])?;
    if let Some(Some(id)) = members.string("id")? {
        if id != group_id {
            return Err(ApiError::invalid(format!(
                "The key property 'id' cannot be changed (the body says '{id}')."
            ))
            .with_target("id"));
        }
    }
    let connection_id = ConnectionId::lookup(&connection_id);
    service::groups::update(
        &state,
        &graph.caller,
        &connection_id,
        &group_id,
        members.string("displayName")?,
        members.string("description")?,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    delete, path = "/external/connections/{connection_id}/groups/{group_id}", tag = "external groups", operation_id = "deleteExternalGroup",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case)."),
        ("group_id" = String, Path, description = "The external group id.")),
    responses((status = 204, description = "Deleted with its member list."))
)]
pub async fn delete(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path((connection_id, group_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    service::groups::delete(
        &state,
        &graph.caller,
        &ConnectionId::lookup(&connection_id),
        &group_id,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST .../members` with `{"id", "type": user|group|externalGroup}`; on beta the older form
/// `{"type": "group", "identitySource": "external"}` means an external group.
#[utoipa::path(
    post, path = "/external/connections/{connection_id}/groups/{group_id}/members", tag = "external groups", operation_id = "addExternalGroupMember",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case)."),
        ("group_id" = String, Path, description = "The external group id.")),
    request_body = wire::Identity,
    responses((status = 201, description = "Added.", body = wire::IdentityAnswer))
)]
pub async fn add_member(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path((connection_id, group_id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let (id, member_type) = read_member(&body, graph.version)?;
    let connection_id = ConnectionId::lookup(&connection_id);
    service::groups::add_member(
        &state,
        &graph.caller,
        &connection_id,
        &group_id,
        &id,
        member_type,
    )
    .await?;
    let mut body = graph.body_with_context(&format!(
        "external/connections('{connection_id}')/groups('{group_id}')/members/$entity"
    ));
    body.insert("id".into(), json!(id));
    body.insert("type".into(), json!(member_type.as_str()));
    Ok((StatusCode::CREATED, Json(Value::Object(body))).into_response())
}

/// Reads a member body `{"id", "type"}` (also a member in a fixtures document); on beta the
/// older form `{"type": "group", "identitySource": "external"}` means an external group.
pub(super) fn read_member(
    body: &Map<String, Value>,
    version: ApiVersion,
) -> Result<(String, ExternalMemberType), ApiError> {
    let members = Members::new(body, IDENTITY_TYPE);
    let declared: &[&str] = match version {
        ApiVersion::V1 => &["id", "type"],
        ApiVersion::Beta => &["id", "type", "identitySource"],
    };
    members.allow_only(declared).or_else(|error| {
        // The 2021 beta type name of members.
        if body
            .get("@odata.type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.ends_with("externalGroupMember"))
        {
            Ok(())
        } else {
            Err(error)
        }
    })?;
    let id = match members.string("id")? {
        Some(Some(id)) if !id.trim().is_empty() => id,
        _ => return Err(ApiError::invalid("A member needs an 'id'.").with_target("id")),
    };
    let raw_type = match members.string("type")? {
        Some(Some(raw)) => raw,
        _ => {
            return Err(
                ApiError::invalid("A member needs a 'type': user, group or externalGroup.")
                    .with_target("type"),
            )
        }
    };
    let mut member_type = ExternalMemberType::parse(&raw_type).ok_or_else(|| {
        ApiError::invalid(format!(
            "'{raw_type}' is not a member type; use user, group or externalGroup."
        ))
        .with_target("type")
    })?;
    if let Some(Some(source)) = members.string("identitySource")? {
        if source.eq_ignore_ascii_case("external") {
            if member_type != ExternalMemberType::Group {
                return Err(ApiError::invalid("identitySource 'external' is only valid with type 'group' (an external group).").with_target("identitySource"));
            }
            member_type = ExternalMemberType::ExternalGroup;
        } else if !source.eq_ignore_ascii_case("azureActiveDirectory") {
            return Err(ApiError::invalid(format!(
                "'{source}' is not an identitySource; use azureActiveDirectory or external."
            ))
            .with_target("identitySource"));
        }
    }
    Ok((id, member_type))
}

#[utoipa::path(
    delete, path = "/external/connections/{connection_id}/groups/{group_id}/members/{member_id}", tag = "external groups", operation_id = "removeExternalGroupMember",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case)."),
        ("group_id" = String, Path, description = "The external group id."),
        ("member_id" = String, Path, description = "The member id.")),
    responses((status = 204, description = "Removed."))
)]
pub async fn remove_member(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path((connection_id, group_id, member_id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    service::groups::remove_member(
        &state,
        &graph.caller,
        &ConnectionId::lookup(&connection_id),
        &group_id,
        &member_id,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn group_json(
    graph: &GraphRequest,
    connection_id: &ConnectionId,
    group: &ExternalGroup,
) -> Map<String, Value> {
    let mut body = graph.body_with_context(&format!(
        "external/connections('{connection_id}')/groups/$entity"
    ));
    body.insert("id".into(), json!(group.id));
    body.insert("displayName".into(), json!(group.display_name));
    body.insert("description".into(), json!(group.description));
    body
}
