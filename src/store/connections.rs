//! SQL for external connections. Every function takes the tenant first.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{json_column, StoreError};
use crate::domain::connection::{
    parse_enum_member, ConnectionState, ExternalConnection, CONTENT_CATEGORIES, CONTENT_EXPERIENCES,
};
use crate::domain::ids::{ConnectionId, TenantId};

const COLUMNS: &str =
    "id, name, description, state, configuration, connector_id, content_category, \
     activity_settings, search_settings, enabled_content_experiences, compliance_settings";

pub fn insert(
    db: &Connection,
    tenant: &TenantId,
    connection: &ExternalConnection,
    created_at: &str,
) -> Result<(), StoreError> {
    db.prepare_cached(&format!("INSERT INTO connections (tenant_id, {COLUMNS}, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"))?
.execute(
        params![
            tenant.as_str(),
            connection.id.as_str(),
            connection.name,
            connection.description,
            connection.state.as_str(),
            connection.configuration.to_string(),
            connection.connector_id,
            connection.content_category,
            connection.activity_settings.as_ref().map(|v| v.to_string()),
            connection.search_settings.as_ref().map(|v| v.to_string()),
            connection.enabled_content_experiences.as_ref().map(|v| serde_json::json!(v).to_string()),
            connection.compliance_settings.as_ref().map(|v| v.to_string()),
            created_at,
        ],
    )?;
    Ok(())
}

/// Overwrites every writable column of an existing connection; returns whether it existed.
pub fn update(
    db: &Connection,
    tenant: &TenantId,
    connection: &ExternalConnection,
) -> Result<bool, StoreError> {
    let n_rows = db.prepare_cached("UPDATE connections SET name = ?3, description = ?4, state = ?5, configuration = ?6, connector_id = ?7,
            content_category = ?8, activity_settings = ?9, search_settings = ?10,
            enabled_content_experiences = ?11, compliance_settings = ?12
         WHERE tenant_id = ?1 AND id = ?2")?
.execute(
        params![
            tenant.as_str(),
            connection.id.as_str(),
            connection.name,
            connection.description,
            connection.state.as_str(),
            connection.configuration.to_string(),
            connection.connector_id,
            connection.content_category,
            connection.activity_settings.as_ref().map(|v| v.to_string()),
            connection.search_settings.as_ref().map(|v| v.to_string()),
            connection.enabled_content_experiences.as_ref().map(|v| serde_json::json!(v).to_string()),
            connection.compliance_settings.as_ref().map(|v| v.to_string()),
        ],
    )?;
    Ok(n_rows == 1)
}

pub fn get(
    db: &Connection,
    tenant: &TenantId,
    id: &ConnectionId,
) -> Result<Option<ExternalConnection>, StoreError> {
    let row = db
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM connections WHERE tenant_id = ?1 AND id = ?2"
        ))?
        .query_row(
            params![tenant.as_str(), id.as_str()],
            RawConnection::from_row,
        )
        .optional()?;
    row.map(RawConnection::into_domain).transpose()
}

/// All connections of the tenant, oldest first.
pub fn list(db: &Connection, tenant: &TenantId) -> Result<Vec<ExternalConnection>, StoreError> {
    let mut statement = db.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM connections WHERE tenant_id = ?1 ORDER BY created_at, id"
    ))?;
    let rows = statement.query_map([tenant.as_str()], RawConnection::from_row)?;
    rows.map(|row| {
        row.map_err(StoreError::from)
            .and_then(RawConnection::into_domain)
    })
    .collect()
}

pub fn count(db: &Connection, tenant: &TenantId) -> Result<usize, StoreError> {
    Ok(db
        .prepare_cached("SELECT COUNT(*) FROM connections WHERE tenant_id = ?1")?
        .query_row([tenant.as_str()], |row| row.get(0))?)
}

/// Deletes the connection and every row that belongs to it; returns whether it existed.
pub fn delete(db: &Connection, tenant: &TenantId, id: &ConnectionId) -> Result<bool, StoreError> {
    let n_rows = db
        .prepare_cached("DELETE FROM connections WHERE tenant_id = ?1 AND id = ?2")?
        .execute(params![tenant.as_str(), id.as_str()])?;
    for table in super::migrations::CONNECTION_TABLES {
        db.prepare_cached(&format!(
            "DELETE FROM {table} WHERE tenant_id = ?1 AND connection_id = ?2"
        ))?
        .execute(params![tenant.as_str(), id.as_str()])?;
    }
    Ok(n_rows == 1)
}

