//! `/external/connections`: create, list, get, update, delete (spec/connections.md),
//! and the externalConnection's wire representation.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::extract::{ApiVersion, GraphRequest, JsonObject, Members};
use super::odata::QueryOptions;
use super::openapi::wire;
use super::paging;
use crate::domain::connection::{
    ConnectionFields, ConnectionState, CONTENT_CATEGORIES, CONTENT_EXPERIENCES,
};
use crate::domain::ids::ConnectionId;
use crate::service;
use crate::service::connections::ConnectionView;
use crate::state::AppState;

pub const TYPE_NAME: &str = "microsoft.graph.externalConnectors.externalConnection";

const V1_PROPERTIES: &[&str] = &[
    "id",
    "name",
    "description",
    "state",
    "configuration",
    "connectorId",
    "contentCategory",
    "activitySettings",
    "searchSettings",
];
const BETA_PROPERTIES: &[&str] = &[
    "id",
    "name",
    "description",
    "state",
    "configuration",
    "connectorId",
    "contentCategory",
    "activitySettings",
    "searchSettings",
    "enabledContentExperiences",
    "complianceSettings",
    "ingestedItemsCount",
];

fn declared_properties(version: ApiVersion) -> &'static [&'static str] {
    match version {
        ApiVersion::V1 => V1_PROPERTIES,
        ApiVersion::Beta => BETA_PROPERTIES,
    }
}

#[utoipa::path(
    post, path = "/external/connections", tag = "connections", operation_id = "createConnection",
    request_body = wire::ExternalConnectionCreate,
    responses((status = 201, description = "Created, `state: draft`; the creating app is added to `authorizedAppIds`.", body = wire::ExternalConnection,
            headers(("Location" = String, description = "Absolute URL of the new resource, built from the request's scheme, host and version."))))
)]
pub async fn create(
    State(state): State<AppState>,
    graph: GraphRequest,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let (id, fields) = read_connection(&body, graph.version)?;
    let connection = service::connections::create(&state, &graph.caller, &id, fields).await?;
    let location = format!("{}/external/connections/{}", graph.base_url, connection.id);
    let view = service::connections::ConnectionView {
        connection,
        n_items: 0,
    };
    let body = connection_json(&graph, &view, "external/connections/$entity");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(Value::Object(body)),
    )
        .into_response())
}

#[utoipa::path(
    get, path = "/external/connections", tag = "connections", operation_id = "listConnections",
    params(
        ("$top" = Option<u32>, Query, description = "Entries per page (100 by default); `@odata.nextLink` leads to the next page."),
        ("$skiptoken" = Option<String>, Query, description = "Opaque: as `@odata.nextLink` carries it."),
        ("$select" = Option<String>, Query, description = "Comma-separated members to answer (`%24select` also works)."),
        ("$filter" = Option<String>, Query, description = "`property eq 'value'` conditions joined by `and`.")),
    responses((status = 200, description = "The tenant's connections the caller may see.", body = wire::ExternalConnectionCollection))
)]
pub async fn list(
    State(state): State<AppState>,
    graph: GraphRequest,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let options = QueryOptions::parse(query.as_deref())?;
    options.check_properties(declared_properties(graph.version), TYPE_NAME)?;
    let scope = format!("{}/connections", graph.caller.tenant.as_str());
    let page = paging::CONNECTIONS.page(options.top, options.skiptoken.as_deref(), &scope)?;
    let connections = service::connections::list(&state, &graph.caller).await?;
    let matching: Vec<Map<String, Value>> = connections
        .iter()
        .map(|view| connection_properties(graph.version, view))
        .filter(|entity| options.matches(entity))
        .collect();
    let value: Vec<Value> = page
        .window(&matching)
        .iter()
        .map(|entity| Value::Object(options.project(entity.clone())))
        .collect();
    let mut body = graph.body_with_context("external/connections");
    paging::finish(
        &graph,
        "external/connections",
        query.as_deref(),
        &scope,
        page,
        matching.len(),
        value,
        &mut body,
    );
    Ok(Json(Value::Object(body)).into_response())
}

