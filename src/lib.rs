//! gcemu: an offline emulator of the Microsoft Graph connectors API.
//!
//! See `ARCHITECTURE.md` for the map: `http` (wire format) calls `service` (use cases), which
//! applies `domain` rules (pure) and reads and writes `store` (SQLite, the source of truth).

pub mod app;
pub mod auth;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod conformance;
pub mod domain;
pub mod expect;
pub mod healthcheck;
pub mod http;
pub mod identity;
pub mod index;
pub mod proxy;
pub mod report_cli;
pub mod service;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod token_cli;
