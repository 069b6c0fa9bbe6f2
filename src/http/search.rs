//! `POST /search/query` (spec/search.md): request validation and the searchResponse shape.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::extract::{GraphRequest, JsonObject, Members};
use super::openapi::wire;
use crate::domain::collapse::CollapseLevel;
use crate::domain::ids::ConnectionId;
use crate::domain::refiner::{Aggregation, BucketRange, BucketSort, MAX_RANGES};
use crate::service;
use crate::service::search::{SearchRequest, DEFAULT_PAGE_SIZE};
use crate::state::AppState;

const SEARCH_REQUEST_MEMBERS: &[&str] = &[
    "entityTypes",
    "contentSources",
    "query",
    "from",
    "size",
    "fields",
    "aggregations",
    "aggregationFilters",
    "sortProperties",
    "queryAlterationOptions",
    "resultTemplateOptions",
    "enableTopResults",
    "region",
    "sharePointOneDriveOptions",
    "trimDuplicates",
    "collapseProperties",
];
/// The message the live service gave for a missing `contentSources` (evidence 4.2).
const NO_CONTENT_SOURCES: &str =
    "SearchRequest Invalid Content Source cannot be null or empty for entity type - ExternalItem";

#[utoipa::path(
    post, path = "/search/query", tag = "search", operation_id = "searchQuery",
    request_body = wire::SearchQuery,
    responses((status = 200, description = "One searchResponse per request, in order, trimmed for the user in the token (app-only tokens get `403`).", body = wire::SearchQueryAnswer))
)]
pub async fn query(
    State(state): State<AppState>,
    graph: GraphRequest,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let members = Members::new(&body, "microsoft.graph.search.query");
    members.allow_only(&["requests"])?;
    let requests = match members.get("requests") {
        Some(Value::Array(requests)) if !requests.is_empty() => requests,
        _ => {
            return Err(ApiError::invalid(
                "The body needs 'requests': a non-empty list of searchRequest objects.",
            )
            .with_target("requests"))
        }
    };
    if requests.len() > MAX_REQUESTS_PER_CALL {
        return Err(ApiError::invalid(format!(
            "At most {MAX_REQUESTS_PER_CALL} searchRequests are allowed in one call, {} were sent.",
            requests.len()
        ))
        .with_target("requests"));
    }
    let mut responses = Vec::with_capacity(requests.len());
    for (index, request) in requests.iter().enumerate() {
        let request = parse_request(request, index)?;
        let result = service::search::search(&state, &graph.caller, request).await?;
        responses.push(response_json(&result));
    }
    let mut body = graph.body_with_context("Collection(microsoft.graph.searchResponse)");
    body.insert("value".into(), Value::Array(responses));
    Ok(Json(Value::Object(body)).into_response())
}

/// searchRequests per `POST /search/query` at most (Graph documents none; gcemu's choice).
const MAX_REQUESTS_PER_CALL: usize = 20;
/// contentSources per searchRequest at most (more than a tenant's 30 connections, gcemu's choice).
pub(super) const MAX_CONTENT_SOURCES: usize = 100;
/// aggregationFilters per searchRequest at most (gcemu's choice).
const MAX_AGGREGATION_FILTERS: usize = 20;
/// Aggregations per searchRequest at most (gcemu's choice).
const MAX_AGGREGATIONS: usize = 20;
/// Buckets one aggregation may ask for (searchAggregation.size is at most 65535 in Graph).
const MAX_BUCKETS: u64 = 65_535;

fn bad(index: usize, message: String) -> ApiError {
    ApiError::invalid(message).with_target(format!("requests[{index}]"))
}

