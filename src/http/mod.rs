//! The HTTP edge: routing, Graph's wire format, status codes and headers.
//!
//! Invariant: this is the only module that knows Graph JSON, HTTP status codes and headers.
//! Handlers extract, call one `service::` function, and render the result.

pub mod batch;
pub mod connections;
pub mod context;
pub mod control;
pub mod directory;
pub mod emulator;
pub mod error;
pub mod extract;
pub mod fixtures;
pub mod groups;
pub mod items;
pub mod odata;
pub mod retrieval;
pub mod schema;
pub mod search;

use axum::routing::{any, delete, get, post};
use axum::{middleware, Extension, Router};

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
    let graph = graph_routes();
    let router = Router::new()
        .nest("/v1.0", graph.clone().layer(Extension(ApiVersion::V1)))
        .nest("/beta", graph.layer(Extension(ApiVersion::Beta)))
        .nest("/_emulator", emulator::routes())
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

/// The Graph API table, the same under `/v1.0` and `/beta`.
fn graph_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/external/connections",
            get(connections::list).post(connections::create),
        )
        .route(
            "/external/connections/{connection_id}",
            get(connections::get)
                .patch(connections::update)
                .delete(connections::delete),
        )
        .route(
            "/external/connections/{connection_id}/schema",
            get(schema::get)
                .patch(schema::update)
                .post(schema::create)
                .delete(schema::delete),
        )
        .route(
            "/external/connections/{connection_id}/operations/{operation_id}",
            get(schema::get_operation),
        )
        .route("/external/connections/{connection_id}/quota", get(items::quota))
        .route("/external/connections/{connection_id}/items", any(items::collection))
        .route(
            "/external/connections/{connection_id}/items/{item_id}",
            get(items::get).put(items::put).patch(items::update).delete(items::delete),
        )
        .route(
            "/external/connections/{connection_id}/items/{item_id}/addActivities",
            post(items::add_activities),
        )
        .route(
            "/external/connections/{connection_id}/items/{item_id}/microsoft.graph.externalConnectors.addActivities",
            post(items::add_activities),
        )
        .route("/external/connections/{connection_id}/groups", post(groups::create))
        .route(
            "/external/connections/{connection_id}/groups/{group_id}",
            get(groups::get).patch(groups::update).delete(groups::delete),
        )
        .route("/external/connections/{connection_id}/groups/{group_id}/members", post(groups::add_member))
        .route(
            "/external/connections/{connection_id}/groups/{group_id}/members/{member_id}",
            delete(groups::remove_member),
        )
        .route("/$batch", post(batch::batch))
        .route("/search/query", post(search::query))
        .route("/copilot/retrieval", post(retrieval::retrieve))
        .route("/users", get(directory::list_users).post(directory::create_user))
        .route("/users/{user_id}", get(directory::get_user).delete(directory::delete_user))
        .route("/groups", get(directory::list_groups).post(directory::create_group))
        .route("/groups/{group_id}", get(directory::get_group).delete(directory::delete_group))
        .route("/groups/{group_id}/members", get(directory::list_members))
        .route("/groups/{group_id}/members/$ref", post(directory::add_member))
        .route("/groups/{group_id}/members/{member_id}/$ref", delete(directory::remove_member))
        .fallback(context::graph_fallback)
}
