//! One integration test binary: each module talks HTTP to a real server on a loopback port.

mod access;
mod batch;
mod connections;
mod console;
mod control;
mod fixtures;
mod hardening;
mod hardening_directory;
mod hardening_linear;
mod helpers;
mod hostile_props;
mod identity;
mod items;
mod items_props;
mod openapi;
mod proxy;
mod report;
mod retrieval;
mod schema;
mod schema_props;
mod search;
mod search_props;
mod search_results;
mod wire;
