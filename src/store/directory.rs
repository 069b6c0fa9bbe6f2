//! SQL for the emulated Entra directory: users, groups and group memberships. Tenant first.

use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;
use crate::domain::ids::TenantId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
    /// `Member` or `Guest`.
    pub user_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryGroup {
    pub id: String,
    pub display_name: String,
    pub description: Option<String>,
    pub mail_nickname: Option<String>,
}

/// Inserts a user; returns false when the id or the UPN is already taken in the tenant.
pub fn insert_user(
    db: &Connection,
    tenant: &TenantId,
    user: &DirectoryUser,
) -> Result<bool, StoreError> {
    let n_rows = db.execute(
        "INSERT OR IGNORE INTO directory_users (tenant_id, id, user_principal_name, display_name, user_type) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![tenant.as_str(), user.id, user.user_principal_name, user.display_name, user.user_type],
    )?;
    Ok(n_rows == 1)
}

/// Finds a user by object id or by user principal name (both without regard to case).
pub fn find_user(
    db: &Connection,
    tenant: &TenantId,
    id_or_upn: &str,
) -> Result<Option<DirectoryUser>, StoreError> {
    Ok(db
        .query_row(
            "SELECT id, user_principal_name, display_name, user_type FROM directory_users
             WHERE tenant_id = ?1 AND (id = ?2 OR user_principal_name = ?2)",
            params![tenant.as_str(), id_or_upn],
            user_from_row,
        )
        .optional()?)
}

pub fn list_users(db: &Connection, tenant: &TenantId) -> Result<Vec<DirectoryUser>, StoreError> {
    let mut statement = db.prepare(
        "SELECT id, user_principal_name, display_name, user_type FROM directory_users WHERE tenant_id = ?1 ORDER BY user_principal_name",
    )?;
    let rows = statement.query_map([tenant.as_str()], user_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes a user and their memberships; returns whether the user existed.
pub fn delete_user(db: &Connection, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
    let n_rows = db.execute(
        "DELETE FROM directory_users WHERE tenant_id = ?1 AND id = ?2",
        params![tenant.as_str(), id],
    )?;
    db.execute(
        "DELETE FROM directory_members WHERE tenant_id = ?1 AND member_id = ?2",
        params![tenant.as_str(), id],
    )?;
    Ok(n_rows == 1)
}

pub fn insert_group(
    db: &Connection,
    tenant: &TenantId,
    group: &DirectoryGroup,
) -> Result<bool, StoreError> {
    let n_rows = db.execute(
        "INSERT OR IGNORE INTO directory_groups (tenant_id, id, display_name, description, mail_nickname) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![tenant.as_str(), group.id, group.display_name, group.description, group.mail_nickname],
    )?;
    Ok(n_rows == 1)
}

pub fn get_group(
    db: &Connection,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<DirectoryGroup>, StoreError> {
    Ok(db
        .query_row(
            "SELECT id, display_name, description, mail_nickname FROM directory_groups WHERE tenant_id = ?1 AND id = ?2",
            params![tenant.as_str(), id],
            group_from_row,
        )
        .optional()?)
}

pub fn list_groups(db: &Connection, tenant: &TenantId) -> Result<Vec<DirectoryGroup>, StoreError> {
    let mut statement =
        db.prepare("SELECT id, display_name, description, mail_nickname FROM directory_groups WHERE tenant_id = ?1 ORDER BY display_name, id")?;
    let rows = statement.query_map([tenant.as_str()], group_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes a group and every membership it takes part in; returns whether it existed.
pub fn delete_group(db: &Connection, tenant: &TenantId, id: &str) -> Result<bool, StoreError> {
    let n_rows = db.execute(
        "DELETE FROM directory_groups WHERE tenant_id = ?1 AND id = ?2",
        params![tenant.as_str(), id],
    )?;
    db.execute(
        "DELETE FROM directory_members WHERE tenant_id = ?1 AND (group_id = ?2 OR member_id = ?2)",
        params![tenant.as_str(), id],
    )?;
    Ok(n_rows == 1)
}

/// Adds a membership; returns false when it already existed.
pub fn add_member(
    db: &Connection,
    tenant: &TenantId,
    group_id: &str,
    member_id: &str,
) -> Result<bool, StoreError> {
    let n_rows = db.execute(
        "INSERT OR IGNORE INTO directory_members (tenant_id, group_id, member_id) VALUES (?1, ?2, ?3)",
        params![tenant.as_str(), group_id, member_id],
    )?;
    Ok(n_rows == 1)
}

pub fn remove_member(
    db: &Connection,
    tenant: &TenantId,
    group_id: &str,
    member_id: &str,
) -> Result<bool, StoreError> {
    let n_rows = db.execute(
        "DELETE FROM directory_members WHERE tenant_id = ?1 AND group_id = ?2 AND member_id = ?3",
        params![tenant.as_str(), group_id, member_id],
    )?;
    Ok(n_rows == 1)
}

/// The direct member ids of a group.
pub fn members(
    db: &Connection,
    tenant: &TenantId,
    group_id: &str,
) -> Result<Vec<String>, StoreError> {
    let mut statement = db.prepare("SELECT member_id FROM directory_members WHERE tenant_id = ?1 AND group_id = ?2 ORDER BY member_id")?;
    let rows = statement.query_map(params![tenant.as_str(), group_id], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every (group, member) pair of the tenant: the Entra half of the membership graph.
pub fn all_memberships(
    db: &Connection,
    tenant: &TenantId,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut statement = db
        .prepare_cached("SELECT group_id, member_id FROM directory_members WHERE tenant_id = ?1")?;
    let rows = statement.query_map([tenant.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DirectoryUser> {
    Ok(DirectoryUser {
        id: row.get(0)?,
        user_principal_name: row.get(1)?,
        display_name: row.get(2)?,
        user_type: row.get(3)?,
    })
}

fn group_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DirectoryGroup> {
    Ok(DirectoryGroup {
        id: row.get(0)?,
        display_name: row.get(1)?,
        description: row.get(2)?,
        mail_nickname: row.get(3)?,
    })
}
