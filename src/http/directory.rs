//! The Entra directory subset of Graph: `/users`, `/groups` and `members/$ref`, per tenant.
//! Errors use the directory's own codes (`Request_ResourceNotFound`, `Request_BadRequest`).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::error::{ApiError, ErrorCode};
use super::extract::{GraphRequest, JsonObject, Members};
use super::odata::QueryOptions;
use super::openapi::wire;
use super::paging;
use crate::domain::directory::{
    DirectoryGroup, DirectoryObject, DirectoryUser, GroupId, UserId, UserType,
};
use crate::service;
use crate::state::AppState;

const USER_TYPE: &str = "microsoft.graph.user";
const GROUP_TYPE: &str = "microsoft.graph.group";
const USER_MEMBERS: &[&str] = &[
    "id",
    "userPrincipalName",
    "displayName",
    "userType",
    "accountEnabled",
    "mailNickname",
    "passwordProfile",
    "mail",
    "givenName",
    "surname",
    "jobTitle",
    "department",
    "usageLocation",
];
const GROUP_MEMBERS: &[&str] = &[
    "id",
    "displayName",
    "description",
    "mailNickname",
    "mailEnabled",
    "securityEnabled",
    "groupTypes",
    "visibility",
    "members@odata.bind",
    "owners@odata.bind",
];

fn directory(error: service::Error) -> ApiError {
    ApiError::from_directory(error)
}

#[utoipa::path(
    post, path = "/users", tag = "directory", operation_id = "createUser",
    request_body = wire::UserCreate,
    responses((status = 201, description = "Created.", body = wire::User))
)]
pub async fn create_user(
    State(state): State<AppState>,
    graph: GraphRequest,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let user = read_user(&body)?;
    let user = service::directory::create_user(&state, &graph.caller, user)
        .await
        .map_err(directory)?;
    Ok((
        StatusCode::CREATED,
        Json(Value::Object(user_json(&graph, &user, true))),
    )
        .into_response())
}

/// Reads a `POST /users` body (also a user of a fixtures document); without an `id`, one is generated.
pub(super) fn read_user(body: &Map<String, Value>) -> Result<DirectoryUser, ApiError> {
    let members = Members::new(body, USER_TYPE);
    members.allow_only(USER_MEMBERS)?;
    let required = |name: &str| -> Result<String, ApiError> {
        match members.string(name)? {
            Some(Some(value)) if !value.trim().is_empty() => Ok(value),
            _ => Err(ApiError::new(
                ErrorCode::RequestBadRequest,
                format!("Property '{name}' is required when creating the object."),
            )
            .with_target(name)),
        }
    };
    let user_principal_name = required("userPrincipalName")?;
    if !user_principal_name.contains('@') {
        return Err(ApiError::new(
            ErrorCode::RequestBadRequest,
            "Property userPrincipalName is invalid: it must look like name@domain.",
        )
        .with_target("userPrincipalName"));
    }
    let display_name = required("displayName")?;
    let user_type = match members.string("userType")?.flatten() {
        None => UserType::Member,
        Some(raw) => UserType::parse(&raw).ok_or_else(|| {
            ApiError::new(
                ErrorCode::RequestBadRequest,
                format!("Invalid value '{raw}' for userType: use Member or Guest."),
            )
            .with_target("userType")
        })?,
    };
    let account_enabled = match members.get("accountEnabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(enabled)) => *enabled,
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::RequestBadRequest,
                format!(
                    "Invalid value for accountEnabled: expected a Boolean, not {}.",
                    super::extract::json_kind(other)
                ),
            )
            .with_target("accountEnabled"))
        }
    };
    let password =
        match members.object("passwordProfile")?.flatten() {
            None => None,
            Some(profile) => match profile.get("password") {
                None | Some(Value::Null) => None,
                Some(Value::String(password)) if !password.is_empty() && password.len() <= 256 => {
                    Some(password.clone())
                }
                Some(_) => return Err(ApiError::new(
                    ErrorCode::RequestBadRequest,
                    "Invalid value for passwordProfile.password: a string of 1 to 256 characters.",
                )
                .with_target("passwordProfile.password")),
            },
        };
    let id = match members.string("id")?.flatten() {
        Some(raw) => UserId::parse(&raw).map_err(|violation| directory(violation.into()))?,
        None => UserId::parse(&uuid::Uuid::new_v4().to_string()).expect("a UUID is a user id"),
    };
    Ok(DirectoryUser {
        id,
        user_principal_name,
        display_name,
        user_type,
        account_enabled,
        password,
    })
}

