//! `GET /_emulator/openapi.json`: an OpenAPI 3.1 description of every route gcemu serves.
//!
//! The document is generated from the code: each handler carries a `#[utoipa::path]`
//! attribute, and `http::route_table` registers handlers through `utoipa_axum::routes!`, which
//! takes the route's path and methods from that attribute. So the router and the document are
//! built from one table, and a route registered another way is caught by `tests/api/openapi.rs`.
//! The bodies' schemas are the types of `wire` (documentation only: handlers read raw JSON).
//!
//! `finish` adds what every operation shares, in one place: Graph's error envelope for `4XX`
//! and `5XX`, the optional bearer token on Graph routes, and operation ids made unique per
//! API version.

pub mod wire;

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::Response as ResponseObject;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, ObjectBuilder, OpenApi, Ref, RefOr, ResponseBuilder, Type};

/// Tags, in the order a reader meets them.
pub const TAGS: &[(&str, &str)] = &[
    (
        "connections",
        "External connections (`/external/connections`).",
    ),
    (
        "schema",
        "A connection's schema and its registration operations.",
    ),
    (
        "items",
        "External items, their activities, and the beta quota.",
    ),
    (
        "external groups",
        "A connection's external groups and their members.",
    ),
    (
        "search",
        "Microsoft Search over external items, trimmed by ACLs.",
    ),
    (
        "retrieval",
        "The Copilot Retrieval API over external items.",
    ),
    ("batch", "JSON batching."),
    (
        "directory",
        "The Entra directory subset: users, groups, memberships.",
    ),
    (
        "control plane",
        "gcemu's own endpoints under `/_emulator` (never under a Graph version).",
    ),
    (
        "console",
        "The web console at `/_emulator/ui/` and the control-plane reads it is built on (tenants, overview, items, groups, the hidden list).",
    ),
    (
        "identity",
        "gcemu as the tenant's Entra: the token endpoint, OpenID metadata, signing keys and instance discovery (errors in Entra's shape).",
    ),
];

/// The document's fixed parts: title, version, description, tags and shared components.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "gcemu",
        description = "An offline emulator of the Microsoft Graph connectors API. Graph routes are served under `/v1.0` and `/beta` (one route table; members marked \"beta only\" are refused or left out on `/v1.0`), gcemu's control plane under `/_emulator`, the identity provider under `/{tenant}/`. Every error is Graph's error envelope, except the token endpoint's (Entra's). Paths also accept OData key syntax (`connections('id')`), an empty segment after the version and a trailing slash; those spellings are not listed."
    ),
    components(schemas(wire::ErrorEnvelope))
)]
struct Base;

/// The name of the shared error response in `components.responses`.
const ERROR_RESPONSE: &str = "GraphError";

/// Adds what every operation shares to the document the route table produced.
pub fn finish(mut api: OpenApi) -> OpenApi {
    use utoipa::OpenApi as _;
    let base = Base::openapi();
    api.info = base.info;
    api.tags = Some(
        TAGS.iter()
            .map(|(name, description)| {
                utoipa::openapi::tag::TagBuilder::new()
                    .name(*name)
                    .description(Some(*description))
                    .build()
            })
            .collect(),
    );
    let components = api.components.get_or_insert_with(Default::default);
    if let Some(base_components) = base.components {
        components.schemas.extend(base_components.schemas);
    }
    let mut error_response = ResponseBuilder::new()
        .description("Graph's error envelope.")
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorEnvelope"))),
        )
        .build();
    add_request_id_headers(&mut error_response);
    components
        .responses
        .insert(ERROR_RESPONSE.to_string(), RefOr::T(error_response));
    components.security_schemes.insert(
        "bearer".to_string(),
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "A token from `POST /_emulator/token`, `gcemu token` or the offline token endpoints. In lenient mode (the default) it may be left out.",
                ))
                .build(),
        ),
    );

    let mut operation_ids = std::collections::HashSet::new();
    for (path, item) in api.paths.paths.iter_mut() {
        let version = ["v1.0", "beta"]
            .into_iter()
            .find(|version| path.starts_with(&format!("/{version}/")));
        for (method, operation) in operations(item) {
            // Unique ids: per version, and per method where one handler serves several.
            if let Some(id) = operation.operation_id.take() {
                let id = match version {
                    Some(version) => format!("{}_{id}", version.replace('.', "_")),
                    None => id,
                };
                let id = if operation_ids.contains(&id) {
                    format!("{id}_{method}")
                } else {
                    id
                };
                operation_ids.insert(id.clone());
                operation.operation_id = Some(id);
            }
            if version.is_some() {
                operation.security = Some(vec![
                    SecurityRequirement::default(),
                    SecurityRequirement::new("bearer", Vec::<String>::new()),
                ]);
            }
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    add_request_id_headers(response);
                }
            }
            for range in ["4XX", "5XX"] {
                operation
                    .responses
                    .responses
                    .entry(range.to_string())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(ERROR_RESPONSE)));
            }
        }
    }
    api
}

/// Every response carries `request-id` and `client-request-id` (`http::context`).
fn add_request_id_headers(response: &mut ResponseObject) {
    for (name, description) in [
        (
            "request-id",
            "A new id for this request (also in `innerError`).",
        ),
        (
            "client-request-id",
            "The client's `client-request-id`, echoed, or the request id when it sent none.",
        ),
    ] {
        response.headers.insert(
            name.to_string(),
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some(description))
                .build(),
        );
    }
}

/// The operations of a path item, with their methods.
pub fn operations(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("options", &mut item.options),
        ("head", &mut item.head),
        ("patch", &mut item.patch),
        ("trace", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.as_mut().map(|operation| (method, operation)))
}

/// The whole document, built once.
pub fn document_json() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        super::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serializes")
    })
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "control plane",
    operation_id = "getOpenApiDocument",
    responses((status = 200, description = "This OpenAPI 3.1 document.", content_type = "application/json", body = Object))
)]
pub async fn document() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document_json(),
    )
        .into_response()
}
