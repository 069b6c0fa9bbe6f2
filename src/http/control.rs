//! What every Graph request (`/v1.0`, `/beta`, also each `$batch` sub-request) passes through
//! inside the request context: throttling, then fault rules, then the handler; and afterwards
//! its entry in the request journal.

use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::context::RequestIds;
use super::error::{ApiError, ErrorCode};
use crate::service::control::journal::Entry;
use crate::service::control::throttle;
use crate::state::AppState;

/// Marks a `$batch` sub-request: `"<batch request id>/<sub-request id>"`, for its journal entry.
#[derive(Debug, Clone)]
pub struct BatchMember(pub String);

fn is_graph_path(path: &str) -> bool {
    let version = path.trim_start_matches('/').split('/').next().unwrap_or("");
    version.eq_ignore_ascii_case("v1.0") || version.eq_ignore_ascii_case("beta")
}

/// An answer with `Retry-After`.
fn with_retry_after(mut response: Response, seconds: Option<u64>) -> Response {
    if let Some(seconds) = seconds {
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    response
}

/// Graph's `WWW-Authenticate` on a `401`.
const WWW_AUTHENTICATE: &str = "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"";

/// A `401`, with Graph's `WWW-Authenticate`.
fn unauthorized(error: ApiError) -> Response {
    let mut response = error.into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(WWW_AUTHENTICATE),
    );
    response
}

/// The decoded path segments after the version (`/v1.0/external/connections/c1` gives
/// `external`, `connections`, `c1`).
fn segments_after_version(path: &str) -> Vec<std::borrow::Cow<'_, str>> {
    path.split('/')
        .filter(|segment| !segment.is_empty())
        .skip(1)
        .map(|segment| percent_encoding::percent_decode_str(segment).decode_utf8_lossy())
        .collect()
}

pub async fn graph_control(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    if !is_graph_path(&path) {
        return next.run(request).await;
    }
    let started = Instant::now();
    let time = state.clock.now();
    let method = request.method().to_string();
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    // A refused token's claims are not believed: its journal entry goes under no tenant, so a
    // forged `tid` cannot put entries into another tenant's report.
    let (mut caller, refused) = match crate::auth::authenticate(
        state.config.auth,
        &state.identity.key,
        time,
        authorization,
    ) {
        Ok(caller) => (caller, None),
        Err(failure) => {
            let mut unchecked = crate::auth::caller_from_authorization(authorization);
            unchecked.tenant = crate::domain::ids::TenantId::unauthenticated();
            (unchecked, Some(failure))
        }
    };
    let client_request_id = request
        .extensions()
        .get::<RequestIds>()
        .map(|ids| ids.client_request_id.clone())
        .unwrap_or_default();
    let batch = request
        .extensions()
        .get::<BatchMember>()
        .map(|member| member.0.clone());
    let proxied_host = request
        .extensions()
        .get::<super::context::Proxied>()
        .map(|proxied| proxied.host.clone());
    let request_bytes = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        .unwrap_or(0);
    let mut fault = None;
    let mut throttled = false;

    let response = 'answer: {
        if let Some(failure) = refused {
            break 'answer unauthorized(ApiError::new(
                ErrorCode::InvalidAuthenticationToken,
                failure.message(),
            ));
        }
        let segments = segments_after_version(&path);
        if let Err(error) =
            crate::service::authorization::authorize(&state, &mut caller, &method, &segments).await
        {
            let error = ApiError::from(error);
            break 'answer if error.code == ErrorCode::Unauthorized {
                unauthorized(error)
            } else {
                error.into_response()
            };
        }
        request.extensions_mut().insert(caller.clone());
        // Throttling first: a request the limits refuse never reaches a fault rule, and a request
        // slowed by a rule's delay counts as in flight.
        let admission = match throttle::connection_key(caller.tenant.as_str(), &path) {
            None => None,
            Some(key) => match state.control.throttle.admit(&key, time) {
                Ok(admission) => Some(admission),
                Err(refusal) => {
                    throttled = true;
                    break 'answer with_retry_after(
                        ApiError::new(
                            ErrorCode::TooManyRequests,
                            format!(
                                "Too many requests to this connection ({} over the emulator's --throttle limits); retry after {} seconds.",
                                refusal.reason, refusal.retry_after_seconds
                            ),
                        )
                        .into_response(),
                        Some(refusal.retry_after_seconds),
                    );
                }
            },
        };
        if let Some(firing) = state.control.faults.fire(&method, &path) {
            fault = Some(firing.rule_id.clone());
            if firing.delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(firing.delay_ms)).await;
            }
            if let Some((status, code, message)) = firing.answer {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                break 'answer with_retry_after(
                    ApiError::injected(status, code, message).into_response(),
                    firing.retry_after_seconds,
                );
            }
        }
        let response = next.run(request).await;
        drop(admission);
        response
    };

    let error = response.extensions().get::<ApiError>();
    let retry_after_seconds = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    state.control.journal.record(Entry {
        sequence: 0,
        time,
        method,
        path,
        status: response.status().as_u16(),
        duration_ms: started.elapsed().as_millis() as u64,
        tenant: caller.tenant.as_str().to_string(),
        caller: caller.user.clone().unwrap_or_else(|| caller.app_id.clone()),
        client_request_id,
        request_bytes,
        error_code: error.map(|error| error.code_str().to_string()),
        error_message: error
            .map(|error| crate::domain::excerpt(&error.full_message(), 300).into_owned()),
        retry_after_seconds,
        fault,
        throttled,
        batch,
        proxied_host,
    });
    response
}
