//! Per-request plumbing at the very edge: path tolerances before routing, request ids,
//! Graph's response headers, and rendering of every error as Graph's envelope.

use axum::body::Body;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use http_body_util::BodyExt;
use serde_json::json;

use super::error::{ApiError, ErrorCode, MALFORMED_MESSAGE};
use crate::state::AppState;

/// Marks a request that arrived over TLS, so that the URLs gcemu builds (`Location`,
/// `@odata.context`, the identity endpoints' metadata) say `https`.
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

/// Marks a request that came through gcemu's proxy (`--proxy`), for its journal entry: the host
/// the client asked for.
#[derive(Debug, Clone)]
pub struct Proxied {
    pub host: String,
}

/// `scheme://host[:port]` of a request: https when it came over TLS (or an absolute https URI),
/// the `Host` header (or the URI's authority, as HTTP/2 sends it).
pub fn request_origin(parts: &axum::http::request::Parts) -> String {
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| parts.uri.authority().map(|authority| authority.as_str()))
        .unwrap_or("localhost");
    let scheme = if parts.extensions.get::<OverTls>().is_some() {
        "https"
    } else {
        parts.uri.scheme_str().unwrap_or("http")
    };
    format!("{scheme}://{host}")
}

/// The ids that `innerError` and the `request-id` / `client-request-id` headers carry.
#[derive(Debug, Clone)]
pub struct RequestIds {
    pub request_id: String,
    pub client_request_id: String,
}

impl RequestIds {
    /// A new request id, and the client's `client-request-id` (or the request id when it sent none).
    pub fn for_request(headers: &axum::http::HeaderMap) -> RequestIds {
        // A version-4 UUID from the thread's generator (seeded from the OS once), not a system
        // call per request as `Uuid::new_v4` makes.
        let request_id = uuid::Builder::from_random_bytes(rand::random())
            .into_uuid()
            .to_string();
        let client_request_id = headers
            .get("client-request-id")
            .and_then(|value| value.to_str().ok())
            .filter(|value| !value.is_empty() && value.len() <= 256)
            .map(str::to_string)
            .unwrap_or_else(|| request_id.clone());
        RequestIds {
            request_id,
            client_request_id,
        }
    }
}

/// Graph's JSON content type (evidence 6.1).
pub const GRAPH_JSON_CONTENT_TYPE: &str =
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// Rewrites the path before routing so that Graph's tolerated spellings reach the same route:
/// empty segments (`/v1.0//external`), a trailing slash, and OData key syntax
/// (`connections('id')` becomes `connections/id`).
pub async fn normalize_path(mut request: Request) -> Request {
    if let Some(path) = normalized_path(request.uri().path()) {
        let mut parts = request.uri().clone().into_parts();
        let path_and_query = match request.uri().query() {
            Some(query) => format!("{path}?{query}"),
            None => path,
        };
        if let Ok(path_and_query) = path_and_query.parse() {
            parts.path_and_query = Some(path_and_query);
            if let Ok(uri) = Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
    }
    request
}

/// Returns the normalized path, or `None` when `path` needs no change. The web console's files
/// (`/_emulator/ui/...`) are not Graph paths and keep their spelling: its page lives at
/// `/_emulator/ui/` so that the page's relative links resolve under it.
pub fn normalized_path(path: &str) -> Option<String> {
    if path == "/_emulator/ui/" || path.starts_with("/_emulator/ui/") {
        return None;
    }
    if is_normal(path) {
        return None;
    }
    rebuilt_path(path)
}

/// `normalized_path`, segment by segment.
fn rebuilt_path(path: &str) -> Option<String> {
    let mut segments: Vec<String> = Vec::new();
    for segment in path.split('/').filter(|segment| !segment.is_empty()) {
        match split_key_segment(segment) {
            Some((name, key)) => {
                segments.push(name.to_string());
                segments.push(key);
            }
            None if segment.eq_ignore_ascii_case("%24ref") => segments.push("$ref".to_string()),
            None => segments.push(segment.to_string()),
        }
    }
    let normalized = format!("/{}", segments.join("/"));
    (normalized != path).then_some(normalized)
}

/// Whether `path` is already what `normalized_path` would make of it, told without allocating
/// (the path of nearly every request): no empty segment, no `name(key)` segment, no `%24ref`.
fn is_normal(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    let Some(segments) = path.strip_prefix('/') else {
        return false;
    };
    segments.split('/').all(|segment| {
        !segment.is_empty() && !segment.contains('(') && !segment.eq_ignore_ascii_case("%24ref")
    })
}

/// Splits `name('key')` (quotes possibly percent-encoded as `%27`) into the name and the key,
/// with OData's doubled quote `''` unescaped and the key percent-encoded as one path segment.
fn split_key_segment(segment: &str) -> Option<(&str, String)> {
    let open = segment.find('(')?;
    if !segment.ends_with(')') || open == 0 {
        return None;
    }
    let name = &segment[..open];
    let inner = &segment[open + 1..segment.len() - 1];
    let decoded = percent_encoding::percent_decode_str(inner)
        .decode_utf8()
        .ok()?;
    let quoted = decoded.strip_prefix('\'')?.strip_suffix('\'')?;
    let key = quoted.replace("''", "'");
    let encoded = percent_encoding::utf8_percent_encode(&key, SEGMENT_ESCAPES).to_string();
    Some((name, encoded))
}

const SEGMENT_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'/')
    .add(b'?')
    .add(b'#')
    .add(b'%')
    .add(b'"')
    .add(b'<')
    .add(b'>');