#[utoipa::path(
    get, path = "/users", tag = "directory", operation_id = "listUsers",
    params(
        ("$top" = Option<u32>, Query, description = "Entries per page: 1 to 999, 100 by default; `@odata.nextLink` leads to the next page."),
        ("$skiptoken" = Option<String>, Query, description = "Opaque: as `@odata.nextLink` carries it.")),
    responses((status = 200, description = "The tenant's users.", body = wire::UserCollection))
)]
pub async fn list_users(
    State(state): State<AppState>,
    graph: GraphRequest,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (page, scope) = directory_page(&graph, query.as_deref(), "users")?;
    let users = service::directory::list_users(&state, &graph.caller)
        .await
        .map_err(directory)?;
    let value: Vec<Value> = page
        .window(&users)
        .iter()
        .map(|user| Value::Object(user_json(&graph, user, false)))
        .collect();
    Ok(Json(collection(
        &graph,
        "users",
        "users",
        query.as_deref(),
        &scope,
        page,
        users.len(),
        value,
    ))
    .into_response())
}

#[utoipa::path(
    get, path = "/users/{user_id}", tag = "directory", operation_id = "getUser",
    params(
        ("user_id" = String, Path, description = "The user id or userPrincipalName.")),
    responses((status = 200, description = "The user.", body = wire::User))
)]
pub async fn get_user(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path(user_id): Path<String>,
) -> Result<Response, ApiError> {
    let user = service::directory::get_user(&state, &graph.caller, &user_id)
        .await
        .map_err(directory)?;
    Ok(Json(Value::Object(user_json(&graph, &user, true))).into_response())
}

#[utoipa::path(
    delete, path = "/users/{user_id}", tag = "directory", operation_id = "deleteUser",
    params(
        ("user_id" = String, Path, description = "The user id or userPrincipalName.")),
    responses((status = 204, description = "Deleted."))
)]
pub async fn delete_user(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path(user_id): Path<String>,
) -> Result<Response, ApiError> {
    service::directory::delete_user(&state, &graph.caller, &user_id)
        .await
        .map_err(directory)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    post, path = "/groups", tag = "directory", operation_id = "createGroup",
    request_body = wire::GroupCreate,
    responses((status = 201, description = "Created.", body = wire::Group))
)]
pub async fn create_group(
    State(state): State<AppState>,
    graph: GraphRequest,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let group = read_group(&body)?;
    let group = service::directory::create_group(&state, &graph.caller, group)
        .await
        .map_err(directory)?;
    Ok((
        StatusCode::CREATED,
        Json(Value::Object(group_json(&graph, &group, true))),
    )
        .into_response())
}

/// Reads a `POST /groups` body (also a group of a fixtures document); without an `id`, one is generated.
pub(super) fn read_group(body: &Map<String, Value>) -> Result<DirectoryGroup, ApiError> {
    let members = Members::new(body, GROUP_TYPE);
    members.allow_only(GROUP_MEMBERS)?;
    let display_name = match members.string("displayName")? {
        Some(Some(name)) if !name.trim().is_empty() => name,
        _ => {
            return Err(ApiError::new(
                ErrorCode::RequestBadRequest,
                "Property 'displayName' is required when creating the object.",
            )
            .with_target("displayName"))
        }
    };
    let id = match members.string("id")?.flatten() {
        Some(raw) => GroupId::parse(&raw).map_err(|violation| directory(violation.into()))?,
        None => GroupId::parse(&uuid::Uuid::new_v4().to_string()).expect("a UUID is a group id"),
    };
    Ok(DirectoryGroup {
        id,
        display_name,
        description: members.string("description")?.flatten(),
        mail_nickname: members.string("mailNickname")?.flatten(),
    })
}

