//! Graph's error envelope and the one catalogue of error codes the emulator answers with.
//!
//! An `ApiError` becomes a response carrying the error as an extension; the request-context
//! middleware (`http::context`) renders the envelope, because only it knows the request ids
//! and the date that `innerError` must carry.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::service::{self, ResourceKind};

/// Every top-level `error.code` gcemu sends, with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Malformed request or a rule violation on a connection, schema or group (spec/README.md).
    InvalidRequest,
    /// Unknown path segment (Graph's generic answer) or an item value not matching the schema.
    BadRequest,
    /// Unknown resource (captured: `ItemNotFound` with inner `ResourceNotFound`, evidence 1.2).
    ItemNotFound,
    /// Path outside every API surface gcemu serves.
    ResourceNotFound,
    MethodNotAllowed,
    /// Duplicate id.
    Conflict,
    /// The caller may not do this.
    Forbidden,
    /// A missing, malformed, unsigned, expired or foreign-audience token (strict mode; a bad `tid`
    /// in both modes).
    InvalidAuthenticationToken,
    /// The token lacks the permission the endpoint requires.
    AuthorizationRequestDenied,
    /// An `OwnedBy` app acting on a connection it does not own (observed as 401, evidence 1.15).
    Unauthorized,
    /// Request body over the size cap.
    RequestEntityTooLarge,
    /// Body sent with a content type other than JSON.
    UnsupportedMediaType,
    /// A tenant limit reached (connections per tenant).
    QuotaLimitReached,
    /// What the live service answers to `DELETE .../schema` (evidence 1.3).
    UnknownError,
    /// Entra directory endpoints: unknown user or group.
    RequestResourceNotFound,
    /// Entra directory endpoints: a refused request.
    RequestBadRequest,
    /// Entra directory endpoints: a query option out of range (`$top` above 999).
    RequestUnsupportedQuery,
    /// Entra directory endpoints: a `$skiptoken` that is no longer valid.
    DirectoryExpiredPageToken,
    InternalServerError,
    /// The request body did not arrive in time.
    RequestTimeout,
    /// The emulator cannot serve the request now (a stopped thread, a broken index).
    ServiceNotAvailable,
    /// `--throttle` or `--throttle-concurrency` was exceeded.
    TooManyRequests,
    /// A `$batch` sub-request not run because a request it depends on failed.
    FailedDependency,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "InvalidRequest",
            ErrorCode::BadRequest => "BadRequest",
            ErrorCode::ItemNotFound => "ItemNotFound",
            ErrorCode::ResourceNotFound => "ResourceNotFound",
            ErrorCode::MethodNotAllowed => "MethodNotAllowed",
            ErrorCode::Conflict => "Conflict",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::InvalidAuthenticationToken => "InvalidAuthenticationToken",
            ErrorCode::AuthorizationRequestDenied => "Authorization_RequestDenied",
            ErrorCode::Unauthorized => "Unauthorized",
            ErrorCode::RequestEntityTooLarge => "RequestEntityTooLarge",
            ErrorCode::UnsupportedMediaType => "UnsupportedMediaType",
            ErrorCode::QuotaLimitReached => "QuotaLimitReached",
            ErrorCode::UnknownError => "UnknownError",
            ErrorCode::RequestResourceNotFound => "Request_ResourceNotFound",
            ErrorCode::RequestBadRequest => "Request_BadRequest",
            ErrorCode::RequestUnsupportedQuery => "Request_UnsupportedQuery",
            ErrorCode::DirectoryExpiredPageToken => "Directory_ExpiredPageToken",
            ErrorCode::InternalServerError => "InternalServerError",
            ErrorCode::ServiceNotAvailable => "serviceNotAvailable",
            ErrorCode::RequestTimeout => "requestTimeout",
            ErrorCode::TooManyRequests => "TooManyRequests",
            ErrorCode::FailedDependency => "FailedDependency",
        }
    }

    pub fn http_status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidRequest
            | ErrorCode::BadRequest
            | ErrorCode::RequestBadRequest
            | ErrorCode::RequestUnsupportedQuery
            | ErrorCode::DirectoryExpiredPageToken => StatusCode::BAD_REQUEST,
            ErrorCode::RequestResourceNotFound => StatusCode::NOT_FOUND,
            ErrorCode::ItemNotFound | ErrorCode::ResourceNotFound | ErrorCode::UnknownError => {
                StatusCode::NOT_FOUND
            }
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::Forbidden | ErrorCode::AuthorizationRequestDenied => StatusCode::FORBIDDEN,
            ErrorCode::InvalidAuthenticationToken | ErrorCode::Unauthorized => {
                StatusCode::UNAUTHORIZED
            }
            ErrorCode::RequestEntityTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::QuotaLimitReached => StatusCode::FORBIDDEN,
            ErrorCode::InternalServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::ServiceNotAvailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::FailedDependency => StatusCode::FAILED_DEPENDENCY,
        }
    }
}

