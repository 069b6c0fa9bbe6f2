//! SQL for the emulated Entra directory: users, groups and group memberships. Tenant first.
//!
//! User ids, user principal names and group ids form one namespace per tenant (see
//! `domain::directory`): the inserts check it, so a lookup by any of them finds one object.
//! Membership rows are keyed by the member's type as well as its id.

use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;
use crate::domain::directory::{
    DirectoryGroup, DirectoryMember, DirectoryObject, DirectoryUser, GroupId, MemberType,
    TakenName, UserId, UserType,
};
use crate::domain::ids::TenantId;

/// The outcome of inserting a user or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insertion {
    Inserted,
    /// Nothing was written: the new object's `id` (or, for a user, `userPrincipalName`) is taken.
    Refused {
        property: &'static str,
        taken: TakenName,
    },
}

/// Which existing object (if any) holds `name` as its user id, user principal name or group id.
pub fn name_holder(
    db: &Connection,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<TakenName>, StoreError> {
    let mut statement = db.prepare_cached(
        "SELECT 0 FROM directory_users WHERE tenant_id = ?1 AND id = ?2
         UNION ALL SELECT 1 FROM directory_users WHERE tenant_id = ?1 AND user_principal_name = ?2
         UNION ALL SELECT 2 FROM directory_groups WHERE tenant_id = ?1 AND id = ?2
         LIMIT 1",
    )?;
    let holder: Option<i64> = statement
        .query_row(params![tenant.as_str(), name], |row| row.get(0))
        .optional()?;
    Ok(holder.map(|kind| match kind {
        0 => TakenName::UserId,
        1 => TakenName::UserPrincipalName,
        _ => TakenName::GroupId,
    }))
}

/// Inserts a user unless its id or UPN is already a name of the tenant's directory.
/// A user's own id may equal its own UPN.
pub fn insert_user(
    db: &Connection,
    tenant: &TenantId,
    user: &DirectoryUser,
) -> Result<Insertion, StoreError> {
    if let Some(taken) = name_holder(db, tenant, user.id.as_str())? {
        return Ok(Insertion::Refused {
            property: "id",
            taken,
        });
    }
    if let Some(taken) = name_holder(db, tenant, &user.user_principal_name)? {
        return Ok(Insertion::Refused {
            property: "userPrincipalName",
            taken,
        });
    }
    db.prepare_cached("INSERT INTO directory_users (tenant_id, id, user_principal_name, display_name, user_type, account_enabled, password) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?
.execute(
        params![tenant.as_str(), user.id.as_str(), user.user_principal_name, user.display_name, user.user_type.as_str(), user.account_enabled, user.password],
    )?;
    Ok(Insertion::Inserted)
}

/// Finds a user by object id or by user principal name (both without regard to case).
/// Should rows written before names were unique both match, the one whose id matches wins.
pub fn find_user(
    db: &Connection,
    tenant: &TenantId,
    id_or_upn: &str,
) -> Result<Option<DirectoryUser>, StoreError> {
    Ok(db
        .prepare_cached("SELECT id, user_principal_name, display_name, user_type, account_enabled, password FROM directory_users
             WHERE tenant_id = ?1 AND (id = ?2 OR user_principal_name = ?2)
             ORDER BY id = ?2 DESC LIMIT 1")?
.query_row(
            params![tenant.as_str(), id_or_upn],
            user_from_row,
        )
        .optional()?)
}

/// The user with this object id.
pub fn get_user(
    db: &Connection,
    tenant: &TenantId,
    id: &UserId,
) -> Result<Option<DirectoryUser>, StoreError> {
    Ok(db
        .prepare_cached("SELECT id, user_principal_name, display_name, user_type, account_enabled, password FROM directory_users WHERE tenant_id = ?1 AND id = ?2")?
.query_row(
            params![tenant.as_str(), id.as_str()],
            user_from_row,
        )
        .optional()?)
}

pub fn list_users(db: &Connection, tenant: &TenantId) -> Result<Vec<DirectoryUser>, StoreError> {
    let mut statement = db.prepare_cached(
        "SELECT id, user_principal_name, display_name, user_type, account_enabled, password FROM directory_users WHERE tenant_id = ?1 ORDER BY user_principal_name",
    )?;
    let rows = statement.query_map([tenant.as_str()], user_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes a user and their memberships (only rows naming a user); returns whether the user existed.
pub fn delete_user(db: &Connection, tenant: &TenantId, id: &UserId) -> Result<bool, StoreError> {
    let n_rows = db
        .prepare_cached("DELETE FROM directory_users WHERE tenant_id = ?1 AND id = ?2")?
        .execute(params![tenant.as_str(), id.as_str()])?;
    db.prepare_cached("DELETE FROM directory_members WHERE tenant_id = ?1 AND member_type = 'user' AND member_id = ?2")?
.execute(
        params![tenant.as_str(), id.as_str()],
    )?;
    Ok(n_rows == 1)
}

/// Inserts a group unless its id is already a name of the tenant's directory.
pub fn insert_group(
    db: &Connection,
    tenant: &TenantId,
    group: &DirectoryGroup,
) -> Result<Insertion, StoreError> {
    if let Some(taken) = name_holder(db, tenant, group.id.as_str())? {
        return Ok(Insertion::Refused {
            property: "id",
            taken,
        });
    }
    db.prepare_cached("INSERT INTO directory_groups (tenant_id, id, display_name, description, mail_nickname) VALUES (?1, ?2, ?3, ?4, ?5)")?
.execute(
        params![tenant.as_str(), group.id.as_str(), group.display_name, group.description, group.mail_nickname],
    )?;
    Ok(Insertion::Inserted)
}

pub fn get_group(
    db: &Connection,
    tenant: &TenantId,
    id: &GroupId,
) -> Result<Option<DirectoryGroup>, StoreError> {
    Ok(db
        .prepare_cached("SELECT id, display_name, description, mail_nickname FROM directory_groups WHERE tenant_id = ?1 AND id = ?2")?
.query_row(
            params![tenant.as_str(), id.as_str()],
            group_from_row,
        )
        .optional()?)
}

pub fn list_groups(db: &Connection, tenant: &TenantId) -> Result<Vec<DirectoryGroup>, StoreError> {
    let mut statement =
        db.prepare_cached("SELECT id, display_name, description, mail_nickname FROM directory_groups WHERE tenant_id = ?1 ORDER BY display_name, id")?;
    let rows = statement.query_map([tenant.as_str()], group_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes a group, its member list and its own memberships in other groups (only rows naming
/// a group); returns whether it existed.
pub fn delete_group(db: &Connection, tenant: &TenantId, id: &GroupId) -> Result<bool, StoreError> {
    let n_rows = db
        .prepare_cached("DELETE FROM directory_groups WHERE tenant_id = ?1 AND id = ?2")?
        .execute(params![tenant.as_str(), id.as_str()])?;
    db.prepare_cached(
        "DELETE FROM directory_members WHERE tenant_id = ?1
         AND (group_id = ?2 OR (member_type = 'group' AND member_id = ?2))",
    )?
    .execute(params![tenant.as_str(), id.as_str()])?;
    Ok(n_rows == 1)
}

/// The user (by id or UPN) or else the group (by id) that `id_or_upn` names.
pub fn find_object(
    db: &Connection,
    tenant: &TenantId,
    id_or_upn: &str,
) -> Result<Option<DirectoryObject>, StoreError> {
    if let Some(user) = find_user(db, tenant, id_or_upn)? {
        return Ok(Some(DirectoryObject::User(user)));
    }
    let Ok(group_id) = GroupId::parse(id_or_upn) else {
        return Ok(None);
    };
    Ok(get_group(db, tenant, &group_id)?.map(DirectoryObject::Group))
}

/// Adds a membership; returns false when it already existed.
pub fn add_member(
    db: &Connection,
    tenant: &TenantId,
    group_id: &GroupId,
    member: &DirectoryMember,
) -> Result<bool, StoreError> {
    let n_rows = db.prepare_cached("INSERT OR IGNORE INTO directory_members (tenant_id, group_id, member_type, member_id) VALUES (?1, ?2, ?3, ?4)")?
.execute(
        params![tenant.as_str(), group_id.as_str(), member.member_type().as_str(), member.id()],
    )?;
    Ok(n_rows == 1)
}

pub fn remove_member(
    db: &Connection,
    tenant: &TenantId,
    group_id: &GroupId,
    member: &DirectoryMember,
) -> Result<bool, StoreError> {
    let n_rows = db.prepare_cached("DELETE FROM directory_members WHERE tenant_id = ?1 AND group_id = ?2 AND member_type = ?3 AND member_id = ?4")?
.execute(
        params![tenant.as_str(), group_id.as_str(), member.member_type().as_str(), member.id()],
    )?;
    Ok(n_rows == 1)
}

/// The direct members of a group, users and groups, in id order.
pub fn members(
    db: &Connection,
    tenant: &TenantId,
    group_id: &GroupId,
) -> Result<Vec<DirectoryMember>, StoreError> {
    let mut statement = db.prepare_cached(
        "SELECT member_type, member_id FROM directory_members WHERE tenant_id = ?1 AND group_id = ?2 ORDER BY member_id, member_type",
    )?;
    let rows = statement.query_map(params![tenant.as_str(), group_id.as_str()], |row| {
        member_from_row(row, 0)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every (group, member) pair of the tenant: the Entra half of the membership graph.
pub fn all_memberships(
    db: &Connection,
    tenant: &TenantId,
) -> Result<Vec<(GroupId, DirectoryMember)>, StoreError> {
    let mut statement = db.prepare_cached(
        "SELECT group_id, member_type, member_id FROM directory_members WHERE tenant_id = ?1",
    )?;
    let rows = statement.query_map([tenant.as_str()], |row| {
        Ok((GroupId::stored(row.get(0)?), member_from_row(row, 1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The member in columns `first` (type) and `first + 1` (id).
fn member_from_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<DirectoryMember> {
    let member_type: String = row.get(first)?;
    let member_id: String = row.get(first + 1)?;
    match MemberType::parse(&member_type) {
        Some(MemberType::User) => Ok(DirectoryMember::User(UserId::stored(member_id))),
        Some(MemberType::Group) => Ok(DirectoryMember::Group(GroupId::stored(member_id))),
        None => Err(unreadable(
            first,
            format!("directory member type '{member_type}'"),
        )),
    }
}

fn unreadable(column: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, what.into())
}

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DirectoryUser> {
    let user_type: String = row.get(3)?;
    Ok(DirectoryUser {
        id: UserId::stored(row.get(0)?),
        user_principal_name: row.get(1)?,
        display_name: row.get(2)?,
        user_type: UserType::parse(&user_type)
            .ok_or_else(|| unreadable(3, format!("user type '{user_type}'")))?,
        account_enabled: row.get(4)?,
        password: row.get(5)?,
    })
}

fn group_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DirectoryGroup> {
    Ok(DirectoryGroup {
        id: GroupId::stored(row.get(0)?),
        display_name: row.get(1)?,
        description: row.get(2)?,
        mail_nickname: row.get(3)?,
    })
}
