//! Strict mode's permission check: the permission each endpoint requires (domain::permissions),
//! and for `OwnedBy` permissions, ownership of the connection the request names.

use super::Error;
use crate::auth::AuthMode;
use crate::domain::ids::ConnectionId;
use crate::domain::permissions::{self, Decision, Operation};
use crate::domain::principal::{Caller, ConnectionScope};
use crate::state::AppState;
use crate::store;

/// Checks that `caller` may send `method` to `segments` (the decoded path after the version);
/// records in `caller.connection_scope` which connections its permissions cover. Lenient mode
/// allows everything.
pub async fn authorize(
    state: &AppState,
    caller: &mut Caller,
    method: &str,
    segments: &[std::borrow::Cow<'_, str>],
) -> Result<(), Error> {
    if state.config.auth != AuthMode::Strict {
        return Ok(());
    }
    let borrowed: Vec<&str> = segments.iter().map(|segment| segment.as_ref()).collect();
    let Some(operation) = Operation::classify(method, &borrowed) else {
        return Ok(());
    };
    let delegated = caller.user.is_some();
    let held = if delegated {
        &caller.scopes
    } else {
        &caller.roles
    };
    let scope = match permissions::decide(operation, delegated, held) {
        Decision::Denied(message) => return Err(Error::PermissionDenied(message)),
        Decision::Allowed(scope) => scope,
    };
    caller.connection_scope = scope;
    if scope == ConnectionScope::OwnedBy && operation.targets_a_connection() {
        if let Some(raw_id) = segments.get(2) {
            let (tenant, id) = (caller.tenant.clone(), ConnectionId::lookup(raw_id));
            let connection = state
                .store
                .read(move |db| store::connections::get(db, &tenant, &id))
                .await?;
            // An unknown connection is left to the handler, which answers 404.
            if let Some(connection) = connection {
                if !may_manage(caller, &connection.authorized_app_ids()) {
                    return Err(Error::NotOwner(format!(
                        "Application '{}' holds only OwnedBy permissions for this request, and connection '{}' does not list it in configuration.authorizedAppIds (it did not create the connection).",
                        caller.app_id, connection.id
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Whether `caller` may manage a connection that authorizes `authorized_app_ids`.
pub fn may_manage(caller: &Caller, authorized_app_ids: &[String]) -> bool {
    caller.connection_scope == ConnectionScope::All
        || authorized_app_ids
            .iter()
            .any(|id| id.eq_ignore_ascii_case(&caller.app_id))
}