/// Assigns request ids, runs the request, then gives the response Graph's headers and turns
/// every error (ours or the router's own 404/405) into Graph's error envelope.
pub async fn request_context(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let ids = RequestIds::for_request(request.headers());
    request.extensions_mut().insert(ids.clone());
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let started = std::time::Instant::now();

    // A panic in a handler is a bug: it is logged and answered as a Graph 500, instead of
    // dropping the connection with no answer.
    let response = match std::panic::AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            let message = crate::telemetry::panic_message(panic.as_ref());
            tracing::error!(%method, path, panic = %message, "a request handler panicked");
            super::error::ApiError::new(
                super::error::ErrorCode::InternalServerError,
                "An internal error occurred in the emulator.",
            )
            .into_response()
        }
    };
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        duration_ms = started.elapsed().as_millis() as u64,
        request_id = %ids.request_id,
        "request"
    );
    let mut response = render_error(response, &ids, &state, &method, &path).await;

    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&ids.request_id) {
        headers.insert("request-id", value);
    }
    if let Ok(value) = HeaderValue::from_str(&ids.client_request_id) {
        headers.insert("client-request-id", value);
    }
    headers.insert(
        "x-ms-ags-diagnostic",
        HeaderValue::from_static(r#"{"ServerInfo":{"DataCenter":"gcemu","Slice":"E","Ring":"0","ScaleUnit":"000","RoleInstance":"gcemu"}}"#),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    // Graph's OData content type on Graph's routes (and their fallbacks), not on the control
    // plane's or the identity provider's, which answer plain JSON as Entra does.
    let graph_route = !path.starts_with("/_emulator") && !super::identity::is_identity_path(&path);
    if is_json && graph_route {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(GRAPH_JSON_CONTENT_TYPE),
        );
        headers.insert("odata-version", HeaderValue::from_static("4.0"));
    }
    response
}

async fn render_error(
    response: Response,
    ids: &RequestIds,
    state: &AppState,
    method: &Method,
    path: &str,
) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let error = match parts.extensions.remove::<ApiError>() {
        Some(error) => error,
        None => {
            let is_json = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|value| value.starts_with("application/json"));
            if is_json {
                return Response::from_parts(parts, body);
            }
            let text = body
                .collect()
                .await
                .map(|collected| String::from_utf8_lossy(&collected.to_bytes()).into_owned())
                .unwrap_or_default();
            error_for_bare_status(status, method, path, &text)
        }
    };
    let body = error_envelope(&error, ids, state).to_string();
    parts.status = error.status();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

/// Graph's error envelope for `error`: `{"error": {"code", "message", "target"?, "details"?,
/// "innerError": {"code"?, "source"?, "message"?, "date", "request-id", "client-request-id"}}}`.
pub fn error_envelope(error: &ApiError, ids: &RequestIds, state: &AppState) -> serde_json::Value {
    let date = state.clock.now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let mut inner = serde_json::Map::new();
    if let Some(inner_error) = &error.inner {
        inner.insert("code".into(), json!(inner_error.code));
        if let Some(source) = inner_error.source {
            inner.insert("source".into(), json!(source));
        }
        inner.insert("message".into(), json!(inner_error.message));
    }
    inner.insert("date".into(), json!(date));
    inner.insert("request-id".into(), json!(ids.request_id));
    inner.insert("client-request-id".into(), json!(ids.client_request_id));
    let mut envelope = serde_json::Map::new();
    envelope.insert("code".into(), json!(error.code_str()));
    envelope.insert("message".into(), json!(error.message));
    if let Some(target) = &error.target {
        envelope.insert("target".into(), json!(target));
    }
    if !error.details().is_empty() {
        let details: Vec<serde_json::Value> = error
            .details()
            .iter()
            .map(|detail| json!({"code": detail.code, "message": detail.message, "target": detail.target}))
            .collect();
        envelope.insert("details".into(), serde_json::Value::Array(details));
    }
    envelope.insert("innerError".into(), serde_json::Value::Object(inner));
    json!({ "error": envelope })
}

