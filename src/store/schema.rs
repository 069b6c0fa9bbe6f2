//! SQL for connection schemas and connectionOperations. Every function takes the tenant first,
//! except `due_operations_of_all_tenants`, the clock's sweep, which says so in its name.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

use super::{format_instant, parse_instant, StoreError};
use crate::domain::ids::{ConnectionId, OperationId, TenantId};
use crate::domain::operation::{ConnectionOperation, OperationError, OperationStatus};
use crate::domain::schema::{parse_label, Property, PropertyType, Schema, IMPORTANCE_SCORES};

/// A connection's schemas: `readable` is the latest submitted one (what `GET .../schema` shows,
/// also while its operation is in progress); `effective` is the last one whose operation completed
/// (what items are validated against and the index follows).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSchemas {
    pub readable: Schema,
    pub effective: Option<Schema>,
}

pub fn get_schemas(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
) -> Result<Option<StoredSchemas>, StoreError> {
    let row: Option<(String, Option<String>)> = db
        .prepare_cached(
            "SELECT body, effective FROM schemas WHERE tenant_id = ?1 AND connection_id = ?2",
        )?
        .query_row(params![tenant.as_str(), connection_id.as_str()], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    let Some((readable, effective)) = row else {
        return Ok(None);
    };
    Ok(Some(StoredSchemas {
        readable: schema_from_json(&readable)?,
        effective: effective.map(|e| schema_from_json(&e)).transpose()?,
    }))
}

/// Records a newly submitted schema as the readable one, keeping the effective one.
pub fn submit_schema(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    schema: &Schema,
) -> Result<(), StoreError> {
    db.prepare_cached(
        "INSERT INTO schemas (tenant_id, connection_id, body, effective) VALUES (?1, ?2, ?3, NULL)
         ON CONFLICT (tenant_id, connection_id) DO UPDATE SET body = excluded.body",
    )?
    .execute(params![
        tenant.as_str(),
        connection_id.as_str(),
        schema_to_json(schema)
    ])?;
    Ok(())
}

/// The readable schema becomes effective (its operation completed).
pub fn make_readable_effective(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
) -> Result<(), StoreError> {
    db.prepare_cached(
        "UPDATE schemas SET effective = body WHERE tenant_id = ?1 AND connection_id = ?2",
    )?
    .execute(params![tenant.as_str(), connection_id.as_str()])?;
    Ok(())
}

/// The readable schema goes back to the effective one (its operation failed); with no effective
/// schema the connection has none again.
pub fn revert_to_effective(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
) -> Result<(), StoreError> {
    db.prepare_cached(
        "DELETE FROM schemas WHERE tenant_id = ?1 AND connection_id = ?2 AND effective IS NULL",
    )?
    .execute(params![tenant.as_str(), connection_id.as_str()])?;
    db.prepare_cached(
        "UPDATE schemas SET body = effective WHERE tenant_id = ?1 AND connection_id = ?2",
    )?
    .execute(params![tenant.as_str(), connection_id.as_str()])?;
    Ok(())
}

/// Every effective schema of every tenant: what the index is rebuilt from at start.
pub fn effective_schemas_of_all_tenants(
    db: &Connection,
) -> Result<Vec<(TenantId, ConnectionId, Schema)>, StoreError> {
    let mut statement = db.prepare_cached(
        "SELECT tenant_id, connection_id, effective FROM schemas WHERE effective IS NOT NULL",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
        ))
    })?;
    let mut schemas = Vec::new();
    for row in rows {
        let (tenant, connection_id, effective) = row?;
        schemas.push((
            TenantId::parse(&tenant).map_err(|v| StoreError::Corrupt(v.message))?,
            ConnectionId::lookup(&connection_id),
            schema_from_json(&effective)?,
        ));
    }
    Ok(schemas)
}

/// An operation about to start: `planned_error` is what it will fail with when it completes
/// (`None` for success).
pub struct NewOperation<'a> {
    pub id: &'a OperationId,
    pub created_at: DateTime<Utc>,
    pub completes_at: DateTime<Utc>,
    pub planned_error: Option<&'a OperationError>,
}

