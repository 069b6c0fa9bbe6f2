//! Create, read, update and delete external connections of the caller's tenant.

use super::{Error, ResourceKind};
use crate::domain::connection::{ConnectionFields, ExternalConnection};
use crate::domain::ids::ConnectionId;
use crate::domain::principal::Caller;
use crate::state::AppState;
use crate::store;

pub async fn create(
    state: &AppState,
    caller: &Caller,
    raw_id: &str,
    fields: ConnectionFields,
) -> Result<ExternalConnection, Error> {
    let id = ConnectionId::parse(raw_id)?;
    let connection = ExternalConnection::create(id, fields, &caller.app_id)?;
    let tenant = caller.tenant.clone();
    let max_connections = state.config.max_connections_per_tenant;
    let created_at = state.clock.now().to_rfc3339();
    let stored = connection.clone();
    state
        .store
        .write(move |db| {
            if store::connections::get(db, &tenant, &stored.id)?.is_some() {
                return Ok(Err(Error::AlreadyExists {
                    kind: ResourceKind::Connection,
                    id: stored.id.to_string(),
                }));
            }
            if store::connections::count(db, &tenant)? >= max_connections {
                return Ok(Err(Error::QuotaExceeded(format!(
                    "the tenant already holds the maximum of {max_connections} connections"
                ))));
            }
            store::connections::insert(db, &tenant, &stored, &created_at)?;
            Ok(Ok(()))
        })
        .await??;
    Ok(connection)
}

pub async fn get(
    state: &AppState,
    caller: &Caller,
    id: &ConnectionId,
) -> Result<ExternalConnection, Error> {
    let tenant = caller.tenant.clone();
    let id = id.clone();
    let lookup_id = id.clone();
    state
        .store
        .read(move |db| store::connections::get(db, &tenant, &lookup_id))
        .await?
        .ok_or_else(|| not_found(&id))
}

pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<ExternalConnection>, Error> {
    super::schema::settle_all(state).await?;
    let tenant = caller.tenant.clone();
    Ok(state
        .store
        .read(move |db| store::connections::list(db, &tenant))
        .await?)
}

/// Applies `fields` with PATCH semantics; on a violation nothing is stored.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: &ConnectionId,
    fields: ConnectionFields,
) -> Result<(), Error> {
    let tenant = caller.tenant.clone();
    let id = id.clone();
    state
        .store
        .write(move |db| {
            let Some(mut connection) = store::connections::get(db, &tenant, &id)? else {
                return Ok(Err(not_found(&id)));
            };
            if let Err(violation) = connection.apply(fields) {
                return Ok(Err(Error::Invalid(violation)));
            }
            store::connections::update(db, &tenant, &connection)?;
            Ok(Ok(()))
        })
        .await?
}

/// Deletes the connection and everything under it.
pub async fn delete(state: &AppState, caller: &Caller, id: &ConnectionId) -> Result<(), Error> {
    let tenant = caller.tenant.clone();
    let lookup_id = id.clone();
    let existed = state
        .store
        .write(move |db| store::connections::delete(db, &tenant, &lookup_id))
        .await?;
    if !existed {
        return Err(not_found(id));
    }
    let (index, tenant, id) = (state.index.clone(), caller.tenant.clone(), id.clone());
    tokio::task::spawn_blocking(move || index.remove(&tenant, &id))
        .await
        .map_err(|error| Error::Internal(error.to_string()))??;
    Ok(())
}

fn not_found(id: &ConnectionId) -> Error {
    Error::NotFound {
        kind: ResourceKind::Connection,
        id: id.to_string(),
    }
}
