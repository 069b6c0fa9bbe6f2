//! The web console's read endpoints under `/_emulator`: tenants, a tenant's overview, items
//! page by page with their ACL resolved, the group graph, and the "hidden from this person"
//! list. The logic lives in `service::control::inspect` and `service::search::hidden`; every
//! answer is about the tenant of `?tenant=` (or of the bearer token), never another one.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::emulator::tenant_for_token;
use super::error::ApiError;
use super::extract::{ApiVersion, JsonObject};
use super::openapi::wire;
use crate::domain::ids::{ConnectionId, ItemId};
use crate::service;
use crate::service::control::inspect::{self, Named, MAX_PAGE_SIZE};
use crate::state::AppState;

/// Items a console page holds by default.
const DEFAULT_PAGE_SIZE: usize = 25;
/// Hidden items listed by default, and at most.
const DEFAULT_HIDDEN: usize = 50;
const MAX_HIDDEN: usize = 200;

#[derive(Debug, Deserialize)]
pub(super) struct TenantQuery {
    tenant: Option<String>,
}

/// `GET /_emulator/tenants`
#[utoipa::path(
    get, path = "/tenants", tag = "console", operation_id = "listTenants",
    responses((status = 200, description = "Every tenant that holds something, the default tenant first.", body = wire::TenantList))
)]
pub(super) async fn tenants(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    // A bearer token sees its own tenant only.
    let own = super::emulator::token_tenant(&state, &headers, None)?;
    let tenants = inspect::tenants(&state).await?;
    let value: Vec<Value> = tenants
        .iter()
        .filter(|t| own.as_ref().is_none_or(|own| *own == t.tenant))
        .map(|t| {
            json!({
                "id": t.tenant.as_str(),
                "users": t.users,
                "groups": t.groups,
                "connections": t.connections,
                "items": t.items,
            })
        })
        .collect();
    Ok(Json(json!({ "value": value })).into_response())
}