fn parse_request(value: &Value, index: usize) -> Result<SearchRequest, ApiError> {
    let Value::Object(map) = value else {
        return Err(bad(
            index,
            format!("requests[{index}] must be a searchRequest object."),
        ));
    };
    let members = Members::nested(
        map,
        "microsoft.graph.searchRequest",
        format!("requests[{index}]"),
    );
    members.allow_only(SEARCH_REQUEST_MEMBERS)?;
    let entity_types = members.strings("entityTypes")?.unwrap_or_default();
    if entity_types.is_empty() {
        return Err(bad(
            index,
            "entityTypes is required; gcemu serves [\"externalItem\"].".into(),
        ));
    }
    if let Some(other) = entity_types
        .iter()
        .find(|t| !t.eq_ignore_ascii_case("externalItem"))
    {
        return Err(bad(index, format!("The entity type '{other}' is not served by gcemu, which emulates connectors: use externalItem.")));
    }
    let content_sources = members.strings("contentSources")?.unwrap_or_default();
    if content_sources.is_empty() {
        return Err(bad(index, NO_CONTENT_SOURCES.into()));
    }
    if content_sources.len() > MAX_CONTENT_SOURCES {
        return Err(bad(
            index,
            format!(
                "At most {MAX_CONTENT_SOURCES} contentSources are allowed, {} were sent.",
                content_sources.len()
            ),
        ));
    }
    let mut seen_sources = std::collections::HashSet::new();
    let connection_ids = content_sources
        .iter()
        .map(|source| {
            let trimmed = source.trim().trim_start_matches('/');
            let id = trimmed.strip_prefix("external/connections/").or_else(|| trimmed.strip_prefix("connections/")).unwrap_or(trimmed);
            if id.is_empty() || id.contains('/') {
                return Err(bad(index, format!("The content source '{source}' must be '/external/connections/{{connectionId}}'.")));
            }
            Ok(ConnectionId::lookup(id))
        })
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        // A connection named twice (in any letter case) is searched and counted once.
        .filter(|id| seen_sources.insert(id.as_str().to_ascii_lowercase()))
        .collect();
    let query = match members.get("query") {
        Some(Value::Object(query)) => query,
        _ => {
            return Err(bad(
                index,
                "query is required: {\"queryString\": \"...\"}.".into(),
            ))
        }
    };
    let query_string = match query.get("queryString") {
        Some(Value::String(text)) => text.clone(),
        _ => return Err(bad(index, "query.queryString is required.".into())),
    };
    let query_template = query
        .get("queryTemplate")
        .and_then(Value::as_str)
        .map(str::to_string);
    let integer = |name: &str, default: usize| -> Result<usize, ApiError> {
        match members.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Number(number)) => number.as_u64().map(|n| n as usize).ok_or_else(|| {
                bad(
                    index,
                    format!("{name} must be a non-negative integer, not {number}."),
                )
            }),
            Some(other) => Err(bad(
                index,
                format!("{name} must be a non-negative integer, not {other}."),
            )),
        }
    };
    let from = integer("from", 0)?;
    let size = integer("size", DEFAULT_PAGE_SIZE)?;
    let fields = members.strings("fields")?;
    let aggregation_filters = members.strings("aggregationFilters")?.unwrap_or_default();
    if aggregation_filters.len() > MAX_AGGREGATION_FILTERS {
        return Err(bad(
            index,
            format!(
                "At most {MAX_AGGREGATION_FILTERS} aggregationFilters are allowed, {} were sent.",
                aggregation_filters.len()
            ),
        ));
    }
    let sort = match members.get("sortProperties") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(properties)) => properties
            .iter()
            .map(|property| {
                let name = property
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty());
                let descending = property
                    .get("isDescending")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                name.map(|name| (name.to_string(), descending))
                    .ok_or_else(|| bad(index, "every sortProperty needs a name.".into()))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad(index, "sortProperties must be a list.".into())),
    };
    let aggregations = match members.get("aggregations") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(options)) if options.len() > MAX_AGGREGATIONS => {
            return Err(bad(
                index,
                format!(
                    "At most {MAX_AGGREGATIONS} aggregations are allowed, {} were sent.",
                    options.len()
                ),
            ))
        }
        Some(Value::Array(options)) => options
            .iter()
            .map(|option| parse_aggregation(option, index))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad(index, "aggregations must be a list.".into())),
    };
    let collapse = match members.get("collapseProperties") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(levels)) => levels
            .iter()
            .enumerate()
            .map(|(position, level)| parse_collapse_level(level, index, position))
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "requests[{index}].collapseProperties must be a list of {{\"fields\": [...], \"limit\": n}} objects."
            ))
            .with_target(format!("requests[{index}].collapseProperties")))
        }
    };
    let result_templates = match members.get("resultTemplateOptions") {
        None | Some(Value::Null) => false,
        Some(Value::Object(options)) => match options.get("enableResultTemplate") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(enabled)) => *enabled,
            Some(other) => {
                return Err(ApiError::invalid(format!(
                    "requests[{index}].resultTemplateOptions.enableResultTemplate must be true or false, not {other}."
                ))
                .with_target(format!(
                    "requests[{index}].resultTemplateOptions.enableResultTemplate"
                )))
            }
        },
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "requests[{index}].resultTemplateOptions must be an object such as {{\"enableResultTemplate\": true}}."
            ))
            .with_target(format!("requests[{index}].resultTemplateOptions")))
        }
    };
    Ok(SearchRequest {
        connection_ids,
        query_string,
        query_template,
        from,
        size,
        fields,
        aggregations,
        aggregation_filters,
        sort,
        collapse,
        result_templates,
        trimming: Default::default(),
    })
}