#[utoipa::path(
    get, path = "/groups", tag = "directory", operation_id = "listGroups",
    params(
        ("$top" = Option<u32>, Query, description = "Entries per page: 1 to 999, 100 by default; `@odata.nextLink` leads to the next page."),
        ("$skiptoken" = Option<String>, Query, description = "Opaque: as `@odata.nextLink` carries it.")),
    responses((status = 200, description = "The tenant's groups.", body = wire::GroupCollection))
)]
pub async fn list_groups(
    State(state): State<AppState>,
    graph: GraphRequest,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (page, scope) = directory_page(&graph, query.as_deref(), "groups")?;
    let groups = service::directory::list_groups(&state, &graph.caller)
        .await
        .map_err(directory)?;
    let value: Vec<Value> = page
        .window(&groups)
        .iter()
        .map(|group| Value::Object(group_json(&graph, group, false)))
        .collect();
    Ok(Json(collection(
        &graph,
        "groups",
        "groups",
        query.as_deref(),
        &scope,
        page,
        groups.len(),
        value,
    ))
    .into_response())
}

#[utoipa::path(
    get, path = "/groups/{group_id}", tag = "directory", operation_id = "getGroup",
    params(
        ("group_id" = String, Path, description = "The directory group id.")),
    responses((status = 200, description = "The group.", body = wire::Group))
)]
pub async fn get_group(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path(group_id): Path<String>,
) -> Result<Response, ApiError> {
    let group = service::directory::get_group(&state, &graph.caller, &group_id)
        .await
        .map_err(directory)?;
    Ok(Json(Value::Object(group_json(&graph, &group, true))).into_response())
}