pub fn insert_operation(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    operation: &NewOperation<'_>,
) -> Result<(), StoreError> {
    db.prepare_cached(
        "INSERT INTO connection_operations
            (tenant_id, connection_id, id, status, error, planned_error, created_at, completes_at)
         VALUES (?1, ?2, ?3, 'inprogress', NULL, ?4, ?5, ?6)",
    )?
    .execute(params![
        tenant.as_str(),
        connection_id.as_str(),
        operation.id.as_str(),
        operation.planned_error.map(error_to_json),
        format_instant(operation.created_at),
        format_instant(operation.completes_at),
    ])?;
    Ok(())
}

pub fn get_operation(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    id: &OperationId,
) -> Result<Option<ConnectionOperation>, StoreError> {
    let row = db
        .prepare_cached(
            "SELECT id, status, error, created_at, completes_at FROM connection_operations
             WHERE tenant_id = ?1 AND connection_id = ?2 AND id = ?3",
        )?
        .query_row(
            params![tenant.as_str(), connection_id.as_str(), id.as_str()],
            raw_operation,
        )
        .optional()?;
    row.map(operation_from_raw).transpose()
}

/// Every operation of the connection, oldest first (the console lists them).
pub fn list_operations(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
) -> Result<Vec<ConnectionOperation>, StoreError> {
    let mut statement = db.prepare_cached(
        "SELECT id, status, error, created_at, completes_at FROM connection_operations
         WHERE tenant_id = ?1 AND connection_id = ?2 ORDER BY created_at, id",
    )?;
    let rows = statement.query_map(
        params![tenant.as_str(), connection_id.as_str()],
        raw_operation,
    )?;
    rows.map(|row| operation_from_raw(row?)).collect()
}

/// (id, status, error, created_at, completes_at) as stored.
type RawOperation = (String, String, Option<String>, String, String);

fn raw_operation(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawOperation> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn operation_from_raw(
    (id, status, error, created_at, completes_at): RawOperation,
) -> Result<ConnectionOperation, StoreError> {
    Ok(ConnectionOperation {
        id: OperationId::lookup(&id),
        status: OperationStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("operation status '{status}'")))?,
        error: error.map(|error| error_from_json(&error)).transpose()?,
        created_at: parse_instant(&created_at)?,
        completes_at: parse_instant(&completes_at)?,
    })
}

/// The id of the connection's operation still `inprogress`, if any.
pub fn operation_in_progress(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
) -> Result<Option<OperationId>, StoreError> {
    let id: Option<String> = db
        .prepare_cached("SELECT id FROM connection_operations WHERE tenant_id = ?1 AND connection_id = ?2 AND status = 'inprogress'")?
.query_row(
            params![tenant.as_str(), connection_id.as_str()],
            |row| row.get(0),
        )
        .optional()?;
    Ok(id.map(|id| OperationId::lookup(&id)))
}

/// An `inprogress` operation whose completion time has come.
pub struct DueOperation {
    pub tenant: TenantId,
    pub connection_id: ConnectionId,
    pub id: OperationId,
    pub planned_error: Option<OperationError>,
}

/// Operations of one connection that are due at `now`.
pub fn due_operations(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    now: DateTime<Utc>,
) -> Result<Vec<DueOperation>, StoreError> {
    query_due(
        db,
        "SELECT tenant_id, connection_id, id, planned_error FROM connection_operations
         WHERE status = 'inprogress' AND completes_at <= ?1 AND tenant_id = ?2 AND connection_id = ?3",
        params![format_instant(now), tenant.as_str(), connection_id.as_str()],
    )
}

/// Operations of every tenant that are due at `now`: the clock's sweep, not a tenant's request.
pub fn due_operations_of_all_tenants(
    db: &Connection,
    now: DateTime<Utc>,
) -> Result<Vec<DueOperation>, StoreError> {
    query_due(
        db,
        "SELECT tenant_id, connection_id, id, planned_error FROM connection_operations
         WHERE status = 'inprogress' AND completes_at <= ?1",
        params![format_instant(now)],
    )
}

