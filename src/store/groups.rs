//! SQL for external groups and their members. Tenant first, then connection.

use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;
use crate::domain::directory::ExternalMemberType;
use crate::domain::ids::{ConnectionId, TenantId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalGroup {
    pub id: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
}

pub fn insert(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    group: &ExternalGroup,
) -> Result<bool, StoreError> {
    let n_rows = db.prepare_cached("INSERT OR IGNORE INTO external_groups (tenant_id, connection_id, id, display_name, description) VALUES (?1, ?2, ?3, ?4, ?5)")?
.execute(
        params![tenant.as_str(), connection_id.as_str(), group.id, group.display_name, group.description],
    )?;
    Ok(n_rows == 1)
}

pub fn get(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    id: &str,
) -> Result<Option<ExternalGroup>, StoreError> {
    Ok(db
        .prepare_cached("SELECT id, display_name, description FROM external_groups WHERE tenant_id = ?1 AND connection_id = ?2 AND id = ?3")?
.query_row(
            params![tenant.as_str(), connection_id.as_str(), id],
            |row| {
                Ok(ExternalGroup {
                    id: row.get(0)?,
                    display_name: row.get(1)?,
                    description: row.get(2)?,
                })
            },
        )
        .optional()?)
}

/// The connection's external groups, in id order.
pub fn list(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
) -> Result<Vec<ExternalGroup>, StoreError> {
    let mut statement = db.prepare_cached(
        "SELECT id, display_name, description FROM external_groups WHERE tenant_id = ?1 AND connection_id = ?2 ORDER BY id",
    )?;
    let rows = statement.query_map(params![tenant.as_str(), connection_id.as_str()], |row| {
        Ok(ExternalGroup {
            id: row.get(0)?,
            display_name: row.get(1)?,
            description: row.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn update(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    group: &ExternalGroup,
) -> Result<bool, StoreError> {
    let n_rows = db.prepare_cached("UPDATE external_groups SET display_name = ?4, description = ?5 WHERE tenant_id = ?1 AND connection_id = ?2 AND id = ?3")?
.execute(
        params![tenant.as_str(), connection_id.as_str(), group.id, group.display_name, group.description],
    )?;
    Ok(n_rows == 1)
}

/// Deletes the group and its own member list (memberships of it in other groups stay: they
/// name a group that may be created again, as ACL entries may).
pub fn delete(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    id: &str,
) -> Result<bool, StoreError> {
    let n_rows = db
        .prepare_cached(
            "DELETE FROM external_groups WHERE tenant_id = ?1 AND connection_id = ?2 AND id = ?3",
        )?
        .execute(params![tenant.as_str(), connection_id.as_str(), id])?;
    db.prepare_cached("DELETE FROM external_group_members WHERE tenant_id = ?1 AND connection_id = ?2 AND group_id = ?3")?
.execute(
        params![tenant.as_str(), connection_id.as_str(), id],
    )?;
    Ok(n_rows == 1)
}

pub fn count_in_tenant(db: &Connection, tenant: &TenantId) -> Result<u64, StoreError> {
    let n: i64 = db
        .prepare_cached("SELECT COUNT(*) FROM external_groups WHERE tenant_id = ?1")?
        .query_row([tenant.as_str()], |row| row.get(0))?;
    Ok(n as u64)
}

/// Adds a member (`user`, `group` or `externalGroup`); returns false when already a member.
/// The caller checks, in the same job, that the group exists.
pub fn add_member(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    group_id: &str,
    member_id: &str,
    member_type: ExternalMemberType,
) -> Result<bool, StoreError> {
    let n_rows = db.prepare_cached("INSERT OR IGNORE INTO external_group_members (tenant_id, connection_id, group_id, member_id, member_type) VALUES (?1, ?2, ?3, ?4, ?5)")?
.execute(
        params![tenant.as_str(), connection_id.as_str(), group_id, member_id, member_type.as_str()],
    )?;
    Ok(n_rows == 1)
}

/// Removes every membership of `member_id` in the group (whatever its type); returns whether one existed.
pub fn remove_member(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    group_id: &str,
    member_id: &str,
) -> Result<bool, StoreError> {
    let n_rows = db.prepare_cached("DELETE FROM external_group_members WHERE tenant_id = ?1 AND connection_id = ?2 AND group_id = ?3 AND member_id = ?4")?
.execute(
        params![tenant.as_str(), connection_id.as_str(), group_id, member_id],
    )?;
    Ok(n_rows > 0)
}

/// Every (group, member type, member id) of the connection: the external half of the graph.
pub fn all_memberships(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
) -> Result<Vec<(String, ExternalMemberType, String)>, StoreError> {
    let mut statement = db.prepare_cached(
        "SELECT group_id, member_type, member_id FROM external_group_members WHERE tenant_id = ?1 AND connection_id = ?2",
    )?;
    let rows = statement.query_map(params![tenant.as_str(), connection_id.as_str()], |row| {
        let member_type: String = row.get(1)?;
        let member_type = ExternalMemberType::parse(&member_type).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                1,
                rusqlite::types::Type::Text,
                format!("external group member type '{member_type}'").into(),
            )
        })?;
        Ok((row.get(0)?, member_type, row.get(2)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