/// The more specific diagnostics Graph puts inside `innerError` (`code`, `source`, `message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerError {
    pub code: &'static str,
    pub source: Option<&'static str>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub target: Option<String>,
    pub inner: Option<InnerError>,
    /// What few errors carry (boxed: every `Result` carries the size of its error).
    pub extra: Option<Box<ErrorExtra>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorExtra {
    /// Graph's `error.details`: one entry per problem when a request has several.
    pub details: Vec<ErrorDetail>,
    /// A status and code chosen by a fault rule, outside the catalogue.
    pub injected: Option<(StatusCode, String)>,
}

/// One entry of `error.details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDetail {
    pub code: &'static str,
    pub message: String,
    pub target: String,
}

/// The message the live service gives for malformed requests (evidence 1.8, 1.9).
pub const MALFORMED_MESSAGE: &str = "The request is malformed or incorrect.";

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            target: None,
            inner: None,
            extra: None,
        }
    }

    pub fn with_details(mut self, details: Vec<ErrorDetail>) -> ApiError {
        self.extra.get_or_insert_with(Box::default).details = details;
        self
    }

    /// An answer chosen by a fault rule: any error status, any code.
    pub fn injected(status: StatusCode, code: String, message: String) -> ApiError {
        let mut error = ApiError::new(ErrorCode::InternalServerError, message);
        error.extra.get_or_insert_with(Box::default).injected = Some((status, code));
        error
    }

    pub fn details(&self) -> &[ErrorDetail] {
        self.extra.as_ref().map_or(&[], |extra| &extra.details)
    }

    /// The `error.code` string sent.
    pub fn code_str(&self) -> &str {
        match self
            .extra
            .as_ref()
            .and_then(|extra| extra.injected.as_ref())
        {
            Some((_, code)) => code,
            None => self.code.as_str(),
        }
    }

    /// The whole explanation in one sentence or two: the message, then the inner message
    /// where it adds to it (as for malformed bodies).
    pub fn full_message(&self) -> String {
        match &self.inner {
            Some(inner) if inner.message != self.message => {
                format!("{} {}", self.message, inner.message)
            }
            _ => self.message.clone(),
        }
    }

    pub fn with_inner(
        mut self,
        code: &'static str,
        source: Option<&'static str>,
        message: impl Into<String>,
    ) -> ApiError {
        self.inner = Some(InnerError {
            code,
            source,
            message: message.into(),
        });
        self
    }

    pub fn with_target(mut self, target: impl Into<String>) -> ApiError {
        self.target = Some(target.into());
        self
    }

    /// A body that cannot be read as the expected type: `InvalidRequest` + inner `DeserializationError`.
    pub fn deserialization(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidRequest, MALFORMED_MESSAGE).with_inner(
            "DeserializationError",
            None,
            message,
        )
    }

    /// A rule violation: `InvalidRequest` whose message says what was wrong.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidRequest, message)
    }

    pub fn not_found(source: &'static str) -> ApiError {
        ApiError::new(
            ErrorCode::ItemNotFound,
            "The requested resource does not exist.",
        )
        .with_inner(
            "ResourceNotFound",
            Some(source),
            format!("'{source}' was not found."),
        )
    }

    pub fn status(&self) -> StatusCode {
        match self
            .extra
            .as_ref()
            .and_then(|extra| extra.injected.as_ref())
        {
            Some((status, _)) => *status,
            None => self.code.http_status(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status().into_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl ApiError {
    /// The Entra directory's own error vocabulary (`Request_ResourceNotFound`, `Request_BadRequest`)
    /// for errors of the `/users` and `/groups` endpoints.
    pub fn from_directory(error: service::Error) -> ApiError {
        match error {
            service::Error::NotFound { id, .. } => ApiError::new(
                ErrorCode::RequestResourceNotFound,
                format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
            ),
            service::Error::Invalid(violation) => {
                ApiError::new(ErrorCode::RequestBadRequest, as_sentence(&violation.message)).with_target(violation.target)
            }
            service::Error::AlreadyExists { kind: ResourceKind::User, .. } => ApiError::new(
                ErrorCode::RequestBadRequest,
                "Another object with the same value for property userPrincipalName already exists.",
            )
            .with_target("userPrincipalName"),
            service::Error::AlreadyExists { id, .. } => {
                ApiError::new(ErrorCode::RequestBadRequest, format!("Another object with the id '{id}' already exists."))
                    .with_target("id")
            }
            service::Error::Conflict(_) => ApiError::new(
                ErrorCode::RequestBadRequest,
                "One or more added object references already exist for the following modified properties: 'members'.",
            )
            .with_target("members"),
            other => ApiError::from(other),
        }
    }
}

impl From<service::Error> for ApiError {
    fn from(error: service::Error) -> ApiError {
        match error {
            service::Error::NotFound { kind, .. } => ApiError::not_found(kind.as_str()),
            service::Error::AlreadyExists { kind, id } => {
                let what = match kind {
                    ResourceKind::Connection => "A connection",
                    ResourceKind::Schema => "A schema",
                    ResourceKind::Operation => "An operation",
                    ResourceKind::Item => "An item",
                    ResourceKind::User => "A user",
                    ResourceKind::Group => "A group",
                    ResourceKind::ExternalGroup => "An external group",
                    ResourceKind::Application => "An application",
                };
                ApiError::new(
                    ErrorCode::Conflict,
                    format!("{what} with the id '{id}' already exists."),
                )
            }
            service::Error::Invalid(violation) => {
                ApiError::invalid(as_sentence(&violation.message)).with_target(violation.target)
            }
            service::Error::Mismatch(violation) => {
                ApiError::new(ErrorCode::BadRequest, as_sentence(&violation.message))
                    .with_target(violation.target)
            }
            service::Error::InvalidState(message) => ApiError::invalid(as_sentence(&message)),
            service::Error::Forbidden(message) => {
                ApiError::new(ErrorCode::Forbidden, as_sentence(&message))
            }
            service::Error::PermissionDenied(message) => {
                ApiError::new(ErrorCode::AuthorizationRequestDenied, message)
            }
            service::Error::NotOwner(message) => ApiError::new(ErrorCode::Unauthorized, message),
            service::Error::Conflict(message) => ApiError::new(ErrorCode::Conflict, message),
            service::Error::QuotaExceeded(message) => {
                ApiError::new(ErrorCode::QuotaLimitReached, as_sentence(&message))
            }
            service::Error::Unavailable(message) => {
                tracing::warn!(reason = %message, "service unavailable");
                ApiError::new(ErrorCode::ServiceNotAvailable, as_sentence(&message))
            }
            service::Error::Internal(message) => {
                tracing::error!(error = %message, "internal error");
                ApiError::new(
                    ErrorCode::InternalServerError,
                    "An internal error occurred in the emulator.",
                )
            }
        }
    }
}

/// Domain messages are lowercase fragments; Graph's `message` is a sentence.
fn as_sentence(fragment: &str) -> String {
    let mut chars = fragment.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut sentence: String = first.to_uppercase().chain(chars).collect();
    if !sentence.ends_with('.') {
        sentence.push('.');
    }
    sentence
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_to_an_error_status() {
        for code in [
            ErrorCode::InvalidRequest,
            ErrorCode::BadRequest,
            ErrorCode::ItemNotFound,
            ErrorCode::ResourceNotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::Conflict,
            ErrorCode::Forbidden,
            ErrorCode::InvalidAuthenticationToken,
            ErrorCode::AuthorizationRequestDenied,
            ErrorCode::Unauthorized,
            ErrorCode::RequestEntityTooLarge,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::QuotaLimitReached,
            ErrorCode::UnknownError,
            ErrorCode::RequestResourceNotFound,
            ErrorCode::RequestBadRequest,
            ErrorCode::InternalServerError,
            ErrorCode::ServiceNotAvailable,
            ErrorCode::RequestTimeout,
            ErrorCode::FailedDependency,
        ] {
            assert!(code.http_status().is_client_error() || code.http_status().is_server_error());
            assert!(!code.as_str().is_empty());
        }
    }
}
