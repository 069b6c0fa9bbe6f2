//! JSON batching: `POST /{version}/$batch` (spec/batch-and-retrieval.md §1).
//!
//! The whole batch is checked first; any malformed request refuses the batch with one `400`
//! naming the request. Then every sub-request is dispatched through the same router as a direct
//! request (`AppState::router`, after `normalize_path`), so it gets the same middleware, request
//! ids, authentication, extractors and handlers. Independent sub-requests run concurrently; a
//! request with `dependsOn` starts when its dependencies have answered, and gets `424` when one
//! of them failed. Responses come back in request order.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use futures_util::future::{join_all, BoxFuture, FutureExt, Shared};
use serde_json::{json, Map, Value};
use tower::ServiceExt;

use super::context::{self, RequestIds, GRAPH_JSON_CONTENT_TYPE};
use super::error::{ApiError, ErrorCode};
use super::extract::{json_kind, ApiVersion, JsonObject};
use super::openapi::wire;
use crate::state::AppState;

/// At most this many requests in one batch.
pub const MAX_REQUESTS: usize = 20;

/// At most this many headers in one sub-request, as the HTTP server allows on a direct request.
const MAX_HEADERS: usize = 100;

/// A handle to the built router, so that `$batch` can dispatch through it. The router holds the
/// state and the state holds this handle, so `App::serve` clears it when it stops.
#[derive(Clone, Default)]
pub struct RouterHandle(Arc<RwLock<Option<Router>>>);

impl RouterHandle {
    pub fn set(&self, router: Router) {
        *self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(router);
    }

    pub fn clear(&self) {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
    }

    fn get(&self) -> Option<Router> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl std::fmt::Debug for RouterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RouterHandle")
    }
}

/// Marks a request dispatched from a batch, so that a batch reached from a batch is refused.
#[derive(Debug, Clone, Copy)]
struct InBatch;

/// One checked sub-request, ready to dispatch.
#[derive(Debug)]
struct SubRequest {
    id: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    /// Indices of earlier requests this one waits for (no duplicates).
    depends_on: Vec<usize>,
    /// Answered with this error instead of being dispatched: a problem Graph reports for this
    /// request alone (an absolute url), not for the whole batch.
    refusal: Option<ApiError>,
    /// The batch arrived over TLS: so did its parts.
    over_tls: bool,
    /// The batch came through the proxy: so did its parts.
    proxied: Option<context::Proxied>,
}

/// What the batch request itself contributes to each sub-request.
struct Outer {
    version: ApiVersion,
    /// `scheme://authority` when the batch came with an absolute URI.
    origin: Option<String>,
    host: Option<HeaderValue>,
    authorization: Option<HeaderValue>,
    client_request_id: Option<HeaderValue>,
    over_tls: bool,
    proxied: Option<context::Proxied>,
}

/// One entry of `responses`.
#[derive(Debug, Clone)]
struct Outcome {
    status: u16,
    headers: Map<String, Value>,
    body: Option<Value>,
}

