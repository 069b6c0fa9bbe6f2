//! `.../schema` (register, update, read) and `.../operations/{id}` (poll), spec/schema.md.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::error::{ApiError, ErrorCode};
use super::extract::{ApiVersion, GraphRequest, JsonObject, Members};
use super::openapi::wire;
use crate::domain::connection::parse_enum_member;
use crate::domain::ids::{ConnectionId, OperationId};
use crate::domain::operation::ConnectionOperation;
use crate::domain::schema::{
    label_is_evolvable, parse_label, Property, PropertyType, Schema, BASE_TYPE, IMPORTANCE_SCORES,
};
use crate::service;
use crate::service::schema::Registration;
use crate::state::AppState;

const SCHEMA_TYPE: &str = "microsoft.graph.externalConnectors.schema";
const PROPERTY_TYPE: &str = "microsoft.graph.externalConnectors.property";
const V1_PROPERTY_MEMBERS: &[&str] = &[
    "name",
    "type",
    "isSearchable",
    "isQueryable",
    "isRetrievable",
    "isRefinable",
    "aliases",
    "labels",
    "description",
];
const BETA_PROPERTY_MEMBERS: &[&str] = &[
    "name",
    "type",
    "isSearchable",
    "isQueryable",
    "isRetrievable",
    "isRefinable",
    "aliases",
    "labels",
    "description",
    "isExactMatchRequired",
    "rankingHint",
];

/// `PATCH .../schema`: `202` with an absolute `Location` of the operation.
#[utoipa::path(
    patch, path = "/external/connections/{connection_id}/schema", tag = "schema", operation_id = "updateSchema",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case).")),
    request_body = wire::SchemaRequest,
    responses((status = 202, description = "The schema operation started.",
            headers(("Location" = String, description = "Absolute URL of the schema operation to poll."))))
)]
pub async fn update(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path(connection_id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let schema = parse_schema(&body, graph.version)?;
    let connection_id = ConnectionId::lookup(&connection_id);
    let operation_id = service::schema::register(
        &state,
        &graph.caller,
        &connection_id,
        schema,
        Registration::Operation,
    )
    .await?;
    Ok(accepted(&graph, &connection_id, &operation_id))
}

/// The legacy `POST .../schema`: `202` + `Location` with `Prefer: respond-async`, else `201` with the schema.
#[utoipa::path(
    post, path = "/external/connections/{connection_id}/schema", tag = "schema", operation_id = "createSchema",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case)."),
        ("Prefer" = Option<String>, Header, description = "`respond-async`: answer `202` with the operation instead of completing at once.")),
    request_body = wire::SchemaRequest,
    responses(
        (status = 201, description = "Registered at once (no `Prefer: respond-async`).", body = wire::Schema),
        (status = 202, description = "With `Prefer: respond-async`: the operation started.",
            headers(("Location" = String, description = "Absolute URL of the schema operation to poll.")))
    )
)]
pub async fn create(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path(connection_id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let schema = parse_schema(&body, graph.version)?;
    let connection_id = ConnectionId::lookup(&connection_id);
    if graph.respond_async {
        let operation_id = service::schema::register(
            &state,
            &graph.caller,
            &connection_id,
            schema,
            Registration::Operation,
        )
        .await?;
        return Ok(accepted(&graph, &connection_id, &operation_id));
    }
    service::schema::register(
        &state,
        &graph.caller,
        &connection_id,
        schema,
        Registration::Synchronous,
    )
    .await?;
    let schema = service::schema::get(&state, &graph.caller, &connection_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(Value::Object(schema_json(&graph, &connection_id, &schema))),
    )
        .into_response())
}

#[utoipa::path(
    get, path = "/external/connections/{connection_id}/schema", tag = "schema", operation_id = "getSchema",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case).")),
    responses((status = 200, description = "The schema last submitted, every attribute explicit.", body = wire::Schema))
)]
pub async fn get(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path(connection_id): Path<String>,
) -> Result<Response, ApiError> {
    let connection_id = ConnectionId::lookup(&connection_id);
    let schema = service::schema::get(&state, &graph.caller, &connection_id).await?;
    Ok(Json(Value::Object(schema_json(&graph, &connection_id, &schema))).into_response())
}

/// The schema navigation property cannot be deleted: the live service answers `404 UnknownError` (evidence 1.3).
#[utoipa::path(
    delete, path = "/external/connections/{connection_id}/schema", tag = "schema", operation_id = "deleteSchema",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case).")),
    responses((status = 404, description = "A schema cannot be deleted: `UnknownError`, as the live service answers.", body = wire::ErrorEnvelope))
)]
pub async fn delete() -> ApiError {
    ApiError::new(
        ErrorCode::UnknownError,
        "The schema of a connection cannot be deleted.",
    )
}

