//! Registering a schema as a long-running operation, reading it back, and settling operations
//! when the emulator's clock reaches their completion time.
//!
//! What the outcome of an operation leaves:
//! - `completed`: the submitted schema becomes effective, a `draft` connection becomes `ready`,
//!   and the connection's index follows the schema;
//! - `failed`: the operation carries the error; the readable schema goes back to the last
//!   effective one (none for a first registration), and the connection keeps its state.

use chrono::Duration;
use rusqlite::Connection;

use super::{Error, ResourceKind};
use crate::config::SchemaErrors;
use crate::domain::connection::ConnectionState;
use crate::domain::ids::{ConnectionId, OperationId, TenantId};
use crate::domain::operation::{ConnectionOperation, OperationError, OperationStatus};
use crate::domain::principal::Caller;
use crate::domain::schema::{RuleClass, Schema, SchemaViolation};
use crate::index::SearchIndex;
use crate::state::AppState;
use crate::store::schema::{DueOperation, NewOperation};
use crate::store::{self, Effect, StoreError};

/// How the client asked for the registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// `PATCH .../schema`, or the legacy `POST` with `Prefer: respond-async`: `202` and an operation.
    Operation,
    /// The legacy `POST .../schema` without `Prefer: respond-async`: completes before answering.
    /// Only allowed while the connection has no schema.
    Synchronous,
}

/// A schema whose operation completed, for the index to follow.
pub(crate) type CompletedSchema = (TenantId, ConnectionId, Schema);