#[utoipa::path(
    post, path = "/$batch", tag = "batch", operation_id = "batch",
    request_body = wire::BatchRequest,
    responses((status = 200, description = "One response per request, in request order (a malformed batch is refused whole with `400`).", body = wire::BatchResponse))
)]
pub async fn batch(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    if request.extensions().get::<InBatch>().is_some() {
        return Err(refused(
            "url",
            "A batch cannot contain another batch.".to_string(),
        ));
    }
    let batch_request_id = request
        .extensions()
        .get::<RequestIds>()
        .map(|ids| ids.request_id.clone())
        .unwrap_or_default();
    let headers = request.headers();
    let outer = Outer {
        version: request
            .extensions()
            .get::<ApiVersion>()
            .copied()
            .unwrap_or(ApiVersion::V1),
        origin: match (request.uri().scheme_str(), request.uri().authority()) {
            (Some(scheme), Some(authority)) => Some(format!("{scheme}://{authority}")),
            _ => None,
        },
        host: headers.get(header::HOST).cloned(),
        authorization: headers.get(header::AUTHORIZATION).cloned(),
        client_request_id: headers.get("client-request-id").cloned(),
        over_tls: request.extensions().get::<context::OverTls>().is_some(),
        proxied: request.extensions().get::<context::Proxied>().cloned(),
    };
    let JsonObject(body) = JsonObject::read(request, &state, state.config.max_body_bytes).await?;
    let requests = read_batch(&body, &outer)?;
    let router = state.router.get().ok_or_else(|| {
        tracing::error!("$batch: the router handle is not set");
        ApiError::new(
            ErrorCode::ServiceNotAvailable,
            "The emulator is stopping; the batch was not run.",
        )
    })?;

    let ids: Vec<String> = requests.iter().map(|request| request.id.clone()).collect();
    let mut runs: Vec<Shared<BoxFuture<'static, Arc<Outcome>>>> =
        Vec::with_capacity(requests.len());
    for request in requests {
        let dependencies: Vec<(String, Shared<BoxFuture<'static, Arc<Outcome>>>)> = request
            .depends_on
            .iter()
            .map(|&index| (ids[index].clone(), runs[index].clone()))
            .collect();
        let router = router.clone();
        let state = state.clone();
        let member = super::control::BatchMember(format!("{batch_request_id}/{}", request.id));
        let run = async move {
            for (dependency, run) in dependencies {
                let outcome = run.await;
                if outcome.status >= 400 {
                    let error = ApiError::new(
                        ErrorCode::FailedDependency,
                        format!(
                            "Request '{}' was not run: request '{dependency}', on which it depends, failed with status {}.",
                            request.id, outcome.status
                        ),
                    );
                    return Arc::new(error_outcome(&state, &request, &error));
                }
            }
            match &request.refusal {
                Some(error) => Arc::new(error_outcome(&state, &request, error)),
                None => Arc::new(dispatch(router, request, member).await),
            }
        };
        runs.push(run.boxed().shared());
    }
    let outcomes = join_all(runs).await;
    let responses: Vec<Value> = ids
        .into_iter()
        .zip(outcomes)
        .map(|(id, outcome)| {
            let mut response = Map::new();
            response.insert("id".into(), Value::String(id));
            response.insert("status".into(), json!(outcome.status));
            response.insert("headers".into(), Value::Object(outcome.headers.clone()));
            if let Some(body) = &outcome.body {
                response.insert("body".into(), body.clone());
            }
            Value::Object(response)
        })
        .collect();
    Ok(Json(json!({ "responses": responses })).into_response())
}

/// Runs one sub-request through the router and reads its answer.
async fn dispatch(router: Router, sub: SubRequest, member: super::control::BatchMember) -> Outcome {
    let mut request = Request::new(Body::from(sub.body));
    *request.method_mut() = sub.method;
    *request.uri_mut() = sub.uri;
    *request.headers_mut() = sub.headers;
    request.extensions_mut().insert(InBatch);
    request.extensions_mut().insert(member);
    if sub.over_tls {
        request.extensions_mut().insert(context::OverTls);
    }
    if let Some(proxied) = sub.proxied {
        request.extensions_mut().insert(proxied);
    }
    let request = context::normalize_path(request).await;
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    outcome_of(response).await
}

async fn outcome_of(response: Response) -> Outcome {
    let (parts, body) = response.into_parts();
    let mut headers = Map::new();
    for name in parts.headers.keys() {
        if HIDDEN_RESPONSE_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let values: Vec<&str> = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        if !values.is_empty() {
            headers.insert(
                canonical_header_name(name.as_str()),
                Value::String(values.join(", ")),
            );
        }
    }
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::error!(%error, "$batch: reading a sub-response body failed");
            Bytes::new()
        }
    };
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(is_json_content_type);
    let body = if bytes.is_empty() {
        None
    } else if is_json {
        Some(
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(STANDARD.encode(&bytes))),
        )
    } else {
        Some(Value::String(STANDARD.encode(&bytes)))
    };
    Outcome {
        status: parts.status.as_u16(),
        headers,
        body,
    }
}

