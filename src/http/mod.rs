//! The HTTP edge: routing, Graph's wire format, status codes and headers.
//!
//! Invariant: this is the only module that knows Graph JSON, HTTP status codes and headers.
//! Handlers extract, call one `service::` function, and render the result.

pub mod applications;
pub mod batch;
pub mod connections;
pub mod console;
pub mod context;
pub mod control;
pub mod directory;
pub mod emulator;
pub mod error;
pub mod extract;
pub mod fixtures;
pub mod groups;
pub mod identity;
pub mod inspect;
pub mod items;
pub mod odata;
pub mod openapi;
pub mod paging;
pub mod retrieval;
pub mod schema;
pub mod search;

use axum::routing::any;
use axum::{middleware, Extension, Router};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::state::AppState;
use extract::ApiVersion;

/// Builds the whole router. Middleware, outermost first:
/// 1. `context::normalize_path` (applied in `app.rs` around the router, because it must run
///    before routing): path tolerances;
/// 2. `context::request_context`: request ids, Graph headers, error envelopes, access log.
///    Later layers (journal, faults, throttle, auth) go inside it, in that order.
///
/// `$batch` sends each sub-request through this same router (kept in `AppState::router`), after
/// `normalize_path`, so sub-requests get every layer above.
pub fn router(state: AppState) -> Router {
    let (routes, _) = route_table().split_for_parts();
    let router = routes
        .fallback(context::root_fallback)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            control::graph_control,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            context::request_context,
        ))
        .with_state(state.clone());
    state.router.set(router.clone());
    router
}

/// The OpenAPI document of every route `router` serves (`GET /_emulator/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, api) = route_table().split_for_parts();
    openapi::finish(api)
}

/// Every route, each registered with its documentation (`routes!` reads the path and methods
/// from the handler's `#[utoipa::path]`): the Graph table under `/v1.0` and `/beta`, and the
/// control plane under `/_emulator`.
fn route_table() -> OpenApiRouter<AppState> {
    let graph = graph_routes();
    OpenApiRouter::default()
        .nest("/v1.0", graph.clone().layer(Extension(ApiVersion::V1)))
        .nest("/beta", graph.layer(Extension(ApiVersion::Beta)))
        .nest("/_emulator", emulator::routes())
        .merge(identity::routes())
}

/// The same handler and documentation at a second path.
fn also_at(
    (schemas, mut paths, method_router): UtoipaMethodRouter<AppState>,
    path: &str,
    operation_id_suffix: &str,
) -> UtoipaMethodRouter<AppState> {
    let mut item = paths
        .paths
        .values()
        .next()
        .cloned()
        .expect("routes! documents one path");
    for (_, operation) in openapi::operations(&mut item) {
        operation.operation_id = operation
            .operation_id
            .take()
            .map(|id| format!("{id}{operation_id_suffix}"));
    }
    paths.paths.insert(path.to_string(), item);
    (schemas, paths, method_router)
}

/// The Graph API table, the same under `/v1.0` and `/beta`.
fn graph_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(connections::list, connections::create))
        .routes(routes!(
            connections::get,
            connections::update,
            connections::delete
        ))
        .routes(routes!(
            schema::get,
            schema::update,
            schema::create,
            schema::delete
        ))
        .routes(routes!(schema::get_operation))
        .routes(routes!(items::quota))
        // Any method: the collection answers 404 to all of them, as the live service does.
        .routes(routes!(items::collection).map(|_| any(items::collection)))
        .routes(routes!(
            items::get,
            items::put,
            items::update,
            items::delete
        ))
        .routes(also_at(
            routes!(items::add_activities),
            "/external/connections/{connection_id}/items/{item_id}/microsoft.graph.externalConnectors.addActivities",
            "Qualified",
        ))
        .routes(routes!(groups::create))
        .routes(routes!(groups::get, groups::update, groups::delete))
        .routes(routes!(groups::add_member))
        .routes(routes!(groups::remove_member))
        .routes(routes!(batch::batch))
        .routes(routes!(search::query))
        .routes(routes!(retrieval::retrieve))
        .routes(routes!(directory::list_users, directory::create_user))
        .routes(routes!(directory::get_user, directory::delete_user))
        .routes(routes!(directory::list_groups, directory::create_group))
        .routes(routes!(directory::get_group, directory::delete_group))
        .routes(routes!(directory::list_members))
        .routes(routes!(directory::add_member))
        .routes(routes!(directory::remove_member))
        .fallback(context::graph_fallback)
}
