//! Create, read, update and delete external connections of the caller's tenant.

use super::{Error, ResourceKind};
use crate::domain::connection::{ConnectionFields, ConnectionState, ExternalConnection};
use crate::domain::ids::ConnectionId;
use crate::domain::principal::Caller;
use crate::state::AppState;
use crate::store::{self, refuse};

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
        .write_or_refuse(move |db| {
            if store::connections::get(db, &tenant, &stored.id)?.is_some() {
                return refuse(Error::AlreadyExists {
                    kind: ResourceKind::Connection,
                    id: stored.id.to_string(),
                });
            }
            if store::connections::count(db, &tenant)? >= max_connections {
                return refuse(Error::QuotaExceeded(format!(
                    "the tenant already holds the maximum of {max_connections} connections"
                )));
            }
            store::connections::insert(db, &tenant, &stored, &created_at)?;
            Ok(())
        })
        .await?;
    Ok(connection)
}

/// A connection as a reader sees it: `limitExceeded` while the tenant or the connection is at
/// its item cap, and the number of items it holds.
#[derive(Debug, Clone)]
pub struct ConnectionView {
    pub connection: ExternalConnection,
    pub n_items: u64,
}

pub async fn get(
    state: &AppState,
    caller: &Caller,
    id: &ConnectionId,
) -> Result<ConnectionView, Error> {
    super::schema::settle_connection(state, &caller.tenant, id).await?;
    let tenant = caller.tenant.clone();
    let lookup_id = id.clone();
    let caps = (
        state.config.tenant_item_quota(),
        state.config.max_items_per_connection,
    );
    state
        .store
        .read(move |db| {
            let Some(connection) = store::connections::get(db, &tenant, &lookup_id)? else {
                return Ok(None);
            };
            let in_tenant = store::items::count_in_tenant(db, &tenant)?;
            Ok(Some(view(db, &tenant, connection, in_tenant, caps)?))
        })
        .await?
        .ok_or_else(|| not_found(id))
}

pub async fn list(state: &AppState, caller: &Caller) -> Result<Vec<ConnectionView>, Error> {
    super::schema::settle_all(state).await?;
    let tenant = caller.tenant.clone();
    let caps = (
        state.config.tenant_item_quota(),
        state.config.max_items_per_connection,
    );
    // An app holding only OwnedBy permissions sees its own connections (evidence 1.15: the list
    // is filtered, not refused).
    let viewer = caller.clone();
    Ok(state
        .store
        .read(move |db| {
            let in_tenant = store::items::count_in_tenant(db, &tenant)?;
            store::connections::list(db, &tenant)?
                .into_iter()
                .filter(|connection| {
                    super::authorization::may_manage(&viewer, &connection.authorized_app_ids())
                })
                .map(|connection| view(db, &tenant, connection, in_tenant, caps))
                .collect()
        })
        .await?)
}

fn view(
    db: &rusqlite::Connection,
    tenant: &crate::domain::ids::TenantId,
    mut connection: ExternalConnection,
    in_tenant: u64,
    (tenant_quota, connection_cap): (u64, u64),
) -> Result<ConnectionView, crate::store::StoreError> {
    let n_items = store::items::count_in_connection(db, tenant, &connection.id)?;
    if connection.state == ConnectionState::Ready
        && (in_tenant >= tenant_quota || n_items >= connection_cap)
    {
        connection.state = ConnectionState::LimitExceeded;
    }
    Ok(ConnectionView {
        connection,
        n_items,
    })
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
        .write_or_refuse(move |db| {
            let Some(mut connection) = store::connections::get(db, &tenant, &id)? else {
                return refuse(not_found(&id));
            };
            let templates_changed = fields.search_settings.is_some();
            if let Err(violation) = connection.apply(fields) {
                return refuse(Error::Invalid(violation));
            }
            // Rules of result templates must name properties of the schema, once there is one
            // (a connection gets its templates before its schema as often as after).
            if templates_changed {
                if let Some(schema) =
                    store::schema::get_schemas(db, &tenant, &id)?.and_then(|s| s.effective)
                {
                    let templates =
                        crate::domain::result_template::declared_search_result_templates(
                            connection.search_settings.as_ref(),
                        );
                    if let Err(violation) = crate::domain::result_template::check_rule_properties(
                        &templates,
                        &schema,
                        "searchSettings.searchResultTemplates",
                    ) {
                        return refuse(Error::Invalid(violation));
                    }
                }
            }
            store::connections::update(db, &tenant, &connection)?;
            Ok(())
        })
        .await
        .map_err(Error::from)
}

/// Deletes the connection and everything under it, in the store and then in the index.
pub async fn delete(state: &AppState, caller: &Caller, id: &ConnectionId) -> Result<(), Error> {
    let tenant = caller.tenant.clone();
    let lookup_id = id.clone();
    let index = state.index.clone();
    // The connection's external groups go with it: the principal cache is invalidated in the
    // same post-commit effect, so a request dropped mid-way cannot skip it.
    let invalidation = state.principals.invalidation(&caller.tenant);
    let existed = state
        .store
        .write_with_effect(move |db| {
            let existed = store::connections::delete(db, &tenant, &lookup_id)?;
            // Run on the store thread after the commit: neither step can be skipped by a client
            // that goes away while the write is in flight.
            let effect: Option<crate::store::Effect> = existed.then(|| {
                Box::new(move || {
                    index.drop_connection(&tenant, &lookup_id);
                    invalidation();
                }) as crate::store::Effect
            });
            Ok((existed, effect))
        })
        .await?;
    if !existed {
        return Err(not_found(id));
    }
    Ok(())
}

fn not_found(id: &ConnectionId) -> Error {
    Error::NotFound {
        kind: ResourceKind::Connection,
        id: id.to_string(),
    }
}