/// The answer of a request that is not dispatched (a failed dependency, an absolute url), in
/// Graph's error envelope, with the headers a dispatched error would have.
fn error_outcome(state: &AppState, sub: &SubRequest, error: &ApiError) -> Outcome {
    let ids = RequestIds::for_request(&sub.headers);
    tracing::info!(
        method = %sub.method,
        path = sub.uri.path(),
        status = error.status().as_u16(),
        request_id = %ids.request_id,
        "batch sub-request not run"
    );
    let mut headers = Map::new();
    headers.insert("Cache-Control".into(), json!("no-cache"));
    headers.insert("Content-Type".into(), json!(GRAPH_JSON_CONTENT_TYPE));
    headers.insert("OData-Version".into(), json!("4.0"));
    Outcome {
        status: error.status().as_u16(),
        headers,
        body: Some(context::error_envelope(error, &ids, state)),
    }
}

/// Response headers that describe the transport or the batch, not the sub-response.
const HIDDEN_RESPONSE_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "request-id",
    "client-request-id",
    "x-ms-ags-diagnostic",
];

/// Request headers a sub-request may not set: the batch's own connection decides them.
const IGNORED_REQUEST_HEADERS: &[&str] =
    &["host", "content-length", "transfer-encoding", "connection"];

/// Header names as Graph spells them in batch responses (`Content-Type`, `OData-Version`):
/// clients read `headers["Content-Type"]` with that exact case.
fn canonical_header_name(name: &str) -> String {
    match name {
        "etag" => "ETag".to_string(),
        "odata-version" => "OData-Version".to_string(),
        "www-authenticate" => "WWW-Authenticate".to_string(),
        _ => name
            .split('-')
            .map(|part| {
                let mut chars = part.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                    None => String::new(),
                }
            })
            .collect::<Vec<_>>()
            .join("-"),
    }
}

fn is_json_content_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json") || essence == "text/json"
}

fn refused(target: impl Into<String>, message: String) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, message).with_target(target)
}

/// Reads and checks the whole batch: every problem refuses the batch, naming the request.
fn read_batch(body: &Map<String, Value>, outer: &Outer) -> Result<Vec<SubRequest>, ApiError> {
    let requests = match body.get("requests") {
        None | Some(Value::Null) => {
            return Err(refused(
                "requests",
                "The batch has no 'requests' array; send {\"requests\": [{\"id\", \"method\", \"url\"}, ...]}.".to_string(),
            ))
        }
        Some(Value::Array(requests)) => requests,
        Some(other) => {
            return Err(refused(
                "requests",
                format!(
                    "'requests' must be an array of requests, not {}.",
                    json_kind(other)
                ),
            ))
        }
    };
    if requests.is_empty() {
        return Err(refused(
            "requests",
            format!("The batch has no requests; send between 1 and {MAX_REQUESTS}."),
        ));
    }
    if requests.len() > MAX_REQUESTS {
        return Err(refused(
            "requests",
            format!(
                "The batch has {} requests; at most {MAX_REQUESTS} are allowed in one batch.",
                requests.len()
            ),
        ));
    }

    // Ids first: they name the requests in every later message, and dependsOn refers to them.
    let mut ids: Vec<&str> = Vec::with_capacity(requests.len());
    let mut index_of: HashMap<String, usize> = HashMap::with_capacity(requests.len());
    for (index, request) in requests.iter().enumerate() {
        let Value::Object(request) = request else {
            return Err(refused(
                format!("requests[{index}]"),
                format!(
                    "Request {index} of the batch must be a JSON object, not {}.",
                    json_kind(request)
                ),
            ));
        };
        let target = format!("requests[{index}].id");
        let id = match request.get("id") {
            None | Some(Value::Null) => {
                return Err(refused(
                    target,
                    format!("Request {index} of the batch has no 'id'; every request needs a string id, unique in the batch."),
                ))
            }
            Some(Value::String(id)) if id.is_empty() => {
                return Err(refused(
                    target,
                    format!("The id of request {index} of the batch is empty."),
                ))
            }
            Some(Value::String(id)) => id.as_str(),
            Some(other) => {
                return Err(refused(
                    target,
                    format!(
                        "The id of request {index} of the batch must be a string, not {}.",
                        json_kind(other)
                    ),
                ))
            }
        };
        if let Some(&first) = index_of.get(&id.to_lowercase()) {
            return Err(refused(
                target,
                format!(
                    "The request id '{id}' is used twice in the batch (also as '{}'); ids must be unique, compared without regard to case.",
                    ids[first]
                ),
            ));
        }
        index_of.insert(id.to_lowercase(), index);
        ids.push(id);
    }

    let mut checked = Vec::with_capacity(requests.len());
    for (index, request) in requests.iter().enumerate() {
        let request = request.as_object().expect("checked above");
        checked.push(read_request(index, ids[index], request, &index_of, outer)?);
    }
    check_dependency_order(&checked)?;
    Ok(checked)
}