#[utoipa::path(
    get, path = "/external/connections/{connection_id}", tag = "connections", operation_id = "getConnection",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case)."),
        ("$select" = Option<String>, Query, description = "Comma-separated members to answer (`%24select` also works).")),
    responses((status = 200, description = "The connection.", body = wire::ExternalConnection))
)]
pub async fn get(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path(connection_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let options = QueryOptions::parse(query.as_deref())?;
    options.check_properties(declared_properties(graph.version), TYPE_NAME)?;
    let connection =
        service::connections::get(&state, &graph.caller, &ConnectionId::lookup(&connection_id))
            .await?;
    let body = connection_json(&graph, &connection, "external/connections/$entity");
    Ok(Json(Value::Object(options.project(body))).into_response())
}

#[utoipa::path(
    patch, path = "/external/connections/{connection_id}", tag = "connections", operation_id = "updateConnection",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case).")),
    request_body = wire::ExternalConnectionUpdate,
    responses((status = 204, description = "Updated."))
)]
pub async fn update(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path(connection_id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let members = Members::new(&body, TYPE_NAME);
    members.allow_only(declared_properties(graph.version))?;
    if let Some(Some(id)) = members.string("id")? {
        if !id.eq_ignore_ascii_case(&connection_id) {
            return Err(ApiError::invalid(format!(
                "The key property 'id' cannot be changed (the body says '{id}', the URL '{connection_id}')."
            ))
            .with_target("id"));
        }
    }
    if let Some(None) = members.string("name")? {
        return Err(
            ApiError::invalid("The connection's 'name' cannot be null.").with_target("name")
        );
    }
    let fields = connection_fields(&members)?;
    service::connections::update(
        &state,
        &graph.caller,
        &ConnectionId::lookup(&connection_id),
        fields,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    delete, path = "/external/connections/{connection_id}", tag = "connections", operation_id = "deleteConnection",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case).")),
    responses((status = 202, description = "Deleted (at once, in gcemu)."))
)]
pub async fn delete(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path(connection_id): Path<String>,
) -> Result<Response, ApiError> {
    service::connections::delete(&state, &graph.caller, &ConnectionId::lookup(&connection_id))
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Reads a create body (also a connection of a fixtures document): the id and the fields.
pub(super) fn read_connection(
    body: &Map<String, Value>,
    version: ApiVersion,
) -> Result<(String, ConnectionFields), ApiError> {
    let members = Members::new(body, TYPE_NAME);
    members.allow_only(declared_properties(version))?;
    let id = match members.string("id")? {
        Some(Some(id)) => id,
        _ => return Err(ApiError::invalid("The connection's 'id' is required.").with_target("id")),
    };
    if matches!(members.string("name")?, None | Some(None)) {
        return Err(ApiError::invalid("The connection's 'name' is required.").with_target("name"));
    }
    Ok((id, connection_fields(&members)?))
}

/// Reads the writable members of a create or update body. `state` and `ingestedItemsCount`
/// are computed by the service and ignored, as OData prescribes for computed properties.
fn connection_fields(members: &Members<'_>) -> Result<ConnectionFields, ApiError> {
    let configuration = match members.object("configuration")? {
        None => None,
        Some(None) => Some(json!({ "authorizedAppIds": [] })),
        Some(Some(configuration)) => Some(configuration),
    };
    let content_category = match members.get("contentCategory") {
        Some(Value::Null) => Some("uncategorized"),
        _ => members.enum_member("contentCategory", CONTENT_CATEGORIES)?,
    };
    Ok(ConnectionFields {
        name: members.string("name")?.flatten(),
        description: members.string("description")?,
        configuration,
        connector_id: members.string("connectorId")?,
        content_category,
        activity_settings: members.object("activitySettings")?,
        search_settings: members.object("searchSettings")?,
        enabled_content_experiences: members
            .enum_collection("enabledContentExperiences", CONTENT_EXPERIENCES)?,
        compliance_settings: members.object("complianceSettings")?,
    })
}

/// The connection's properties as the given API version shows them (no annotations).
pub fn connection_properties(version: ApiVersion, view: &ConnectionView) -> Map<String, Value> {
    let connection = &view.connection;
    let mut body = Map::new();
    body.insert("id".into(), json!(connection.id.as_str()));
    body.insert("name".into(), json!(connection.name));
    body.insert("description".into(), json!(connection.description));
    body.insert("state".into(), json!(connection.state.as_str()));
    body.insert("configuration".into(), connection.configuration.clone());
    body.insert("connectorId".into(), json!(connection.connector_id));
    body.insert("contentCategory".into(), json!(connection.content_category));
    body.insert(
        "activitySettings".into(),
        connection.activity_settings.clone().unwrap_or(Value::Null),
    );
    body.insert(
        "searchSettings".into(),
        connection.search_settings.clone().unwrap_or(Value::Null),
    );
    if version == ApiVersion::Beta {
        body.insert(
            "enabledContentExperiences".into(),
            json!(connection.enabled_content_experiences),
        );
        body.insert(
            "complianceSettings".into(),
            connection
                .compliance_settings
                .clone()
                .unwrap_or(Value::Null),
        );
        // Null while the connection is a draft, as documented. The live service refreshes it about
        // every 15 minutes; gcemu answers the current count.
        let ingested = (connection.state != ConnectionState::Draft).then_some(view.n_items);
        body.insert("ingestedItemsCount".into(), json!(ingested));
    }
    body
}

fn connection_json(
    graph: &GraphRequest,
    view: &ConnectionView,
    context: &str,
) -> Map<String, Value> {
    let mut body = graph.body_with_context(context);
    body.extend(connection_properties(graph.version, view));
    body
}
