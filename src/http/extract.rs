//! Extractors that make every request failure speak Graph: the request's Graph context
//! (version, base URL, caller), JSON object bodies, and typed reading of their members.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use serde_json::{Map, Value};

use super::context::too_large;
use super::error::{ApiError, ErrorCode};
use crate::auth;
use crate::domain::connection::parse_enum_member;
use crate::domain::principal::Caller;
use crate::state::AppState;

/// The Graph API version a request came in under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    V1,
    Beta,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "v1.0",
            ApiVersion::Beta => "beta",
        }
    }
}

/// What every Graph handler needs to know about its request.
#[derive(Debug, Clone)]
pub struct GraphRequest {
    pub version: ApiVersion,
    /// `scheme://host[:port]/{version}`, built from the request, for `Location` and `@odata.context`.
    pub base_url: String,
    /// The client asked for `odata.metadata=none`: leave out `@odata.*` annotations.
    pub metadata_none: bool,
    /// `Prefer: include-unknown-enum-members`: answer evolvable enum members by name.
    pub include_unknown_enum_members: bool,
    /// `Prefer: respond-async`.
    pub respond_async: bool,
    pub caller: Caller,
}

impl FromRequestParts<AppState> for GraphRequest {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<GraphRequest, ApiError> {
        let version = parts
            .extensions
            .get::<ApiVersion>()
            .copied()
            .unwrap_or(ApiVersion::V1);
        let origin = super::context::request_origin(parts);
        let metadata_none = parts
            .headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|value| contains_ignoring_case(value, "odata.metadata=none"));
        let prefer: Vec<String> = parts
            .headers
            .get_all("prefer")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(|preference| preference.trim().to_ascii_lowercase())
            .collect();
        // Read once, by the control middleware, which authenticates every Graph request; taken
        // rather than copied, as nothing else reads it.
        let caller = parts.extensions.remove::<Caller>().unwrap_or_else(|| {
            auth::caller_from_authorization(
                parts
                    .headers
                    .get(header::AUTHORIZATION)
                    .and_then(|value| value.to_str().ok()),
            )
        });
        let mut base_url = origin;
        base_url.push('/');
        base_url.push_str(version.as_str());
        Ok(GraphRequest {
            version,
            base_url,
            metadata_none,
            include_unknown_enum_members: prefer
                .iter()
                .any(|p| p == "include-unknown-enum-members"),
            respond_async: prefer.iter().any(|p| p == "respond-async"),
            caller,
        })
    }
}

/// Whether `text` contains the lowercase ASCII `needle`, in any letter case.
fn contains_ignoring_case(text: &str, needle: &str) -> bool {
    text.as_bytes()
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

impl GraphRequest {
    /// A response body that starts with `@odata.context` (`<base>/$metadata#<fragment>`),
    /// unless the client asked for `odata.metadata=none`.
    pub fn body_with_context(&self, fragment: &str) -> serde_json::Map<String, Value> {
        let mut body = serde_json::Map::new();
        if let Some(context) = self.context(fragment) {
            body.insert("@odata.context".into(), Value::String(context));
        }
        body
    }

    /// The `@odata.context` URL, unless the client asked for `odata.metadata=none`.
    pub fn context(&self, fragment: &str) -> Option<String> {
        (!self.metadata_none).then(|| format!("{}/$metadata#{fragment}", self.base_url))
    }
}

/// A request body that must be one JSON object, read within the configured size cap.
#[derive(Debug)]
pub struct JsonObject(pub Map<String, Value>);

impl FromRequest<AppState> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<JsonObject, ApiError> {
        JsonObject::read(request, state, state.config.max_body_bytes).await
    }
}

impl JsonObject {
    /// Reads the body as one JSON object of at most `limit` bytes.
    pub async fn read(
        request: Request,
        state: &AppState,
        limit: usize,
    ) -> Result<JsonObject, ApiError> {
        JsonBody::read(request, state, limit)
            .await?
            .into_object()
            .await
            .map(JsonObject)
    }
}

/// A request body that must be one JSON object, read within the configured size cap (its media
/// type, size and arrival checked) but not parsed yet: for handlers that read a common shape
/// straight into types, and fall back to `into_object` for everything else.
#[derive(Debug)]
pub struct JsonBody(pub axum::body::Bytes);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<JsonBody, ApiError> {
        JsonBody::read(request, state, state.config.max_body_bytes).await
    }
}