struct RawConnection {
    id: String,
    name: String,
    description: Option<String>,
    state: String,
    configuration: String,
    connector_id: Option<String>,
    content_category: String,
    activity_settings: Option<String>,
    search_settings: Option<String>,
    enabled_content_experiences: Option<String>,
    compliance_settings: Option<String>,
}

impl RawConnection {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<RawConnection> {
        Ok(RawConnection {
            id: row.get(0)?,
            name: row.get(1)?,
            description: row.get(2)?,
            state: row.get(3)?,
            configuration: row.get(4)?,
            connector_id: row.get(5)?,
            content_category: row.get(6)?,
            activity_settings: row.get(7)?,
            search_settings: row.get(8)?,
            enabled_content_experiences: row.get(9)?,
            compliance_settings: row.get(10)?,
        })
    }

    fn into_domain(self) -> Result<ExternalConnection, StoreError> {
        let corrupt =
            |what: &str| StoreError::Corrupt(format!("connection {}: bad {what}", self.id));
        let state = ConnectionState::parse(&self.state).ok_or_else(|| corrupt("state"))?;
        let content_category = parse_enum_member(CONTENT_CATEGORIES, &self.content_category)
            .ok_or_else(|| corrupt("contentCategory"))?;
        let enabled_content_experiences =
            match json_column(self.enabled_content_experiences.clone())? {
                None => None,
                Some(value) => Some(
                    value
                        .as_array()
                        .ok_or_else(|| corrupt("enabledContentExperiences"))?
                        .iter()
                        .map(|member| {
                            member
                                .as_str()
                                .and_then(|member| parse_enum_member(CONTENT_EXPERIENCES, member))
                                .ok_or_else(|| corrupt("enabledContentExperiences"))
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
        Ok(ExternalConnection {
            id: ConnectionId::lookup(&self.id),
            name: self.name,
            description: self.description,
            state,
            configuration: json_column(Some(self.configuration))?.unwrap_or_default(),
            connector_id: self.connector_id,
            content_category,
            activity_settings: json_column(self.activity_settings)?,
            search_settings: json_column(self.search_settings)?,
            enabled_content_experiences,
            compliance_settings: json_column(self.compliance_settings)?,
        })
    }
}

/// Sets the connection's state; returns whether it existed.
pub fn set_state(
    db: &Connection,
    tenant: &TenantId,
    id: &ConnectionId,
    state: ConnectionState,
) -> Result<bool, StoreError> {
    let n_rows = db
        .prepare_cached("UPDATE connections SET state = ?3 WHERE tenant_id = ?1 AND id = ?2")?
        .execute(params![tenant.as_str(), id.as_str(), state.as_str()])?;
    Ok(n_rows == 1)
}

/// The connection's state alone (cheap: no JSON decoding), or `None` when it does not exist.
pub fn state(
    db: &Connection,
    tenant: &TenantId,
    id: &ConnectionId,
) -> Result<Option<ConnectionState>, StoreError> {
    let raw: Option<String> = db
        .prepare_cached("SELECT state FROM connections WHERE tenant_id = ?1 AND id = ?2")?
        .query_row(params![tenant.as_str(), id.as_str()], |row| row.get(0))
        .optional()?;
    raw.map(|raw| {
        ConnectionState::parse(&raw)
            .ok_or_else(|| StoreError::Corrupt(format!("connection {id}: state '{raw}'")))
    })
    .transpose()
}

/// The connection's `searchSettings` (`Some(None)` when it has none), or `None` when the
/// connection does not exist: what a search needs of it, without decoding the rest.
pub fn search_settings(
    db: &Connection,
    tenant: &TenantId,
    id: &ConnectionId,
) -> Result<Option<Option<serde_json::Value>>, StoreError> {
    let raw: Option<Option<String>> = db
        .prepare_cached("SELECT search_settings FROM connections WHERE tenant_id = ?1 AND id = ?2")?
        .query_row(params![tenant.as_str(), id.as_str()], |row| row.get(0))
        .optional()?;
    raw.map(super::json_column).transpose()
}