/// Reads one request of the batch. `depends_on` may still name later requests here;
/// `check_dependency_order` refuses those.
fn read_request(
    index: usize,
    id: &str,
    request: &Map<String, Value>,
    index_of: &HashMap<String, usize>,
    outer: &Outer,
) -> Result<SubRequest, ApiError> {
    let member = |name: &str| format!("requests[{index}].{name}");
    let required_string = |name: &str| -> Result<&str, ApiError> {
        match request.get(name) {
            None | Some(Value::Null) => Err(refused(
                member(name),
                format!(
                    "Request '{id}' has no '{name}'; every request needs 'id', 'method' and 'url'."
                ),
            )),
            Some(Value::String(text)) if text.trim().is_empty() => Err(refused(
                member(name),
                format!("The {name} of request '{id}' is empty."),
            )),
            Some(Value::String(text)) => Ok(text),
            Some(other) => Err(refused(
                member(name),
                format!(
                    "The {name} of request '{id}' must be a string, not {}.",
                    json_kind(other)
                ),
            )),
        }
    };

    let method_text = required_string("method")?;
    let method =
        Method::from_bytes(method_text.trim().to_ascii_uppercase().as_bytes()).map_err(|_| {
            refused(
                member("method"),
                format!("Request '{id}' has an invalid method '{method_text}'."),
            )
        })?;

    let url = required_string("url")?;
    let mut refusal = None;
    let path_and_query = match relative_target(url, outer.version) {
        Ok(path_and_query) => path_and_query,
        Err(UrlProblem::Absolute) => {
            refusal = Some(
                ApiError::new(
                    ErrorCode::BadRequest,
                    format!(
                        "The url of request '{id}' is absolute ('{url}'); a batch takes URLs relative to the version, such as '/external/connections', and Graph does not run absolute ones."
                    ),
                )
                .with_target("url"),
            );
            format!("/{}/", outer.version.as_str())
        }
        Err(UrlProblem::Batch) => {
            return Err(refused(
                member("url"),
                format!(
                "Request '{id}' is itself a batch ('{url}'); a batch cannot contain another batch."
            ),
            ))
        }
    };
    let uri: Uri = match &outer.origin {
        Some(origin) => format!("{origin}{path_and_query}"),
        None => path_and_query,
    }
    .parse()
    .map_err(|_| {
        refused(
            member("url"),
            format!("The url of request '{id}' ('{url}') is not a valid relative URL."),
        )
    })?;

    let mut headers = HeaderMap::new();
    match request.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(given)) if given.len() > MAX_HEADERS => {
            return Err(refused(
                member("headers"),
                format!(
                    "Request '{id}' has {} headers; at most {MAX_HEADERS} are allowed.",
                    given.len()
                ),
            ))
        }
        Some(Value::Object(given)) => {
            for (name, value) in given {
                let text = match value {
                    Value::String(text) => text.clone(),
                    Value::Number(number) => number.to_string(),
                    Value::Bool(flag) => flag.to_string(),
                    other => {
                        return Err(refused(
                            member("headers"),
                            format!(
                                "The header '{name}' of request '{id}' must have a string value, not {}.",
                                json_kind(other)
                            ),
                        ))
                    }
                };
                let invalid = || {
                    refused(
                        member("headers"),
                        format!("The header '{name}' of request '{id}' is not a valid HTTP header."),
                    )
                };
                let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
                let value = HeaderValue::from_str(&text).map_err(|_| invalid())?;
                if !IGNORED_REQUEST_HEADERS.contains(&name.as_str()) {
                    headers.append(name, value);
                }
            }
        }
        Some(other) => {
            return Err(refused(
                member("headers"),
                format!(
                    "The headers of request '{id}' must be a JSON object of header names and values, not {}.",
                    json_kind(other)
                ),
            ))
        }
    }

    let body = match request.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(body) => {
            if !headers.contains_key(header::CONTENT_TYPE) {
                return Err(refused(
                    member("headers"),
                    format!(
                        "Request '{id}' has a body but no Content-Type header; a request with a body needs 'headers' with 'Content-Type'."
                    ),
                ));
            }
            match body {
                Value::String(encoded) => Bytes::from(decode_base64(encoded).ok_or_else(|| {
                    refused(
                        member("body"),
                        format!(
                            "The body of request '{id}' is a string but not base64; a body is a JSON object or a base64-encoded value."
                        ),
                    )
                })?),
                json => Bytes::from(json.to_string()),
            }
        }
    };
    if !body.is_empty() {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    if let Some(host) = &outer.host {
        headers.insert(header::HOST, host.clone());
    }
    if !headers.contains_key(header::AUTHORIZATION) {
        if let Some(authorization) = &outer.authorization {
            headers.insert(header::AUTHORIZATION, authorization.clone());
        }
    }
    if !headers.contains_key("client-request-id") {
        if let Some(client_request_id) = &outer.client_request_id {
            headers.insert("client-request-id", client_request_id.clone());
        }
    }

    let mut depends_on: Vec<usize> = Vec::new();
    match request.get("dependsOn") {
        None | Some(Value::Null) => {}
        Some(Value::Array(dependencies)) => {
            for dependency in dependencies {
                let Value::String(dependency) = dependency else {
                    return Err(refused(
                        member("dependsOn"),
                        format!(
                            "The dependsOn of request '{id}' must hold request ids (strings), not {}.",
                            json_kind(dependency)
                        ),
                    ));
                };
                let Some(&target) = index_of.get(&dependency.to_lowercase()) else {
                    return Err(refused(
                        member("dependsOn"),
                        format!(
                            "Request '{id}' depends on '{dependency}', which is not the id of a request in this batch."
                        ),
                    ));
                };
                if !depends_on.contains(&target) {
                    depends_on.push(target);
                }
            }
        }
        Some(other) => {
            return Err(refused(
                member("dependsOn"),
                format!(
                    "The dependsOn of request '{id}' must be an array of request ids, not {}.",
                    json_kind(other)
                ),
            ))
        }
    }

    Ok(SubRequest {
        id: id.to_string(),
        method,
        uri,
        headers,
        body,
        depends_on,
        refusal,
        over_tls: outer.over_tls,
        proxied: outer.proxied.clone(),
    })
}