fn query_due(
    db: &Connection,
    sql: &str,
    parameters: impl rusqlite::Params,
) -> Result<Vec<DueOperation>, StoreError> {
    let mut statement = db.prepare_cached(sql)?;
    let rows = statement.query_map(parameters, |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, Option<String>>(3)?,
        ))
    })?;
    let mut due = Vec::new();
    for row in rows {
        let (tenant, connection_id, id, planned_error) = row?;
        due.push(DueOperation {
            tenant: TenantId::parse(&tenant).map_err(|v| StoreError::Corrupt(v.message))?,
            connection_id: ConnectionId::lookup(&connection_id),
            id: OperationId::lookup(&id),
            planned_error: planned_error.map(|e| error_from_json(&e)).transpose()?,
        });
    }
    Ok(due)
}

pub fn finish_operation(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    id: &OperationId,
    status: OperationStatus,
    error: Option<&OperationError>,
) -> Result<(), StoreError> {
    db.prepare_cached(
        "UPDATE connection_operations SET status = ?4, error = ?5
         WHERE tenant_id = ?1 AND connection_id = ?2 AND id = ?3",
    )?
    .execute(params![
        tenant.as_str(),
        connection_id.as_str(),
        id.as_str(),
        status.as_str(),
        error.map(error_to_json)
    ])?;
    Ok(())
}

fn error_to_json(error: &OperationError) -> String {
    json!({"code": error.code, "message": error.message, "target": error.target}).to_string()
}

fn error_from_json(raw: &str) -> Result<OperationError, StoreError> {
    let value: Value = serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(OperationError {
        code: value["code"].as_str().unwrap_or_default().to_string(),
        message: value["message"].as_str().unwrap_or_default().to_string(),
        target: value["target"].as_str().map(str::to_string),
    })
}

/// The store's own JSON form of a schema (not Graph's wire format).
pub fn schema_to_json(schema: &Schema) -> String {
    let properties: Vec<Value> = schema
        .properties
        .iter()
        .map(|p| {
            json!({
                "name": p.name, "type": p.property_type.as_str(),
                "searchable": p.is_searchable, "queryable": p.is_queryable,
                "retrievable": p.is_retrievable, "refinable": p.is_refinable,
                "exactMatch": p.is_exact_match_required, "aliases": p.aliases,
                "labels": p.labels, "description": p.description, "importanceScore": p.importance_score,
            })
        })
        .collect();
    json!({ "properties": properties }).to_string()
}

pub fn schema_from_json(raw: &str) -> Result<Schema, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("stored schema: {what}"));
    let value: Value = serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let properties = value["properties"]
        .as_array()
        .ok_or_else(|| corrupt("properties"))?;
    let mut parsed = Vec::with_capacity(properties.len());
    for p in properties {
        let property_type = PropertyType::parse(p["type"].as_str().unwrap_or_default())
            .ok_or_else(|| corrupt("type"))?;
        let flag = |name: &str| p[name].as_bool().unwrap_or(false);
        let strings = |name: &str| -> Vec<String> {
            p[name]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut property = Property::new(
            p["name"].as_str().ok_or_else(|| corrupt("name"))?,
            property_type,
        );
        property.is_searchable = flag("searchable");
        property.is_queryable = flag("queryable");
        property.is_retrievable = flag("retrievable");
        property.is_refinable = flag("refinable");
        property.is_exact_match_required = flag("exactMatch");
        property.aliases = strings("aliases");
        property.labels = strings("labels")
            .iter()
            .map(|l| parse_label(l).ok_or_else(|| corrupt("label")))
            .collect::<Result<_, _>>()?;
        property.description = p["description"].as_str().map(str::to_string);
        property.importance_score = p["importanceScore"]
            .as_str()
            .map(|score| {
                crate::domain::connection::parse_enum_member(IMPORTANCE_SCORES, score)
                    .ok_or_else(|| corrupt("importanceScore"))
            })
            .transpose()?;
        parsed.push(property);
    }
    Ok(Schema { properties: parsed })
}
