//! Ingesting external items: checked against the connection's effective schema (in memory, off
//! the store thread), written durably, then handed to the indexer by a post-commit effect.

use std::sync::Arc;

use super::{Error, JobResult, ResourceKind};
use crate::domain::acl::AclEntry;
use crate::domain::connection::ConnectionState;
use crate::domain::ids::{ConnectionId, ItemId, TenantId};
use crate::domain::item::{
    check_properties, ExternalActivity, ExternalItem, ItemContent, PropertyProblem,
};
use crate::domain::principal::Caller;
use crate::domain::schema::Schema;
use crate::domain::Violation;
use crate::state::AppState;
use crate::store::{self, refuse, Effect, JobError};

/// Members of an item update (PATCH): each present member replaces the stored one.
#[derive(Debug, Clone, Default)]
pub struct ItemUpdate {
    pub acl: Option<Vec<AclEntry>>,
    pub properties: Option<serde_json::Map<String, serde_json::Value>>,
    pub content: Option<Option<ItemContent>>,
    pub sensitivity_label_id: Option<Option<String>>,
}

/// Creates or replaces the item (`PUT`), with optional inline activities. Answers once committed.
pub async fn put(
    state: &AppState,
    caller: &Caller,
    connection_id: &ConnectionId,
    item: ExternalItem,
    activities: Vec<ExternalActivity>,
) -> Result<Arc<ExternalItem>, Error> {
    let schema = effective_schema(state, &caller.tenant, connection_id).await?;
    check_item(&schema, &item)?;
    let item = Arc::new(item);
    // Writers that outpace the indexer wait here, so its queue stays bounded.
    state.index.wait_for_room().await?;
    let tenant = caller.tenant.clone();
    let connection_id = connection_id.clone();
    let quotas = Quotas::of(state);
    let index = state.index.clone();
    let stored = item.clone();
    state
        .store
        // Every refusal below comes before the first change, so the job needs no savepoint.
        .write_checking_first_with_effect(move |db| {
            let Some((connection_state, counts)) =
                store::items::state_and_counts(db, &tenant, &connection_id)?
            else {
                return refuse(connection_not_found(&connection_id));
            };
            writable(connection_state, &connection_id).map_err(JobError::Refused)?;
            let seq = store::items::next_sequence(db)?;
            // A new item must fit the quotas; replacing one always does.
            let room = quotas.room_for_one_more(counts, &connection_id);
            let inserted = room.is_ok()
                && store::items::insert_if_new(db, &tenant, &connection_id, &stored, seq)?;
            if !inserted && !store::items::replace(db, &tenant, &connection_id, &stored, seq)? {
                // Not there to replace, so it was not inserted for want of room.
                room.map_err(JobError::Refused)?;
                return Err(JobError::Store(store::StoreError::Corrupt(format!(
                    "item '{}' was neither new nor stored",
                    stored.id
                ))));
            }
            store::items::insert_activities(db, &tenant, &connection_id, &stored.id, &activities)?;
            let effect: Effect =
                Box::new(move || index.upsert(&tenant, &connection_id, stored, seq, inserted));
            Ok(((), Some(effect)))
        })
        .await?;
    Ok(item)
}

/// Updates the item with PATCH semantics (each sent member replaces the stored one).
pub async fn update(
    state: &AppState,
    caller: &Caller,
    connection_id: &ConnectionId,
    item_id: &ItemId,
    update: ItemUpdate,
) -> Result<ExternalItem, Error> {
    let schema = effective_schema(state, &caller.tenant, connection_id).await?;
    let tenant = caller.tenant.clone();
    let connection_id = connection_id.clone();
    let item_id = item_id.clone();
    let index = state.index.clone();
    state
        .store
        .write_or_refuse_with_effect(move |db| {
            check_writable(db, &tenant, &connection_id)?;
            let Some(mut item) = store::items::get(db, &tenant, &connection_id, &item_id)? else {
                return refuse(item_not_found(&item_id));
            };
            if let Some(acl) = update.acl {
                item.acl = acl;
            }
            if let Some(properties) = update.properties {
                item.properties = properties;
            }
            if let Some(content) = update.content {
                item.content = content;
            }
            if let Some(label) = update.sensitivity_label_id {
                item.sensitivity_label_id = label;
            }
            check_item(&schema, &item).map_err(JobError::Refused)?;
            let seq = store::items::next_sequence(db)?;
            store::items::replace(db, &tenant, &connection_id, &item, seq)?;
            let indexed = Arc::new(item.clone());
            let effect: Effect =
                Box::new(move || index.upsert(&tenant, &connection_id, indexed, seq, false));
            Ok((item, Some(effect)))
        })
        .await
        .map_err(Error::from)
}