/// Graph runs a request's dependencies before it and refuses a batch where a request depends on
/// one listed after it ("Invalid dependency for request Id ..."), which also rules out cycles.
/// The message says when the dependency is part of a cycle.
fn check_dependency_order(requests: &[SubRequest]) -> Result<(), ApiError> {
    for (index, request) in requests.iter().enumerate() {
        for &dependency in &request.depends_on {
            let target = format!("requests[{index}].dependsOn");
            if dependency == index {
                return Err(refused(
                    target,
                    format!(
                        "Invalid dependency for request Id '{}': it depends on itself.",
                        request.id
                    ),
                ));
            }
            if dependency > index {
                let cycle = if reaches(requests, dependency, index) {
                    ", and it depends (directly or through others) on this one: the dependencies form a cycle"
                } else {
                    ""
                };
                return Err(refused(
                    target,
                    format!(
                        "Invalid dependency for request Id '{}': it depends on '{}', which comes after it in the batch{cycle}. A request may only depend on requests listed before it.",
                        request.id, requests[dependency].id
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Whether `to` is reachable from `from` along dependsOn edges (each request visited once).
fn reaches(requests: &[SubRequest], from: usize, to: usize) -> bool {
    let mut seen = vec![false; requests.len()];
    let mut stack = vec![from];
    while let Some(current) = stack.pop() {
        if current == to {
            return true;
        }
        if std::mem::replace(&mut seen[current], true) {
            continue;
        }
        stack.extend(requests[current].depends_on.iter().copied());
    }
    false
}

#[derive(Debug, PartialEq, Eq)]
enum UrlProblem {
    Absolute,
    Batch,
}

/// Characters a batch URL may hold as typed (the docs' example has spaces in `$filter`) but a
/// request target may not: they are percent-encoded.
const URL_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'[')
    .add(b']');

/// The request target of a batch URL: `/{version}/` then the URL with or without its leading
/// `/`, its fragment dropped. Absolute URLs (`https://graph.microsoft.com/v1.0/...`) are not
/// run, as Graph does not run them (msgraph-sdk-python#1015, msgraph-sdk-python-core#1116,
/// microsoft-graph-docs-contrib#8576), and `$batch` itself is refused.
fn relative_target(url: &str, version: ApiVersion) -> Result<String, UrlProblem> {
    if has_scheme(url) {
        return Err(UrlProblem::Absolute);
    }
    let url = url.split('#').next().unwrap_or_default();
    let relative = url.trim_start_matches('/');
    let path = relative.split('?').next().unwrap_or_default();
    let first = path
        .split('/')
        .find(|segment| !segment.is_empty())
        .unwrap_or("");
    if first.eq_ignore_ascii_case("$batch") || first.eq_ignore_ascii_case("%24batch") {
        return Err(UrlProblem::Batch);
    }
    let encoded = percent_encoding::utf8_percent_encode(relative, URL_ESCAPES);
    Ok(format!("/{}/{encoded}", version.as_str()))
}

/// `scheme://...` (RFC 3986 scheme characters before `://`).
fn has_scheme(url: &str) -> bool {
    let Some((scheme, _)) = url.split_once("://") else {
        return false;
    };
    let mut chars = scheme.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

const ANY_PADDING: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_ANY_PADDING: GeneralPurpose =
    GeneralPurpose::new(&base64::alphabet::STANDARD, ANY_PADDING);
const URL_SAFE_ANY_PADDING: GeneralPurpose =
    GeneralPurpose::new(&base64::alphabet::URL_SAFE, ANY_PADDING);

/// A binary body: base64 in the standard or the URL-safe alphabet, padded or not.
fn decode_base64(encoded: &str) -> Option<Vec<u8>> {
    STANDARD_ANY_PADDING
        .decode(encoded)
        .or_else(|_| URL_SAFE_ANY_PADDING.decode(encoded))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_relative_to_the_version_with_or_without_a_leading_slash() {
        assert_eq!(
            relative_target("/external/connections", ApiVersion::V1),
            Ok("/v1.0/external/connections".to_string())
        );
        assert_eq!(
            relative_target("external/connections?$top=1", ApiVersion::Beta),
            Ok("/beta/external/connections?$top=1".to_string())
        );
        assert_eq!(
            relative_target("users?$filter=city eq 'x'#frag", ApiVersion::V1),
            Ok("/v1.0/users?$filter=city%20eq%20'x'".to_string())
        );
    }

    #[test]
    fn absolute_urls_and_nested_batches_are_refused() {
        for url in [
            "https://graph.microsoft.com/v1.0/users",
            "http://127.0.0.1:5080/v1.0/users",
            "HTTPS://graph.microsoft.com/users",
        ] {
            assert_eq!(
                relative_target(url, ApiVersion::V1),
                Err(UrlProblem::Absolute),
                "{url}"
            );
        }
        for url in ["$batch", "/$batch", "/%24batch?x=1", "//$BATCH/"] {
            assert_eq!(
                relative_target(url, ApiVersion::V1),
                Err(UrlProblem::Batch),
                "{url}"
            );
        }
        // A colon elsewhere is not a scheme.
        assert!(relative_target("/users?$filter=a eq 'b://c'", ApiVersion::V1).is_ok());
    }

    #[test]
    fn header_names_are_spelled_as_graph_does() {
        assert_eq!(canonical_header_name("content-type"), "Content-Type");
        assert_eq!(canonical_header_name("retry-after"), "Retry-After");
        assert_eq!(canonical_header_name("location"), "Location");
        assert_eq!(canonical_header_name("odata-version"), "OData-Version");
    }

    #[test]
    fn base64_bodies_decode_in_either_alphabet_with_or_without_padding() {
        assert_eq!(decode_base64("aGk/Pz4+").as_deref(), Some(&b"hi??>>"[..]));
        assert_eq!(decode_base64("aGk_Pz4-").as_deref(), Some(&b"hi??>>"[..]));
        assert_eq!(decode_base64("aGk").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode_base64("not base64!"), None);
    }
}
