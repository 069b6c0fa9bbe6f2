//! Use cases: each function takes the caller (and so its tenant), applies the domain rules,
//! and reads or writes the store. Handlers in `http/` call exactly one of these.
//!
//! `Error` says what went wrong in the emulator's terms; `http::error` alone maps it to Graph's
//! status codes and error codes.

pub mod access;
pub mod applications;
pub mod authorization;
pub mod connections;
pub mod control;
pub mod directory;
pub mod fixtures;
pub mod groups;
pub mod hit_cache;
pub mod items;
pub mod retrieval;
pub mod schema;
pub mod search;
pub mod sign_in;

use crate::domain::Violation;
use crate::store::{JobError, StoreError};

/// The kinds of resource a `NotFound` or `AlreadyExists` can name (Graph's `innerError.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Connection,
    Schema,
    Operation,
    Item,
    User,
    Group,
    ExternalGroup,
    Application,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Connection => "Connection",
            ResourceKind::Schema => "Schema",
            ResourceKind::Operation => "Operation",
            ResourceKind::Item => "Item",
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
            ResourceKind::ExternalGroup => "ExternalGroup",
            ResourceKind::Application => "Application",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("'{}' was not found", kind.as_str())]
    NotFound { kind: ResourceKind, id: String },
    #[error("{} '{id}' already exists", kind.as_str())]
    AlreadyExists { kind: ResourceKind, id: String },
    #[error("{0}")]
    Invalid(Violation),
    /// A value that does not fit the schema (Graph answers these with `BadRequest`).
    #[error("{0}")]
    Mismatch(Violation),
    /// The resource's state does not allow the request (for example items on a draft connection).
    #[error("{0}")]
    InvalidState(String),
    #[error("{0}")]
    QuotaExceeded(String),
    /// The caller may not do this (for example an app-only token searching external items).
    #[error("{0}")]
    Forbidden(String),
    /// Strict mode: the token lacks the permission the endpoint requires (a full sentence).
    #[error("{0}")]
    PermissionDenied(String),
    /// Strict mode: an app holding only `OwnedBy` permissions acts on a connection it does not own.
    #[error("{0}")]
    NotOwner(String),
    /// The request clashes with the resource's current state (for example an operation in progress).
    #[error("{0}")]
    Conflict(String),
    /// The emulator cannot serve this now (a stopped store or indexer, a connection whose index
    /// failed to commit and is being rebuilt); Graph answers such cases with 503.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Error {
        match error {
            StoreError::Closed => Error::Unavailable("the emulator's store has stopped".into()),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<JobError<Error>> for Error {
    fn from(error: JobError<Error>) -> Error {
        match error {
            JobError::Refused(refusal) => refusal,
            JobError::Store(error) => Error::from(error),
        }
    }
}

/// What a store write job that may refuse returns (see `Store::write_or_refuse`).
pub(crate) type JobResult<T> = Result<T, JobError<Error>>;

impl From<crate::index::IndexError> for Error {
    fn from(error: crate::index::IndexError) -> Error {
        Error::Internal(error.to_string())
    }
}

impl From<Violation> for Error {
    fn from(violation: Violation) -> Error {
        Error::Invalid(violation)
    }
}