/// `GET /_emulator/overview?tenant=`
#[utoipa::path(
    get, path = "/overview", tag = "console", operation_id = "getTenantOverview",
    params(("tenant" = Option<String>, Query, description = "A tenant id (the default tenant when absent).")),
    responses((status = 200, description = "The tenant's directory, connections, schemas, operations and counts.", body = wire::TenantOverview))
)]
pub(super) async fn overview(
    State(state): State<AppState>,
    Query(query): Query<TenantQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = tenant_for_token(&state, &headers, query.tenant)?;
    let overview = inspect::overview(&state, &tenant).await?;
    let users: Vec<Value> = overview
        .users
        .iter()
        .map(|user| {
            let mut body = super::directory::user_properties(user);
            body.insert("accountEnabled".into(), json!(user.account_enabled));
            Value::Object(body)
        })
        .collect();
    let groups: Vec<Value> = overview
        .groups
        .iter()
        .map(|group| {
            json!({
                "id": group.id.as_str(),
                "displayName": group.display_name,
                "description": group.description,
            })
        })
        .collect();
    let connections: Vec<Value> = overview
        .connections
        .iter()
        .map(|view| {
            let connection = &view.connection;
            json!({
                "id": connection.id.as_str(),
                "name": connection.name,
                "description": connection.description,
                "state": connection.state.as_str(),
                "itemCount": view.item_count,
                "itemsRemaining": view.items_remaining,
                "schema": view.schema.as_ref().map(|schema| json!({
                    "baseType": crate::domain::schema::BASE_TYPE,
                    "properties": super::schema::schema_properties(schema, ApiVersion::Beta, true),
                })),
                "operations": view.operations.iter().map(|operation| json!({
                    "id": operation.id.as_str(),
                    "status": operation.status.as_str(),
                    "createdDateTime": instant(operation.created_at),
                    "error": operation.error.as_ref().map(|error| json!({
                        "code": error.code,
                        "message": error.message,
                        "target": error.target,
                    })),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({
        "tenant": tenant.as_str(),
        "users": users,
        "groups": groups,
        "connections": connections,
    }))
    .into_response())
}

fn instant(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[derive(Debug, Deserialize)]
pub(super) struct ItemsQuery {
    tenant: Option<String>,
    filter: Option<String>,
    top: Option<String>,
    skip: Option<String>,
}

/// A whole-number query parameter within `0..=max` (`default` when absent).
fn count(
    raw: Option<String>,
    name: &str,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, ApiError> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    match raw.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::invalid(format!(
            "?{name}= must be a whole number from {min} to {max}, not '{}'.",
            crate::domain::excerpt(&raw, 40)
        ))
        .with_target(name.to_string())),
    }
}

/// The first characters of an item's content, for the items table.
fn preview(item: &crate::domain::item::ExternalItem) -> String {
    item.content
        .as_ref()
        .map(|content| crate::domain::excerpt(&content.value, 160).into_owned())
        .unwrap_or_default()
}

/// `GET /_emulator/connections/{id}/items?tenant=&filter=&top=&skip=`
#[utoipa::path(
    get, path = "/connections/{connection_id}/items", tag = "console", operation_id = "listItemsForConsole",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case)."),
        ("tenant" = Option<String>, Query, description = "A tenant id (the default tenant when absent)."),
        ("filter" = Option<String>, Query, description = "Only items whose id or a property value contains this text (ASCII letters without regard to case)."),
        ("top" = Option<u32>, Query, description = "Items per page: 1 to 200 (25 when absent)."),
        ("skip" = Option<u32>, Query, description = "Items to skip (in id order).")),
    responses((status = 200, description = "A page of the connection's items in id order.", body = wire::ConsoleItemsPage))
)]
pub(super) async fn items(
    State(state): State<AppState>,
    Path(connection_id): Path<String>,
    Query(query): Query<ItemsQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = tenant_for_token(&state, &headers, query.tenant)?;
    let top = count(query.top, "top", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)?;
    let skip = count(query.skip, "skip", 0, 0, i64::MAX as usize)?;
    let page = inspect::items(
        &state,
        &tenant,
        &ConnectionId::lookup(&connection_id),
        query.filter,
        skip,
        top,
    )
    .await?;
    let value: Vec<Value> = page
        .items
        .iter()
        .map(|item| {
            json!({
                "id": item.id.as_str(),
                "properties": item.properties,
                "aclEntries": item.acl.len(),
                "contentPreview": preview(item),
            })
        })
        .collect();
    Ok(Json(json!({
        "value": value,
        "total": page.total,
        "skip": skip,
        "top": top,
    }))
    .into_response())
}

fn direct_members(n: usize) -> String {
    match n {
        1 => "1 direct member".to_string(),
        n => format!("{n} direct members"),
    }
}

/// Who an ACL entry names, as the console shows it.
fn resolved_json(named: &Named, value: &str) -> Value {
    match named {
        Named::User(Some(user)) => json!({
            "kind": "user",
            "found": true,
            "displayName": user.display_name,
            "userPrincipalName": user.user_principal_name,
            "description": format!("the user {} ({})", user.display_name, user.user_principal_name),
        }),
        Named::User(None) => json!({
            "kind": "user",
            "found": false,
            "displayName": null,
            "description": format!("no user '{value}' in this tenant's directory: the entry matches no one"),
        }),
        Named::Group(Some(group), members) => json!({
            "kind": "group",
            "found": true,
            "displayName": group.display_name,
            "members": members,
            "description": format!("the directory group {} ({}, and their members in turn)", group.display_name, direct_members(*members)),
        }),
        Named::Group(None, _) => json!({
            "kind": "group",
            "found": false,
            "displayName": null,
            "members": 0,
            "description": format!("no directory group '{value}' in this tenant: the entry matches no one"),
        }),
        Named::ExternalGroup(Some(name), members) => json!({
            "kind": "externalGroup",
            "found": true,
            "displayName": name,
            "members": members,
            "description": format!("the connection's external group {} ({}, and their members in turn)", name.as_deref().unwrap_or(value), direct_members(*members)),
        }),
        Named::ExternalGroup(None, _) => json!({
            "kind": "externalGroup",
            "found": false,
            "displayName": null,
            "members": 0,
            "description": format!("no external group '{value}' in this connection: the entry matches no one"),
        }),
        Named::Everyone => json!({
            "kind": "everyone",
            "found": true,
            "displayName": "Everyone",
            "description": "every user of the tenant, guests included",
        }),
        Named::EveryoneExceptGuests => json!({
            "kind": "everyoneExceptGuests",
            "found": true,
            "displayName": "Everyone except guests",
            "description": "every member user of the tenant (userType Member)",
        }),
    }
}