impl JsonBody {
    /// Reads the body, of at most `limit` bytes.
    pub async fn read(
        request: Request,
        state: &AppState,
        limit: usize,
    ) -> Result<JsonBody, ApiError> {
        if let Some(content_type) = request.headers().get(header::CONTENT_TYPE) {
            let content_type = content_type.to_str().unwrap_or_default();
            let essence = content_type.split(';').next().unwrap_or_default().trim();
            let is_json = |essence: &str| {
                essence.eq_ignore_ascii_case("application/json")
                    || essence.eq_ignore_ascii_case("text/json")
                    || essence
                        .len()
                        .checked_sub("+json".len())
                        .and_then(|start| essence.get(start..))
                        .is_some_and(|suffix| suffix.eq_ignore_ascii_case("+json"))
            };
            if !is_json(essence) {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    format!(
                        "The content type '{}' is not supported; send the body as application/json.",
                        essence.to_ascii_lowercase()
                    ),
                ));
            }
        }
        let declared_length = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok());
        if declared_length.is_some_and(|length| length > limit) {
            return Err(too_large(Some(limit)));
        }
        // A client that stops sending its body half-way does not hold the request forever.
        let read_timeout = state.config.body_read_timeout;
        let bytes = tokio::time::timeout(
            read_timeout,
            axum::body::to_bytes(request.into_body(), limit),
        )
        .await
        .map_err(|_| {
            ApiError::new(
                super::error::ErrorCode::RequestTimeout,
                format!(
                    "The request body did not arrive within {} seconds.",
                    read_timeout.as_secs_f64()
                ),
            )
        })?
        .map_err(|_| too_large(Some(limit)))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::deserialization(
                "The request body is empty; a JSON object is required.",
            ));
        }
        Ok(JsonBody(bytes))
    }

    /// Whether parsing the body is better done off the async workers.
    pub fn is_large(&self) -> bool {
        self.0.len() > LARGE_BODY_BYTES
    }

    /// The body as a JSON object.
    pub async fn into_object(self) -> Result<Map<String, Value>, ApiError> {
        let large = self.is_large();
        let bytes = self.0;
        let parse = move || {
            serde_json::from_slice::<Value>(&bytes).map_err(|error| {
                ApiError::deserialization(format!("The request body is not valid JSON: {error}."))
            })
        };
        // Parsing megabytes takes milliseconds: keep it off the async workers.
        let value = if large {
            tokio::task::spawn_blocking(parse)
                .await
                .map_err(|_| ApiError::invalid("The request body could not be parsed."))??
        } else {
            parse()?
        };
        match value {
            Value::Object(map) => Ok(map),
            other => Err(ApiError::deserialization(format!(
                "The request body must be a JSON object, not {}.",
                json_kind(&other)
            ))),
        }
    }
}

/// Bodies larger than this are parsed on a blocking thread.
const LARGE_BODY_BYTES: usize = 256 * 1024;

pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Typed access to the members of a JSON object that represents the Graph type `type_name`.
/// Absent and `null` are distinguished: `Option<Option<T>>` is `None` when absent.
pub struct Members<'a> {
    map: &'a Map<String, Value>,
    type_name: &'static str,
    path: MembersPath,
}

/// Where the object sits in the body, for error targets; written out only for an error.
enum MembersPath {
    Root,
    Named(String),
    /// The element at an index of a list member: `acl[3]`.
    Element(&'static str, usize),
}

impl<'a> Members<'a> {
    pub fn new(map: &'a Map<String, Value>, type_name: &'static str) -> Members<'a> {
        Members {
            map,
            type_name,
            path: MembersPath::Root,
        }
    }