/// Errors produced by the router or by axum itself, which carry only a status.
fn error_for_bare_status(status: StatusCode, method: &Method, path: &str, text: &str) -> ApiError {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            ErrorCode::MethodNotAllowed,
            "Specified HTTP method is not allowed for the request target.",
        )
        .with_inner(
            "MethodNotAllowed",
            None,
            format!(
                "{method} is not allowed on '{path}'; the Allow header lists the methods that are."
            ),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => too_large(None),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "The request body must be JSON (Content-Type: application/json).",
        ),
        StatusCode::NOT_FOUND => ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("No resource was found at '{path}'."),
        ),
        status if status.is_client_error() => {
            let detail = if text.is_empty() {
                MALFORMED_MESSAGE.to_string()
            } else {
                text.to_string()
            };
            ApiError::new(ErrorCode::InvalidRequest, detail)
        }
        _ => ApiError::new(
            ErrorCode::InternalServerError,
            "An internal error occurred in the emulator.",
        ),
    }
}

pub fn too_large(limit: Option<usize>) -> ApiError {
    let message = match limit {
        Some(limit) => format!("The request body is larger than the limit of {limit} bytes."),
        None => "The request body is too large.".to_string(),
    };
    ApiError::new(ErrorCode::RequestEntityTooLarge, message)
}

/// Answers paths under a Graph version that match no route, as Graph does:
/// `400 BadRequest` "Resource not found for the segment '...'".
/// The router nests the version, so the original URI (which still has it) is read.
pub async fn graph_fallback(OriginalUri(uri): OriginalUri) -> Response {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let segment =
        first_unknown_segment(&segments).unwrap_or_else(|| segments.last().copied().unwrap_or(""));
    let segment = percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned();
    ApiError::new(
        ErrorCode::BadRequest,
        format!("Resource not found for the segment '{segment}'."),
    )
    .into_response()
}

/// Answers paths outside every surface gcemu serves.
pub async fn root_fallback(uri: Uri) -> Response {
    let path = uri.path();
    let first = path.split('/').find(|s| !s.is_empty()).unwrap_or("");
    let looks_like_version = first.starts_with('v')
        && first[1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit());
    if looks_like_version {
        return ApiError::new(ErrorCode::BadRequest, format!("Invalid version: {first}"))
            .into_response();
    }
    ApiError::new(
        ErrorCode::ResourceNotFound,
        format!("No resource was found at '{path}'."),
    )
    .into_response()
}

/// Navigation names gcemu knows; a segment after a collection name is a key, not a name.
const KNOWN_NAMES: &[&str] = &[
    "external",
    "connections",
    "schema",
    "operations",
    "items",
    "groups",
    "members",
    "quota",
    "search",
    "query",
    "users",
    "addActivities",
    "$ref",
    "microsoft.graph.externalConnectors.addActivities",
];
const COLLECTIONS: &[&str] = &[
    "connections",
    "operations",
    "items",
    "groups",
    "members",
    "users",
];

fn first_unknown_segment<'a>(segments: &[&'a str]) -> Option<&'a str> {
    // segments[0] is the version.
    let mut previous: Option<&str> = None;
    for segment in segments.iter().skip(1) {
        let is_key = previous.is_some_and(|previous| COLLECTIONS.contains(&previous));
        if !is_key && !KNOWN_NAMES.contains(segment) {
            return Some(segment);
        }
        previous = Some(if is_key { "" } else { segment });
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// The allocation-free check never skips a path that would be rewritten.
        #[test]
        fn a_path_told_normal_is_left_as_it_is(path in "/[a-zA-Z0-9/()'%$.:@-]{0,40}") {
            if is_normal(&path) {
                prop_assert_eq!(rebuilt_path(&path), None);
            }
        }
    }

    use super::*;

    #[test]
    fn empty_segments_and_trailing_slashes_are_removed() {
        assert_eq!(
            normalized_path("/v1.0//external/connections/").as_deref(),
            Some("/v1.0/external/connections")
        );
        assert_eq!(normalized_path("/v1.0/external/connections"), None);
    }

    #[test]
    fn odata_key_syntax_becomes_a_segment() {
        assert_eq!(
            normalized_path("/v1.0/external/connections('tickets')/schema").as_deref(),
            Some("/v1.0/external/connections/tickets/schema")
        );
        assert_eq!(
            normalized_path("/beta/external/connections(%27tickets%27)").as_deref(),
            Some("/beta/external/connections/tickets")
        );
        assert_eq!(
            normalized_path("/v1.0/external/connections('a''b c')").as_deref(),
            Some("/v1.0/external/connections/a'b%20c")
        );
    }

    #[test]
    fn the_first_unknown_segment_is_named() {
        assert_eq!(
            first_unknown_segment(&["v1.0", "external", "connectionz"]),
            Some("connectionz")
        );
        assert_eq!(
            first_unknown_segment(&["v1.0", "external", "connections", "abc", "nope"]),
            Some("nope")
        );
        assert_eq!(
            first_unknown_segment(&["v1.0", "external", "connections", "abc"]),
            None
        );
    }
}