pub async fn get(
    state: &AppState,
    caller: &Caller,
    connection_id: &ConnectionId,
    item_id: &ItemId,
) -> Result<ExternalItem, Error> {
    let (tenant, lookup, lookup_item) = (
        caller.tenant.clone(),
        connection_id.clone(),
        item_id.clone(),
    );
    let (connection_state, item) = state
        .store
        .read(move |db| {
            Ok((
                store::connections::state(db, &tenant, &lookup)?,
                store::items::get(db, &tenant, &lookup, &lookup_item)?,
            ))
        })
        .await?;
    if connection_state.is_none() {
        return Err(connection_not_found(connection_id));
    }
    item.ok_or_else(|| item_not_found(item_id))
}

pub async fn delete(
    state: &AppState,
    caller: &Caller,
    connection_id: &ConnectionId,
    item_id: &ItemId,
) -> Result<(), Error> {
    let (tenant, connection_id, item_id) = (
        caller.tenant.clone(),
        connection_id.clone(),
        item_id.clone(),
    );
    let index = state.index.clone();
    state
        .store
        .write_or_refuse_with_effect(move |db| {
            if store::connections::state(db, &tenant, &connection_id)?.is_none() {
                return refuse(connection_not_found(&connection_id));
            }
            if !store::items::delete(db, &tenant, &connection_id, &item_id)? {
                return refuse(item_not_found(&item_id));
            }
            let seq = store::items::next_sequence(db)?;
            let effect: Effect =
                Box::new(move || index.delete(&tenant, &connection_id, item_id, seq));
            Ok(((), Some(effect)))
        })
        .await
        .map_err(Error::from)
}

/// Records the valid activities of an `addActivities` call on an existing item; entries that
/// failed validation are passed through untouched so the answer can report them.
pub async fn add_activities(
    state: &AppState,
    caller: &Caller,
    connection_id: &ConnectionId,
    item_id: &ItemId,
    activities: Vec<Result<ExternalActivity, Violation>>,
) -> Result<Vec<Result<ExternalActivity, Violation>>, Error> {
    let (tenant, connection_id, item_id) = (
        caller.tenant.clone(),
        connection_id.clone(),
        item_id.clone(),
    );
    state
        .store
        .write_or_refuse(move |db| {
            if store::connections::state(db, &tenant, &connection_id)?.is_none() {
                return refuse(connection_not_found(&connection_id));
            }
            if !store::items::exists(db, &tenant, &connection_id, &item_id)? {
                return refuse(item_not_found(&item_id));
            }
            let valid: Vec<ExternalActivity> = activities
                .iter()
                .filter_map(|a| a.as_ref().ok().cloned())
                .collect();
            store::items::insert_activities(db, &tenant, &connection_id, &item_id, &valid)?;
            Ok(activities)
        })
        .await
        .map_err(Error::from)
}

/// Items the connection can still take: the smaller of its own room and the tenant's (beta quota).
pub async fn items_remaining(
    state: &AppState,
    caller: &Caller,
    connection_id: &ConnectionId,
) -> Result<u64, Error> {
    let (tenant, lookup) = (caller.tenant.clone(), connection_id.clone());
    let quotas = Quotas::of(state);
    let answer = state
        .store
        .read(move |db| {
            if store::connections::state(db, &tenant, &lookup)?.is_none() {
                return Ok(None);
            }
            let in_connection = store::items::count_in_connection(db, &tenant, &lookup)?;
            let in_tenant = store::items::count_in_tenant(db, &tenant)?;
            Ok(Some(
                quotas
                    .per_connection
                    .saturating_sub(in_connection)
                    .min(quotas.per_tenant.saturating_sub(in_tenant)),
            ))
        })
        .await?;
    answer.ok_or_else(|| connection_not_found(connection_id))
}