#[utoipa::path(
    delete, path = "/groups/{group_id}", tag = "directory", operation_id = "deleteGroup",
    params(
        ("group_id" = String, Path, description = "The directory group id.")),
    responses((status = 204, description = "Deleted."))
)]
pub async fn delete_group(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path(group_id): Path<String>,
) -> Result<Response, ApiError> {
    service::directory::delete_group(&state, &graph.caller, &group_id)
        .await
        .map_err(directory)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /groups/{id}/members/$ref` with `{"@odata.id": ".../directoryObjects/{memberId}"}`: `204`.
#[utoipa::path(
    post, path = "/groups/{group_id}/members/$ref", tag = "directory", operation_id = "addGroupMember",
    params(
        ("group_id" = String, Path, description = "The directory group id.")),
    request_body = wire::DirectoryReference,
    responses((status = 204, description = "Added."))
)]
pub async fn add_member(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path(group_id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let reference = body
        .get("@odata.id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let member_id = reference
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let member_id = member_id
        .trim_start_matches("directoryObjects('")
        .trim_end_matches("')");
    if member_id.is_empty() {
        return Err(ApiError::new(
            ErrorCode::RequestBadRequest,
            "The body must be {\"@odata.id\": \"https://graph.microsoft.com/v1.0/directoryObjects/{id}\"}.",
        ));
    }
    service::directory::add_member(&state, &graph.caller, &group_id, member_id)
        .await
        .map_err(directory)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /groups/{id}/members/{memberId}/$ref`: `204`.
#[utoipa::path(
    delete, path = "/groups/{group_id}/members/{member_id}/$ref", tag = "directory", operation_id = "removeGroupMember",
    params(
        ("group_id" = String, Path, description = "The directory group id."),
        ("member_id" = String, Path, description = "The member id.")),
    responses((status = 204, description = "Removed."))
)]
pub async fn remove_member(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path((group_id, member_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    service::directory::remove_member(&state, &graph.caller, &group_id, &member_id)
        .await
        .map_err(directory)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    get, path = "/groups/{group_id}/members", tag = "directory", operation_id = "listGroupMembers",
    params(
        ("group_id" = String, Path, description = "The directory group id."),
        ("$top" = Option<u32>, Query, description = "Entries per page: 1 to 999, 100 by default; `@odata.nextLink` leads to the next page."),
        ("$skiptoken" = Option<String>, Query, description = "Opaque: as `@odata.nextLink` carries it.")),
    responses((status = 200, description = "The group's direct members, users and groups.", body = wire::DirectoryObjectCollection))
)]
pub async fn list_members(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path(group_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (page, scope) = directory_page(
        &graph,
        query.as_deref(),
        &format!("groups/{}/members", group_id.to_ascii_lowercase()),
    )?;
    let members = service::directory::members(&state, &graph.caller, &group_id)
        .await
        .map_err(directory)?;
    let value: Vec<Value> = page
        .window(&members)
        .iter()
        .map(|member| {
            let (odata_type, mut body) = match member {
                DirectoryObject::User(user) => {
                    ("#microsoft.graph.user", user_json(&graph, user, false))
                }
                DirectoryObject::Group(group) => {
                    ("#microsoft.graph.group", group_json(&graph, group, false))
                }
            };
            body.insert("@odata.type".into(), json!(odata_type));
            Value::Object(body)
        })
        .collect();
    let relative = format!("groups/{}/members", paging::segment(&group_id));
    Ok(Json(collection(
        &graph,
        "directoryObjects",
        &relative,
        query.as_deref(),
        &scope,
        page,
        members.len(),
        value,
    ))
    .into_response())
}

/// A directory collection's page (`$skip` is refused, as Graph refuses it; `$select` and
/// `$filter` are not served on directory lists and are ignored).
fn directory_page(
    graph: &GraphRequest,
    query: Option<&str>,
    collection: &str,
) -> Result<(paging::Page, String), ApiError> {
    let options = QueryOptions::parse(query)?;
    if options.skip {
        return Err(ApiError::new(
            ErrorCode::RequestBadRequest,
            "'$skip' is not supported by the service.",
        ));
    }
    let scope = format!("{}/{collection}", graph.caller.tenant.as_str());
    let page = paging::DIRECTORY.page(options.top, options.skiptoken.as_deref(), &scope)?;
    Ok((page, scope))
}

#[allow(clippy::too_many_arguments)]
fn collection(
    graph: &GraphRequest,
    context: &str,
    relative: &str,
    query: Option<&str>,
    scope: &str,
    page: paging::Page,
    total: usize,
    value: Vec<Value>,
) -> Value {
    let mut body = graph.body_with_context(context);
    paging::finish(graph, relative, query, scope, page, total, value, &mut body);
    Value::Object(body)
}

fn user_json(graph: &GraphRequest, user: &DirectoryUser, with_context: bool) -> Map<String, Value> {
    let mut body = if with_context {
        graph.body_with_context("users/$entity")
    } else {
        Map::new()
    };
    body.extend(user_properties(user));
    body
}

/// A user's properties as Graph shows them by default (no annotations).
pub(super) fn user_properties(user: &DirectoryUser) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("id".into(), json!(user.id.as_str()));
    body.insert("userPrincipalName".into(), json!(user.user_principal_name));
    body.insert("displayName".into(), json!(user.display_name));
    body.insert("userType".into(), json!(user.user_type.as_str()));
    body
}

fn group_json(
    graph: &GraphRequest,
    group: &DirectoryGroup,
    with_context: bool,
) -> Map<String, Value> {
    let mut body = if with_context {
        graph.body_with_context("groups/$entity")
    } else {
        Map::new()
    };
    body.insert("id".into(), json!(group.id.as_str()));
    body.insert("displayName".into(), json!(group.display_name));
    body.insert("description".into(), json!(group.description));
    body.insert("mailNickname".into(), json!(group.mail_nickname));
    body
}