/// `GET /_emulator/connections/{id}/items/{itemId}?tenant=`
#[utoipa::path(
    get, path = "/connections/{connection_id}/items/{item_id}", tag = "console", operation_id = "getItemForConsole",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case)."),
        ("item_id" = String, Path, description = "The item id."),
        ("tenant" = Option<String>, Query, description = "A tenant id (the default tenant when absent).")),
    responses((status = 200, description = "The item, each ACL entry resolved to who it names.", body = wire::ConsoleItem))
)]
pub(super) async fn item(
    State(state): State<AppState>,
    Path((connection_id, item_id)): Path<(String, String)>,
    Query(query): Query<TenantQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = tenant_for_token(&state, &headers, query.tenant)?;
    let item_id = ItemId::parse(&item_id).map_err(|_| ApiError::not_found("Item"))?;
    let detail = inspect::item(
        &state,
        &tenant,
        &ConnectionId::lookup(&connection_id),
        &item_id,
    )
    .await?;
    let mut body = super::items::item_properties(ApiVersion::Beta, &detail.item);
    let acl: Vec<Value> = detail
        .acl
        .iter()
        .map(|resolved| {
            let mut entry = match super::items::acl_json(
                ApiVersion::Beta,
                std::slice::from_ref(&resolved.entry),
            ) {
                Value::Array(mut entries) => entries.pop().unwrap_or(Value::Null),
                other => other,
            };
            entry["resolved"] = resolved_json(&resolved.named, &resolved.entry.value);
            entry
        })
        .collect();
    body.insert("acl".into(), Value::Array(acl));
    Ok(Json(Value::Object(body)).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct GroupsQuery {
    tenant: Option<String>,
    user: Option<String>,
}

/// `GET /_emulator/groups?tenant=&user=`
#[utoipa::path(
    get, path = "/groups", tag = "console", operation_id = "getGroupGraph",
    params(
        ("tenant" = Option<String>, Query, description = "A tenant id (the default tenant when absent)."),
        ("user" = Option<String>, Query, description = "A user (userPrincipalName or id): the answer then has the chain that puts them in each of their groups.")),
    responses((status = 200, description = "Directory and external groups with their members, the cycles among them, and a user's chains.", body = wire::GroupGraph))
)]
pub(super) async fn groups(
    State(state): State<AppState>,
    Query(query): Query<GroupsQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = tenant_for_token(&state, &headers, query.tenant)?;
    let user = query.user.filter(|user| !user.is_empty());
    let graph = inspect::groups(&state, &tenant, user.as_deref()).await?;
    let node_id = |position: usize| {
        let node = &graph.nodes[position];
        match &node.connection_id {
            None => format!("group:{}", node.group_id),
            Some(connection) => format!("externalGroup:{connection}/{}", node.group_id),
        }
    };
    let nodes: Vec<Value> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(position, node)| {
            json!({
                "id": node_id(position),
                "kind": if node.connection_id.is_some() { "externalGroup" } else { "group" },
                "groupId": node.group_id,
                "connectionId": node.connection_id.as_ref().map(|c| c.as_str()),
                "displayName": node.display_name,
                "members": node.members.iter().map(|member| json!({
                    "kind": member.kind.as_str(),
                    "id": member.id,
                    "displayName": member.display_name,
                    "node": member.node.map(node_id),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let cycles: Vec<Vec<String>> = graph
        .cycles
        .iter()
        .map(|cycle| cycle.iter().map(|n| node_id(*n)).collect())
        .collect();
    let chains: Vec<Value> = graph
        .chains
        .iter()
        .map(|chain| {
            json!({
                "node": node_id(chain.node),
                "connectionId": graph.nodes[chain.node].connection_id.as_ref().map(|c| c.as_str()),
                "via": chain.via.map(node_id),
                "path": chain.path,
            })
        })
        .collect();
    Ok(Json(json!({
        "nodes": nodes,
        "cycles": cycles,
        "chains": chains,
        "chainsTruncated": graph.chains_truncated,
    }))
    .into_response())
}

/// `POST /_emulator/search/hidden?tenant=`
#[utoipa::path(
    post, path = "/search/hidden", tag = "console", operation_id = "listHiddenItems",
    params(("tenant" = Option<String>, Query, description = "A tenant id (the default tenant when absent).")),
    request_body(content = wire::HiddenItemsRequest, description = "Whose view, and the query."),
    responses((status = 200, description = "Items the query matches that the user may not see, each with the reason.", body = wire::HiddenItems))
)]
pub(super) async fn hidden(
    State(state): State<AppState>,
    Query(query): Query<TenantQuery>,
    headers: axum::http::HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let tenant = tenant_for_token(&state, &headers, query.tenant)?;
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        match body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(ApiError::invalid(format!("'{name}' must be a string."))
                .with_target(name.to_string())),
        }
    };
    let Some(user) = text("user")?.filter(|user| !user.is_empty()) else {
        return Err(
            ApiError::invalid("Name the user: {\"user\": \"<userPrincipalName or id>\"}.")
                .with_target("user".to_string()),
        );
    };
    let Some(query_string) = text("queryString")? else {
        return Err(
            ApiError::invalid("Send the query: {\"queryString\": \"...\"}.")
                .with_target("queryString".to_string()),
        );
    };
    let connection_ids = match body.get("connectionIds") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ids)) if ids.len() <= super::search::MAX_CONTENT_SOURCES => ids
            .iter()
            .map(|id| {
                id.as_str().map(ConnectionId::lookup).ok_or_else(|| {
                    ApiError::invalid("'connectionIds' must be an array of connection ids.")
                        .with_target("connectionIds".to_string())
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "'connectionIds' must be an array of at most {} connection ids.",
                super::search::MAX_CONTENT_SOURCES
            ))
            .with_target("connectionIds".to_string()))
        }
    };
    let size = match body.get("size") {
        None | Some(Value::Null) => DEFAULT_HIDDEN,
        Some(value) => match value.as_u64() {
            Some(n) if (1..=MAX_HIDDEN as u64).contains(&n) => n as usize,
            _ => {
                return Err(ApiError::invalid(format!(
                    "'size' must be a whole number from 1 to {MAX_HIDDEN}."
                ))
                .with_target("size".to_string()))
            }
        },
    };
    let unknown: Vec<&String> = body
        .keys()
        .filter(|name| !["user", "queryString", "connectionIds", "size"].contains(&name.as_str()))
        .collect();
    if let Some(name) = unknown.first() {
        return Err(ApiError::invalid(format!(
            "Unknown member '{name}': send user, queryString, connectionIds and size."
        ))
        .with_target((*name).clone()));
    }
    let (total, hidden) =
        service::search::hidden(&state, &tenant, &user, &query_string, connection_ids, size)
            .await?;
    let value: Vec<Value> = hidden
        .iter()
        .map(|item| {
            json!({
                "connectionId": item.connection_id.as_str(),
                "itemId": item.item_id,
                "title": item.title,
                "reason": item.reason,
            })
        })
        .collect();
    let mut answer = Map::new();
    answer.insert("value".into(), Value::Array(value));
    answer.insert("total".into(), json!(total));
    Ok(Json(Value::Object(answer)).into_response())
}