/// Starts a schema operation for the connection and returns its id.
///
/// The rules on the schema alone (`Schema::validate`, linear and bounded by the count limits) run
/// here, on the async side; the store job only adds the update rules, which need the registered
/// schema, and reports the first violation where the checks of stored state leave it.
pub async fn register(
    state: &AppState,
    caller: &Caller,
    connection_id: &ConnectionId,
    schema: Schema,
    registration: Registration,
) -> Result<OperationId, Error> {
    let tenant = caller.tenant.clone();
    let connection_id = connection_id.clone();
    let now = state.clock.now();
    let delay = match registration {
        Registration::Synchronous => Duration::zero(),
        Registration::Operation => {
            Duration::from_std(state.config.schema_delay).unwrap_or(Duration::MAX)
        }
    };
    let semantic_errors_in_operation = state.config.schema_errors == SchemaErrors::Operation
        && registration == Registration::Operation;
    let operation_id = OperationId::from_uuids(uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let new_operation_id = operation_id.clone();
    let index = state.index.clone();
    let violations = schema.validate();
    let outcome = state
        .store
        .write_with_effect(move |db| {
            let request = RegistrationRequest {
                schema,
                violations,
                registration,
                now,
                delay,
                semantic_errors_in_operation,
                operation_id: new_operation_id,
            };
            let (outcome, completed) = register_in_store(db, &tenant, &connection_id, request)?;
            Ok((outcome, follow_in_index(&index, completed)))
        })
        .await?;
    outcome.map(|()| operation_id)
}

/// A registration as the store transaction sees it.
struct RegistrationRequest {
    schema: Schema,
    /// What `Schema::validate` found, before the store job.
    violations: Vec<SchemaViolation>,
    registration: Registration,
    now: chrono::DateTime<chrono::Utc>,
    delay: Duration,
    semantic_errors_in_operation: bool,
    operation_id: OperationId,
}

/// Checks and records a registration inside one transaction; settles what was due first.
fn register_in_store(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    request: RegistrationRequest,
) -> Result<(Result<(), Error>, Vec<CompletedSchema>), StoreError> {
    let RegistrationRequest {
        schema,
        violations,
        registration,
        now,
        delay,
        semantic_errors_in_operation,
        operation_id: new_operation_id,
    } = request;
    let mut completed = settle(
        db,
        store::schema::due_operations(db, tenant, connection_id, now)?,
    )?;
    if store::connections::get(db, tenant, connection_id)?.is_none() {
        return Ok((
            Err(not_found(ResourceKind::Connection, connection_id)),
            completed,
        ));
    }
    if let Some(running) = store::schema::operation_in_progress(db, tenant, connection_id)? {
        return Ok((
                    Err(Error::Conflict(format!(
                        "A schema operation is already in progress for connection '{connection_id}' (operation '{running}'); wait until it completes."
                    ))),
                    completed,
                ));
    }
    let registered =
        store::schema::get_schemas(db, tenant, connection_id)?.and_then(|s| s.effective);
    if registration == Registration::Synchronous && registered.is_some() {
        return Ok((
                    Err(Error::Invalid(crate::domain::Violation::new(
                        "schema",
                        format!("connection '{connection_id}' already has a schema; update it with PATCH .../schema"),
                    ))),
                    completed,
                ));
    }
    let mut violations = violations;
    // Only the first violation is reported, so the update rules matter only for a valid schema.
    if violations.is_empty() {
        if let Some(registered) = &registered {
            violations = registered.validate_update(&schema);
        }
    }
    let mut planned_error = None;
    if let Some(first) = violations.into_iter().next() {
        if first.class == RuleClass::Syntax || !semantic_errors_in_operation {
            return Ok((Err(Error::Invalid(first.violation)), completed));
        }
        planned_error = Some(OperationError {
            code: "InvalidRequest".into(),
            message: first.violation.message,
            target: Some(first.violation.target),
        });
    }
    store::schema::submit_schema(db, tenant, connection_id, &schema)?;
    store::schema::insert_operation(
        db,
        tenant,
        connection_id,
        &NewOperation {
            id: &new_operation_id,
            created_at: now,
            completes_at: crate::clock::later(now, delay),
            planned_error: planned_error.as_ref(),
        },
    )?;
    completed.extend(settle(
        db,
        store::schema::due_operations(db, tenant, connection_id, now)?,
    )?);
    Ok((Ok(()), completed))
}

/// Registers `schema` for a connection that has none, as an operation that completed at `now`
/// (fixtures: "ready at once"), inside the caller's job. Returns the schema made effective, for
/// `follow_in_index`.
pub(crate) fn register_completed(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    schema: &Schema,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<CompletedSchema>, StoreError> {
    store::schema::submit_schema(db, tenant, connection_id, schema)?;
    let operation_id = OperationId::from_uuids(uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    store::schema::insert_operation(
        db,
        tenant,
        connection_id,
        &NewOperation {
            id: &operation_id,
            created_at: now,
            completes_at: now,
            planned_error: None,
        },
    )?;
    settle(
        db,
        store::schema::due_operations(db, tenant, connection_id, now)?,
    )
}

/// The connection's readable schema (also while its operation is in progress).
pub async fn get(
    state: &AppState,
    caller: &Caller,
    connection_id: &ConnectionId,
) -> Result<Schema, Error> {
    settle_connection(state, &caller.tenant, connection_id).await?;
    let tenant = caller.tenant.clone();
    let lookup = connection_id.clone();
    let (connection, schemas) = state
        .store
        .read(move |db| {
            Ok((
                store::connections::get(db, &tenant, &lookup)?,
                store::schema::get_schemas(db, &tenant, &lookup)?,
            ))
        })
        .await?;
    if connection.is_none() {
        return Err(not_found(ResourceKind::Connection, connection_id));
    }
    schemas
        .map(|schemas| schemas.readable)
        .ok_or_else(|| not_found(ResourceKind::Schema, connection_id))
}

pub async fn get_operation(
    state: &AppState,
    caller: &Caller,
    connection_id: &ConnectionId,
    operation_id: &OperationId,
) -> Result<ConnectionOperation, Error> {
    settle_connection(state, &caller.tenant, connection_id).await?;
    let tenant = caller.tenant.clone();
    let lookup = connection_id.clone();
    let operation_lookup = operation_id.clone();
    let (connection, operation) = state
        .store
        .read(move |db| {
            Ok((
                store::connections::get(db, &tenant, &lookup)?,
                store::schema::get_operation(db, &tenant, &lookup, &operation_lookup)?,
            ))
        })
        .await?;
    if connection.is_none() {
        return Err(not_found(ResourceKind::Connection, connection_id));
    }
    operation.ok_or_else(|| Error::NotFound {
        kind: ResourceKind::Operation,
        id: operation_id.to_string(),
    })
}

/// Settles the connection's due operations, so a read right after the clock moved sees the outcome.
pub async fn settle_connection(
    state: &AppState,
    tenant: &TenantId,
    connection_id: &ConnectionId,
) -> Result<(), Error> {
    let now = state.clock.now();
    let (tenant, connection_id) = (tenant.clone(), connection_id.clone());
    let (read_tenant, read_connection) = (tenant.clone(), connection_id.clone());
    let any_due = state
        .store
        .read(move |db| {
            Ok(!store::schema::due_operations(db, &read_tenant, &read_connection, now)?.is_empty())
        })
        .await?;
    if !any_due {
        return Ok(());
    }
    let index = state.index.clone();
    state
        .store
        .write_with_effect(move |db| {
            let completed = settle(
                db,
                store::schema::due_operations(db, &tenant, &connection_id, now)?,
            )?;
            Ok(((), follow_in_index(&index, completed)))
        })
        .await?;
    Ok(())
}

/// Settles the due operations of every tenant; run by the background sweep and after the clock moves.
pub async fn settle_all(state: &AppState) -> Result<usize, Error> {
    let now = state.clock.now();
    let any_due = state
        .store
        .read(move |db| Ok(!store::schema::due_operations_of_all_tenants(db, now)?.is_empty()))
        .await?;
    if !any_due {
        return Ok(0);
    }
    let index = state.index.clone();
    let n_completed = state
        .store
        .write_with_effect(move |db| {
            let completed = settle(db, store::schema::due_operations_of_all_tenants(db, now)?)?;
            Ok((completed.len(), follow_in_index(&index, completed)))
        })
        .await?;
    Ok(n_completed)
}

/// Builds the index of every connection with an effective schema (at start: the index is derived).
pub async fn rebuild_indexes(state: &AppState) -> Result<(), Error> {
    let schemas = state
        .store
        .read(store::schema::effective_schemas_of_all_tenants)
        .await?;
    let last_seq = state.store.read(store::items::last_sequence).await?;
    for (tenant, connection_id, schema) in schemas {
        state.index.apply_schema(&tenant, &connection_id, schema);
    }
    state.index.caught_up_with_store(last_seq);
    state.index.flush().await?;
    Ok(())
}

/// Applies each due operation's outcome inside the caller's transaction.
fn settle(db: &Connection, due: Vec<DueOperation>) -> Result<Vec<CompletedSchema>, StoreError> {
    let mut completed = Vec::new();
    for operation in due {
        let (tenant, connection_id) = (&operation.tenant, &operation.connection_id);
        match &operation.planned_error {
            Some(error) => {
                store::schema::finish_operation(
                    db,
                    tenant,
                    connection_id,
                    &operation.id,
                    OperationStatus::Failed,
                    Some(error),
                )?;
                store::schema::revert_to_effective(db, tenant, connection_id)?;
            }
            None => {
                store::schema::finish_operation(
                    db,
                    tenant,
                    connection_id,
                    &operation.id,
                    OperationStatus::Completed,
                    None,
                )?;
                store::schema::make_readable_effective(db, tenant, connection_id)?;
                if let Some(connection) = store::connections::get(db, tenant, connection_id)? {
                    if connection.state == ConnectionState::Draft {
                        store::connections::set_state(
                            db,
                            tenant,
                            connection_id,
                            ConnectionState::Ready,
                        )?;
                    }
                }
                if let Some(schemas) = store::schema::get_schemas(db, tenant, connection_id)? {
                    if let Some(effective) = schemas.effective {
                        completed.push((tenant.clone(), connection_id.clone(), effective));
                    }
                }
            }
        }
    }
    Ok(completed)
}

/// The post-commit effect that makes each connection's index follow its newly effective schema;
/// run on the store thread, so item writes committed later reach the indexer after it.
pub(crate) fn follow_in_index(
    index: &SearchIndex,
    completed: Vec<CompletedSchema>,
) -> Option<Effect> {
    if completed.is_empty() {
        return None;
    }
    let index = index.clone();
    Some(Box::new(move || {
        for (tenant, connection_id, schema) in completed {
            index.apply_schema(&tenant, &connection_id, schema);
        }
    }))
}

fn not_found(kind: ResourceKind, connection_id: &ConnectionId) -> Error {
    Error::NotFound {
        kind,
        id: connection_id.to_string(),
    }
}
