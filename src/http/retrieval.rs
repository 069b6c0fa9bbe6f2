//! `POST /copilot/retrieval` (v1.0 and beta) for `dataSource: externalItem`
//! (spec/batch-and-retrieval.md §2).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{GraphRequest, JsonObject, Members};
use super::openapi::wire;
use crate::domain::ids::ConnectionId;
use crate::domain::retrieval::{MAX_QUERY_CHARS, MAX_RESULTS};
use crate::service;
use crate::service::retrieval::RetrievalRequest;
use crate::state::AppState;

const REQUEST_TYPE: &str = "microsoft.graph.retrievalRequest";
const MEMBERS: &[&str] = &[
    "queryString",
    "dataSource",
    "dataSourceConfiguration",
    "filterExpression",
    "resourceMetadata",
    "maximumNumberOfResults",
];
const DATA_SOURCES: &[&str] = &["sharePoint", "oneDriveBusiness", "externalItem"];

#[utoipa::path(
    post, path = "/copilot/retrieval", tag = "retrieval", operation_id = "retrieve",
    request_body = wire::RetrievalRequest,
    responses((status = 200, description = "The best passages of the items the user may see (app-only tokens get `403`).", body = wire::RetrievalResponse))
)]
pub async fn retrieve(
    State(state): State<AppState>,
    graph: GraphRequest,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let request = read_request(&body)?;
    let hits = service::retrieval::retrieve(&state, &graph.caller, request).await?;
    let hits: Vec<Value> = hits
        .into_iter()
        .map(|hit| {
            let mut body = serde_json::Map::new();
            body.insert("webUrl".into(), json!(hit.web_url));
            body.insert(
                "extracts".into(),
                Value::Array(
                    hit.extracts
                        .iter()
                        .map(|e| json!({"text": e.text, "relevanceScore": e.relevance_score}))
                        .collect(),
                ),
            );
            body.insert("resourceType".into(), json!("externalItem"));
            body.insert(
                "resourceMetadata".into(),
                Value::Object(hit.resource_metadata),
            );
            body.insert(
                "sensitivityLabel".into(),
                match hit.sensitivity_label_id {
                    Some(id) => json!({ "sensitivityLabelId": id }),
                    None => Value::Null,
                },
            );
            Value::Object(body)
        })
        .collect();
    let mut body = graph.body_with_context("microsoft.graph.retrievalResponse");
    body.insert("retrievalHits".into(), Value::Array(hits));
    Ok(Json(Value::Object(body)).into_response())
}

fn read_request(body: &serde_json::Map<String, Value>) -> Result<RetrievalRequest, ApiError> {
    let members = Members::new(body, REQUEST_TYPE);
    members.allow_only(MEMBERS)?;
    let query_string = match members.string("queryString")? {
        Some(Some(query)) if !query.trim().is_empty() => query,
        _ => {
            return Err(ApiError::invalid(
                "queryString is required: the question to retrieve passages for.",
            )
            .with_target("queryString"))
        }
    };
    let n_chars = query_string.chars().count();
    if n_chars > MAX_QUERY_CHARS {
        return Err(ApiError::invalid(format!(
            "queryString can have at most {MAX_QUERY_CHARS} characters; it has {n_chars}."
        ))
        .with_target("queryString"));
    }
    match members.enum_member("dataSource", DATA_SOURCES)? {
        Some("externalItem") => {}
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "dataSource '{other}' is not emulated: gcemu emulates Copilot connector content only; use dataSource 'externalItem'."
            ))
            .with_target("dataSource"))
        }
        None => {
            return Err(ApiError::invalid(
                "dataSource is required: sharePoint, oneDriveBusiness or externalItem.",
            )
            .with_target("dataSource"))
        }
    }
    let connection_ids = match members.object("dataSourceConfiguration")? {
        None | Some(None) => None,
        Some(Some(configuration)) => connections(&configuration)?,
    };
    let maximum_number_of_results = match members.get("maximumNumberOfResults") {
        None | Some(Value::Null) => MAX_RESULTS,
        Some(value) => match value.as_u64() {
            Some(n) if (1..=MAX_RESULTS as u64).contains(&n) => n as usize,
            _ => {
                return Err(ApiError::invalid(format!(
                "maximumNumberOfResults must be an integer from 1 to {MAX_RESULTS}, not {value}."
            ))
                .with_target("maximumNumberOfResults"))
            }
        },
    };
    Ok(RetrievalRequest {
        query_string,
        connection_ids,
        filter_expression: members.string("filterExpression")?.flatten(),
        resource_metadata: members.strings("resourceMetadata")?.unwrap_or_default(),
        maximum_number_of_results,
    })
}

/// `{"externalItem": {"connections": [{"connectionId": "..."}]}}`: the connections to search.
fn connections(configuration: &Value) -> Result<Option<Vec<ConnectionId>>, ApiError> {
    let target = "dataSourceConfiguration.externalItem.connections";
    let Some(external) = configuration.get("externalItem") else {
        return Ok(None);
    };
    let Some(connections) = external.get("connections") else {
        return Ok(None);
    };
    let Value::Array(connections) = connections else {
        return Err(ApiError::invalid(format!(
            "{target} must be a list of {{\"connectionId\": \"...\"}} objects."
        ))
        .with_target(target));
    };
    if connections.len() > super::search::MAX_CONTENT_SOURCES {
        return Err(ApiError::invalid(format!(
            "{target} can name at most {} connections; it names {}.",
            super::search::MAX_CONTENT_SOURCES,
            connections.len()
        ))
        .with_target(target));
    }
    let mut ids: Vec<ConnectionId> = Vec::with_capacity(connections.len());
    for (index, connection) in connections.iter().enumerate() {
        let Some(id) = connection.get("connectionId").and_then(Value::as_str) else {
            return Err(ApiError::invalid(format!(
                "{target}[{index}] needs a connectionId (a string)."
            ))
            .with_target(format!("{target}[{index}].connectionId")));
        };
        let id = ConnectionId::lookup(id);
        if !ids
            .iter()
            .any(|known| known.as_str().eq_ignore_ascii_case(id.as_str()))
        {
            ids.push(id);
        }
    }
    Ok(Some(ids))
}