/// A `collapseProperty`: `{"fields": [names], "limit": 1..32767}`.
fn parse_collapse_level(
    value: &Value,
    index: usize,
    position: usize,
) -> Result<CollapseLevel, ApiError> {
    let target = format!("requests[{index}].collapseProperties[{position}]");
    let fail = |member: &str, message: String| {
        ApiError::invalid(message).with_target(format!("{target}{member}"))
    };
    let Value::Object(level) = value else {
        return Err(fail(
            "",
            format!("{target} must be an object: {{\"fields\": [...], \"limit\": n}}."),
        ));
    };
    if let Some(name) = level.keys().find(|k| *k != "fields" && *k != "limit") {
        return Err(fail(
            "",
            format!(
                "{target} has the member '{}'; a collapseProperty has fields and limit.",
                crate::domain::excerpt(name, 60)
            ),
        ));
    }
    let fields: Option<Vec<String>> = match level.get("fields") {
        Some(Value::Array(fields)) => fields
            .iter()
            .map(|f| f.as_str().filter(|f| !f.is_empty()).map(str::to_string))
            .collect(),
        _ => None,
    };
    let Some(fields) = fields else {
        return Err(fail(
            ".fields",
            format!("{target}.fields must be a list of property names."),
        ));
    };
    let limit = match level.get("limit") {
        Some(Value::Number(limit)) => limit.as_u64().map(|l| l.min(u64::from(u32::MAX)) as usize),
        _ => None,
    };
    let Some(limit) = limit else {
        return Err(fail(
            ".limit",
            format!("{target}.limit must be an integer from 1 to 32767."),
        ));
    };
    Ok(CollapseLevel { fields, limit })
}

fn parse_aggregation(option: &Value, index: usize) -> Result<Aggregation, ApiError> {
    let field = option
        .get("field")
        .and_then(Value::as_str)
        .filter(|f| !f.is_empty());
    let Some(field) = field else {
        return Err(bad(index, "every aggregation needs a field.".into()));
    };
    let size = match option.get("size") {
        None | Some(Value::Null) => 10,
        Some(size) => match size.as_u64() {
            Some(size) if size <= MAX_BUCKETS => size as usize,
            _ => {
                return Err(bad(
                    index,
                    format!(
                        "aggregation size must be an integer from 0 to {MAX_BUCKETS}, not {size}."
                    ),
                ))
            }
        },
    };
    let definition = option
        .get("bucketDefinition")
        .cloned()
        .unwrap_or(Value::Null);
    let sort_by = match definition
        .get("sortBy")
        .and_then(Value::as_str)
        .unwrap_or("count")
    {
        s if s.eq_ignore_ascii_case("count") => BucketSort::Count,
        s if s.eq_ignore_ascii_case("keyAsString") => BucketSort::KeyAsString,
        s if s.eq_ignore_ascii_case("keyAsNumber") => BucketSort::KeyAsNumber,
        other => {
            return Err(bad(
                index,
                format!(
                    "bucketDefinition.sortBy '{other}' must be count, keyAsString or keyAsNumber."
                ),
            ))
        }
    };
    let ranges = match definition.get("ranges") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ranges)) if ranges.len() > MAX_RANGES => {
            return Err(bad(
                index,
                format!(
                    "bucketDefinition.ranges holds {} ranges; gcemu accepts at most {MAX_RANGES}.",
                    ranges.len()
                ),
            ))
        }
        Some(Value::Array(ranges)) => ranges
            .iter()
            .enumerate()
            .map(|(position, range)| parse_range(range, index, position))
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(bad(
                index,
                "bucketDefinition.ranges must be a list of {\"from\", \"to\"} objects.".into(),
            ))
        }
    };
    Ok(Aggregation {
        field: field.to_string(),
        size,
        sort_by,
        descending: definition
            .get("isDescending")
            .and_then(Value::as_bool)
            .unwrap_or(sort_by == BucketSort::Count),
        minimum_count: definition
            .get("minimumCount")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        prefix_filter: definition
            .get("prefixFilter")
            .and_then(Value::as_str)
            .map(str::to_string),
        ranges,
    })
}