#[utoipa::path(
    get, path = "/external/connections/{connection_id}/operations/{operation_id}", tag = "schema", operation_id = "getOperation",
    params(
        ("connection_id" = String, Path, description = "The connection id (matched without regard to case)."),
        ("operation_id" = String, Path, description = "The operation id, from the schema request's `Location`.")),
    responses((status = 200, description = "The operation: `inprogress`, `completed` or `failed` (with `error`).", body = wire::ConnectionOperation))
)]
pub async fn get_operation(
    State(state): State<AppState>,
    graph: GraphRequest,
    Path((connection_id, operation_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let connection_id = ConnectionId::lookup(&connection_id);
    let operation = service::schema::get_operation(
        &state,
        &graph.caller,
        &connection_id,
        &OperationId::lookup(&operation_id),
    )
    .await?;
    Ok(Json(Value::Object(operation_json(
        &graph,
        &connection_id,
        &operation,
    )))
    .into_response())
}

fn accepted(
    graph: &GraphRequest,
    connection_id: &ConnectionId,
    operation_id: &OperationId,
) -> Response {
    let location = format!(
        "{}/external/connections/{}/operations/{}",
        graph.base_url, connection_id, operation_id
    );
    (StatusCode::ACCEPTED, [(header::LOCATION, location)]).into_response()
}

/// Reads a schema body. Type and label names are accepted in any letter case, Boolean
/// attributes also as the strings "true"/"false"; anything malformed is refused naming the property.
pub fn parse_schema(body: &Map<String, Value>, version: ApiVersion) -> Result<Schema, ApiError> {
    let members = Members::new(body, SCHEMA_TYPE);
    members.allow_only(&["baseType", "properties", "id"])?;
    match members.string("baseType")? {
        Some(Some(base_type))
            if base_type
                .trim_start_matches('#')
                .eq_ignore_ascii_case(BASE_TYPE) => {}
        Some(Some(other)) => {
            return Err(ApiError::invalid(format!(
                "baseType must be '{BASE_TYPE}', not '{other}'."
            ))
            .with_target("baseType"))
        }
        _ => {
            return Err(ApiError::invalid(format!(
                "baseType is required and must be '{BASE_TYPE}'."
            ))
            .with_target("baseType"))
        }
    }
    let properties = match members.get("properties") {
        Some(Value::Array(properties)) => properties,
        Some(Value::Null) | None => {
            return Err(ApiError::invalid(
                "properties is required: a schema has 1 to 128 properties.",
            )
            .with_target("properties"))
        }
        Some(_) => {
            return Err(ApiError::deserialization(
                "properties must be a collection of property objects.",
            )
            .with_target("properties"))
        }
    };
    let declared = match version {
        ApiVersion::V1 => V1_PROPERTY_MEMBERS,
        ApiVersion::Beta => BETA_PROPERTY_MEMBERS,
    };
    let mut parsed = Vec::with_capacity(properties.len());
    for (index, value) in properties.iter().enumerate() {
        parsed.push(parse_property(value, index, declared)?);
    }
    Ok(Schema { properties: parsed })
}

fn parse_property(value: &Value, index: usize, declared: &[&str]) -> Result<Property, ApiError> {
    let target = format!("properties[{index}]");
    let Value::Object(map) = value else {
        return Err(
            ApiError::deserialization(format!("{target} must be a property object."))
                .with_target(target),
        );
    };
    let members = Members::nested(map, PROPERTY_TYPE, target.clone());
    let name = match members.string("name") {
        Ok(Some(Some(name))) => name,
        Ok(_) => {
            return Err(
                ApiError::invalid(format!("{target}: every property needs a name."))
                    .with_target(format!("{target}.name")),
            )
        }
        Err(error) => return Err(error),
    };
    let in_property = |error: ApiError| -> ApiError {
        let detail = error
            .inner
            .as_ref()
            .map(|inner| inner.message.clone())
            .unwrap_or_else(|| error.message.clone());
        ApiError {
            message: format!("Property '{name}': {detail}"),
            inner: None,
            ..error
        }
    };
    members.allow_only(declared).map_err(in_property)?;
    let property_type = match members.string("type").map_err(in_property)? {
        Some(Some(raw)) => PropertyType::parse(&raw).ok_or_else(|| {
            let names: Vec<&str> = PropertyType::ALL.iter().map(|t| t.as_str()).collect();
            ApiError::invalid(format!(
                "Property '{name}': '{raw}' is not a property type; use one of: {}.",
                names.join(", ")
            ))
            .with_target(format!("{target}.type"))
        })?,
        _ => {
            return Err(
                ApiError::invalid(format!("Property '{name}' needs a type."))
                    .with_target(format!("{target}.type")),
            )
        }
    };
    let mut property = Property::new(&name, property_type);
    let flag = |name: &str| -> Result<bool, ApiError> {
        Ok(members
            .boolean(name)
            .map_err(&in_property)?
            .unwrap_or(false))
    };
    property.is_searchable = flag("isSearchable")?;
    property.is_queryable = flag("isQueryable")?;
    property.is_retrievable = flag("isRetrievable")?;
    property.is_refinable = flag("isRefinable")?;
    property.is_exact_match_required = flag("isExactMatchRequired")?;
    property.aliases = members
        .strings("aliases")
        .map_err(in_property)?
        .unwrap_or_default();
    for raw in members
        .strings("labels")
        .map_err(in_property)?
        .unwrap_or_default()
    {
        let label = parse_label(&raw).ok_or_else(|| {
            ApiError::invalid(format!("Property '{name}': '{raw}' is not a label."))
                .with_target(format!("{target}.labels"))
        })?;
        property.labels.push(label);
    }
    property.description = members
        .string("description")
        .map_err(in_property)?
        .flatten();
    if let Some(ranking_hint) = members
        .object("rankingHint")
        .map_err(in_property)?
        .flatten()
    {
        let score = ranking_hint
            .get("importanceScore")
            .and_then(Value::as_str)
            .unwrap_or_default();
        property.importance_score =
            Some(parse_enum_member(IMPORTANCE_SCORES, score).ok_or_else(|| {
                ApiError::invalid(format!(
                    "Property '{name}': rankingHint.importanceScore '{score}' must be one of {}.",
                    IMPORTANCE_SCORES.join(", ")
                ))
                .with_target(format!("{target}.rankingHint"))
            })?);
    }
    Ok(property)
}

/// The schema as Graph answers it: every attribute explicit, enums in camelCase, evolvable
/// members as `unknownFutureValue` unless the client opted in.
pub fn schema_json(
    graph: &GraphRequest,
    connection_id: &ConnectionId,
    schema: &Schema,
) -> Map<String, Value> {
    let mut body = graph.body_with_context(&format!(
        "external/connections('{}')/schema/$entity",
        connection_id
    ));
    body.insert("baseType".into(), json!(BASE_TYPE));
    body.insert(
        "properties".into(),
        Value::Array(schema_properties(
            schema,
            graph.version,
            graph.include_unknown_enum_members,
        )),
    );
    body
}

/// The schema's properties as the version shows them; evolvable enum members appear as
/// `unknownFutureValue` unless the client asked for them by name.
pub fn schema_properties(
    schema: &Schema,
    version: ApiVersion,
    include_unknown_enum_members: bool,
) -> Vec<Value> {
    let evolvable = |name: &'static str, is_evolvable: bool| {
        if is_evolvable && !include_unknown_enum_members {
            "unknownFutureValue"
        } else {
            name
        }
    };
    schema
        .properties
        .iter()
        .map(|property| {
            let mut entry = Map::new();
            entry.insert("name".into(), json!(property.name));
            entry.insert(
                "type".into(),
                json!(evolvable(
                    property.property_type.as_str(),
                    property.property_type.is_evolvable()
                )),
            );
            entry.insert("isSearchable".into(), json!(property.is_searchable));
            entry.insert("isRetrievable".into(), json!(property.is_retrievable));
            entry.insert("isQueryable".into(), json!(property.is_queryable));
            entry.insert("isRefinable".into(), json!(property.is_refinable));
            if version == ApiVersion::Beta {
                entry.insert(
                    "isExactMatchRequired".into(),
                    json!(property.is_exact_match_required),
                );
            }
            entry.insert("aliases".into(), json!(property.aliases));
            let labels: Vec<&str> = property
                .labels
                .iter()
                .map(|label| evolvable(label, label_is_evolvable(label)))
                .collect();
            entry.insert("labels".into(), json!(labels));
            if let Some(description) = &property.description {
                entry.insert("description".into(), json!(description));
            }
            if version == ApiVersion::Beta {
                if let Some(score) = property.importance_score {
                    entry.insert("rankingHint".into(), json!({ "importanceScore": score }));
                }
            }
            Value::Object(entry)
        })
        .collect()
}

fn operation_json(
    graph: &GraphRequest,
    connection_id: &ConnectionId,
    operation: &ConnectionOperation,
) -> Map<String, Value> {
    let mut body = graph.body_with_context(&format!(
        "external/connections('{}')/operations/$entity",
        connection_id
    ));
    body.insert("id".into(), json!(operation.id.as_str()));
    body.insert("status".into(), json!(operation.status.as_str()));
    let error = match &operation.error {
        None => Value::Null,
        Some(error) => json!({
            "code": error.code,
            "message": error.message,
            "target": error.target,
            "details": [],
            "innerError": null,
        }),
    };
    body.insert("error".into(), error);
    body
}