#[derive(Debug, Clone, Copy)]
struct Quotas {
    per_tenant: u64,
    per_connection: u64,
}

impl Quotas {
    fn of(state: &AppState) -> Quotas {
        Quotas {
            per_tenant: state.config.tenant_item_quota(),
            per_connection: state.config.max_items_per_connection,
        }
    }

    /// Whether one more item fits; a full tenant or connection refuses new items (updates still pass).
    fn room_for_one_more(
        &self,
        counts: store::items::ItemCounts,
        connection_id: &ConnectionId,
    ) -> Result<(), Error> {
        if counts.in_tenant >= self.per_tenant {
            return Err(Error::QuotaExceeded(format!(
                "the tenant's item quota of {} items is used up; delete items or raise --item-quota",
                self.per_tenant
            )));
        }
        if counts.in_connection >= self.per_connection {
            return Err(Error::QuotaExceeded(format!(
                "connection '{connection_id}' already holds its maximum of {} items",
                self.per_connection
            )));
        }
        Ok(())
    }
}

/// The effective schema of the connection, settling a due operation first if there is none yet.
async fn effective_schema(
    state: &AppState,
    tenant: &TenantId,
    connection_id: &ConnectionId,
) -> Result<Arc<Schema>, Error> {
    if let Some(schema) = state.index.effective_schema(tenant, connection_id) {
        return Ok(schema);
    }
    super::schema::settle_connection(state, tenant, connection_id).await?;
    if let Some(schema) = state.index.effective_schema(tenant, connection_id) {
        return Ok(schema);
    }
    let (lookup_tenant, lookup) = (tenant.clone(), connection_id.clone());
    let exists = state
        .store
        .read(move |db| Ok(store::connections::state(db, &lookup_tenant, &lookup)?.is_some()))
        .await?;
    if !exists {
        return Err(connection_not_found(connection_id));
    }
    Err(not_ready(connection_id))
}

fn check_writable(
    db: &rusqlite::Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
) -> JobResult<()> {
    match store::connections::state(db, tenant, connection_id)? {
        None => refuse(connection_not_found(connection_id)),
        Some(state) => writable(state, connection_id).map_err(JobError::Refused),
    }
}

/// Whether items of a connection in this state may be written.
fn writable(state: ConnectionState, connection_id: &ConnectionId) -> Result<(), Error> {
    match state {
        ConnectionState::Draft => Err(not_ready(connection_id)),
        ConnectionState::Obsolete => Err(Error::InvalidState(format!(
            "connection '{connection_id}' is obsolete: only deleting it is allowed"
        ))),
        ConnectionState::Ready | ConnectionState::LimitExceeded => Ok(()),
    }
}

/// ACL entries one item may carry (Graph documents no limit; gcemu's choice, in the README).
pub const MAX_ACL_ENTRIES: usize = 10_000;

pub(crate) fn check_item(schema: &Schema, item: &ExternalItem) -> Result<(), Error> {
    if item.acl.len() > MAX_ACL_ENTRIES {
        return Err(Error::Invalid(Violation::new(
            "acl",
            format!(
                "An item can have at most {MAX_ACL_ENTRIES} access control entries; this one has {}.",
                item.acl.len()
            ),
        )));
    }
    for (index, entry) in item.acl.iter().enumerate() {
        entry.validate(index)?;
    }
    check_properties(schema, &item.properties).map_err(|problem| match problem {
        PropertyProblem::DoesNotMatch(violation) => Error::Mismatch(violation),
        PropertyProblem::NotInSchema(violation) | PropertyProblem::Empty(violation) => {
            Error::Invalid(violation)
        }
    })
}

pub(crate) fn not_ready(connection_id: &ConnectionId) -> Error {
    Error::InvalidState(format!(
        "connection '{connection_id}' is not ready for items: its schema has not been registered yet (register it with PATCH .../schema and wait for the operation to complete)"
    ))
}

fn connection_not_found(connection_id: &ConnectionId) -> Error {
    Error::NotFound {
        kind: ResourceKind::Connection,
        id: connection_id.to_string(),
    }
}

fn item_not_found(item_id: &ItemId) -> Error {
    Error::NotFound {
        kind: ResourceKind::Item,
        id: item_id.to_string(),
    }
}