    /// Members of the object at `list[index]` (an element of a list member).
    pub fn element(
        map: &'a Map<String, Value>,
        type_name: &'static str,
        list: &'static str,
        index: usize,
    ) -> Members<'a> {
        Members {
            map,
            type_name,
            path: MembersPath::Element(list, index),
        }
    }

    /// Where the object sits in the body (`acl[3]`), empty at the top level.
    pub fn path(&self) -> String {
        match &self.path {
            MembersPath::Root => String::new(),
            MembersPath::Named(path) => path.clone(),
            MembersPath::Element(list, index) => format!("{list}[{index}]"),
        }
    }

    /// Refuses members that `type_name` does not declare, as OData does, and a top-level
    /// `@odata.type` naming another type. Instance annotations (`name@odata.type`) are allowed.
    pub fn allow_only(&self, declared: &[&str]) -> Result<(), ApiError> {
        for name in self.map.keys() {
            if name == "@odata.type" {
                let odata_type = self.map[name]
                    .as_str()
                    .unwrap_or_default()
                    .trim_start_matches('#');
                if !odata_type.eq_ignore_ascii_case(self.type_name) {
                    return Err(ApiError::deserialization(format!(
                        "A type named '{odata_type}' could not be resolved by the model. When a model is available, each type name must resolve to a valid type."
                    )));
                }
                continue;
            }
            if name.starts_with('@') || name.contains("@odata.") {
                continue;
            }
            if !declared.contains(&name.as_str()) {
                return Err(ApiError::deserialization(format!(
                    "The property '{name}' does not exist on type '{}'. Make sure to only use property names that are defined by the type.",
                    self.type_name
                ))
                .with_target(self.target(name)));
            }
        }
        Ok(())
    }

    fn target(&self, name: &str) -> String {
        let path = self.path();
        if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    }

    fn wrong_kind(&self, name: &str, expected: &str, value: &Value) -> ApiError {
        ApiError::deserialization(format!(
            "Cannot convert the value of '{}' to {expected}: {} was sent.",
            self.target(name),
            json_kind(value)
        ))
        .with_target(self.target(name))
    }

    /// Members of a nested object, with error targets under `path`.
    pub fn nested(
        map: &'a Map<String, Value>,
        type_name: &'static str,
        path: String,
    ) -> Members<'a> {
        Members {
            map,
            type_name,
            path: MembersPath::Named(path),
        }
    }

    /// A Boolean member; the strings "true" and "false" (any case) are accepted as the docs' own samples send them.
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(Value::String(text)) if text.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(text)) if text.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(other) => Err(self.wrong_kind(name, "Edm.Boolean", other)),
        }
    }

    /// A collection of strings.
    pub fn strings(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(values)) => values
                .iter()
                .map(|value| {
                    value
                        .as_str()
                        .map(str::to_string)
                        .ok_or_else(|| self.wrong_kind(name, "a collection of Edm.String", value))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.wrong_kind(name, "a collection", other)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name)
    }

    pub fn string(&self, name: &str) -> Result<Option<Option<String>>, ApiError> {
        Ok(self.str(name)?.map(|text| text.map(str::to_string)))
    }

    /// `string`, borrowed from the body.
    pub fn str(&self, name: &str) -> Result<Option<Option<&'a str>>, ApiError> {
        match self.map.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(text)) => Ok(Some(Some(text.as_str()))),
            Some(other) => Err(self.wrong_kind(name, "Edm.String", other)),
        }
    }

    /// A JSON object member (kept as JSON).
    pub fn object(&self, name: &str) -> Result<Option<Option<Value>>, ApiError> {
        match self.map.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(value @ Value::Object(_)) => Ok(Some(Some(value.clone()))),
            Some(other) => Err(self.wrong_kind(name, "an object", other)),
        }
    }

    /// An enum member, accepted in any letter case and answered in Graph's spelling.
    pub fn enum_member(
        &self,
        name: &str,
        members: &[&'static str],
    ) -> Result<Option<&'static str>, ApiError> {
        match self.map.get(name) {
            None => Ok(None),
            Some(Value::String(raw)) => {
                parse_enum_member(members, raw).map(Some).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "'{raw}' is not a valid value for '{}'; use one of: {}.",
                        self.target(name),
                        members.join(", ")
                    ))
                    .with_target(self.target(name))
                })
            }
            Some(other) => Err(self.wrong_kind(name, "an enum member", other)),
        }
    }

    /// A collection of enum members, each accepted in any letter case.
    pub fn enum_collection(
        &self,
        name: &str,
        members: &[&'static str],
    ) -> Result<Option<Vec<&'static str>>, ApiError> {
        match self.map.get(name) {
            None => Ok(None),
            Some(Value::Array(values)) => values
                .iter()
                .map(|value| {
                    let raw = value.as_str().unwrap_or_default();
                    parse_enum_member(members, raw).ok_or_else(|| {
                        ApiError::invalid(format!(
                            "'{raw}' is not a valid value for '{}'; use one of: {}.",
                            self.target(name),
                            members.join(", ")
                        ))
                        .with_target(self.target(name))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.wrong_kind(name, "a collection", other)),
        }
    }
}