/// A `bucketAggregationRange`: `from` and `to` as strings (numbers are accepted too); either may
/// be left out for an open-ended range.
fn parse_range(value: &Value, index: usize, position: usize) -> Result<BucketRange, ApiError> {
    let target = format!("requests[{index}].aggregations.bucketDefinition.ranges[{position}]");
    let Value::Object(range) = value else {
        return Err(
            ApiError::invalid(format!("{target} must be an object with from and/or to."))
                .with_target(target),
        );
    };
    let bound = |name: &str| -> Result<Option<String>, ApiError> {
        match range.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.trim().to_string())),
            Some(Value::Number(number)) => Ok(Some(number.to_string())),
            Some(other) => Err(ApiError::invalid(format!(
                "{target}.{name} must be a string holding a number or a date, not {other}."
            ))
            .with_target(format!("{target}.{name}"))),
        }
    };
    Ok(BucketRange {
        from: bound("from")?,
        to: bound("to")?,
    })
}

fn response_json(result: &service::search::SearchResult) -> Value {
    let hits: Vec<Value> = result
        .hits
        .iter()
        .map(|hit| {
            let mut body = Map::new();
            body.insert("hitId".into(), json!(hit.item_id));
            body.insert("rank".into(), json!(hit.rank));
            body.insert("summary".into(), json!(hit.summary));
            body.insert("contentSource".into(), json!(hit.connection_id.as_str()));
            if let Some(template) = &hit.result_template_id {
                body.insert("resultTemplateId".into(), json!(template));
            }
            if let Some(collapsed) = hit.is_collapsed {
                body.insert("isCollapsed".into(), json!(collapsed));
            }
            body.insert(
                "resource".into(),
                json!({
                    "@odata.type": "#microsoft.graph.externalConnectors.externalItem",
                    "properties": hit.properties,
                }),
            );
            Value::Object(body)
        })
        .collect();
    let mut container = Map::new();
    container.insert("hits".into(), Value::Array(hits));
    container.insert("total".into(), json!(result.total));
    container.insert(
        "moreResultsAvailable".into(),
        json!(result.more_results_available),
    );
    if !result.aggregations.is_empty() {
        let aggregations: Vec<Value> = result
            .aggregations
            .iter()
            .map(|(field, buckets)| {
                let buckets: Vec<Value> = buckets
                    .iter()
                    .map(|bucket| json!({"key": bucket.key, "count": bucket.count, "aggregationFilterToken": bucket.token}))
                    .collect();
                json!({"field": field, "buckets": buckets})
            })
            .collect();
        container.insert("aggregations".into(), Value::Array(aggregations));
    }
    let mut response = Map::new();
    response.insert("searchTerms".into(), json!(result.search_terms));
    response.insert(
        "hitsContainers".into(),
        Value::Array(vec![Value::Object(container)]),
    );
    if let Some(templates) = &result.result_templates {
        let templates: Map<String, Value> = templates
            .iter()
            .map(|(key, display_name, body)| {
                (
                    key.clone(),
                    json!({"displayName": display_name, "body": body}),
                )
            })
            .collect();
        response.insert("resultTemplates".into(), Value::Object(templates));
    }
    Value::Object(response)
}
