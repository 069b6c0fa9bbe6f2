//! External groups of a connection and their members (users, Entra groups, external groups).
//!
//! Member changes check the group and write in one store job (a concurrent delete of the group
//! cannot leave orphan members behind), and invalidate the principal cache as that job's
//! post-commit effect (`access::write_membership`).

use super::access::write_membership;
use super::{Error, JobResult, ResourceKind};
use crate::domain::directory::{ExternalMemberType, GroupId, UserId};
use crate::domain::ids::{ConnectionId, ExternalGroupId, TenantId};
use crate::domain::principal::Caller;
use crate::domain::Violation;
use crate::state::AppState;
use crate::store::groups::ExternalGroup;
use crate::store::{self, refuse};

/// External groups per tenant (spec/limits.md).
pub const MAX_EXTERNAL_GROUPS_PER_TENANT: u64 = 100_000;

pub async fn create(
    state: &AppState,
    caller: &Caller,
    connection_id: &ConnectionId,
    group: ExternalGroup,
) -> Result<ExternalGroup, Error> {
    ExternalGroupId::parse(&group.id)?;
    let (tenant, connection_id) = (caller.tenant.clone(), connection_id.clone());
    let stored = group.clone();
    state
        .store
        .write_or_refuse(move |db| {
            if store::connections::state(db, &tenant, &connection_id)?.is_none() {
                return refuse(not_found(ResourceKind::Connection, connection_id.as_str()));
            }
            if store::groups::count_in_tenant(db, &tenant)? >= MAX_EXTERNAL_GROUPS_PER_TENANT {
                return refuse(Error::QuotaExceeded(format!(
                    "the tenant already holds the maximum of {MAX_EXTERNAL_GROUPS_PER_TENANT} external groups"
                )));
            }
            if !store::groups::insert(db, &tenant, &connection_id, &stored)? {
                return refuse(Error::AlreadyExists {
                    kind: ResourceKind::ExternalGroup,
                    id: stored.id.clone(),
                });
            }
            Ok(())
        })
        .await?;
    Ok(group)
}

pub async fn get(
    state: &AppState,
    caller: &Caller,
    connection_id: &ConnectionId,
    group_id: &str,
) -> Result<ExternalGroup, Error> {
    let (tenant, connection_lookup, lookup) = (
        caller.tenant.clone(),
        connection_id.clone(),
        group_id.to_string(),
    );
    let (connection_exists, group) = state
        .store
        .read(move |db| {
            Ok((
                store::connections::state(db, &tenant, &connection_lookup)?.is_some(),
                store::groups::get(db, &tenant, &connection_lookup, &lookup)?,
            ))
        })
        .await?;
    if !connection_exists {
        return Err(not_found(ResourceKind::Connection, connection_id.as_str()));
    }
    group.ok_or_else(|| not_found(ResourceKind::ExternalGroup, group_id))
}

/// Updates `displayName` and `description` (PATCH semantics: `None` keeps the value).
pub async fn update(
    state: &AppState,
    caller: &Caller,
    connection_id: &ConnectionId,
    group_id: &str,
    display_name: Option<Option<String>>,
    description: Option<Option<String>>,
) -> Result<(), Error> {
    let mut group = get(state, caller, connection_id, group_id).await?;
    if let Some(display_name) = display_name {
        group.display_name = display_name;
    }
    if let Some(description) = description {
        group.description = description;
    }
    let (tenant, connection_id) = (caller.tenant.clone(), connection_id.clone());
    state
        .store
        .write(move |db| store::groups::update(db, &tenant, &connection_id, &group))
        .await?;
    Ok(())
}

pub async fn delete(
    state: &AppState,
    caller: &Caller,
    connection_id: &ConnectionId,
    group_id: &str,
) -> Result<(), Error> {
    let (tenant, connection_id, group_id) = (
        caller.tenant.clone(),
        connection_id.clone(),
        group_id.to_string(),
    );
    write_membership(state, &caller.tenant, move |db| {
        check_group(db, &tenant, &connection_id, &group_id)?;
        store::groups::delete(db, &tenant, &connection_id, &group_id)?;
        Ok(((), true))
    })
    .await
}

/// Adds a member of type `user`, `group` or `externalGroup`. Members may name groups that do not exist yet.
pub async fn add_member(
    state: &AppState,
    caller: &Caller,
    connection_id: &ConnectionId,
    group_id: &str,
    member_id: &str,
    member_type: ExternalMemberType,
) -> Result<(), Error> {
    check_member(group_id, member_id, member_type)?;
    let (tenant, connection_id, group, member) = (
        caller.tenant.clone(),
        connection_id.clone(),
        group_id.to_string(),
        member_id.to_string(),
    );
    write_membership(state, &caller.tenant, move |db| {
        check_group(db, &tenant, &connection_id, &group)?;
        if !store::groups::add_member(db, &tenant, &connection_id, &group, &member, member_type)? {
            return refuse(Error::Conflict(format!(
                "'{member}' is already a member of external group '{group}'."
            )));
        }
        Ok(((), true))
    })
    .await
}

pub async fn remove_member(
    state: &AppState,
    caller: &Caller,
    connection_id: &ConnectionId,
    group_id: &str,
    member_id: &str,
) -> Result<(), Error> {
    let (tenant, connection_id, group, member) = (
        caller.tenant.clone(),
        connection_id.clone(),
        group_id.to_string(),
        member_id.to_string(),
    );
    write_membership(state, &caller.tenant, move |db| {
        check_group(db, &tenant, &connection_id, &group)?;
        if !store::groups::remove_member(db, &tenant, &connection_id, &group, &member)? {
            return refuse(Error::NotFound {
                kind: ResourceKind::ExternalGroup,
                id: member,
            });
        }
        Ok(((), true))
    })
    .await
}

/// The rules a member must meet on its own: an id of its type's form, and not the group itself.
pub fn check_member(
    group_id: &str,
    member_id: &str,
    member_type: ExternalMemberType,
) -> Result<(), Error> {
    match member_type {
        ExternalMemberType::User => {
            UserId::parse(member_id)?;
        }
        ExternalMemberType::Group => {
            GroupId::parse(member_id)?;
        }
        ExternalMemberType::ExternalGroup => {
            ExternalGroupId::parse(member_id)?;
            if member_id == group_id {
                return Err(Error::Invalid(Violation::new(
                    "id",
                    format!("external group '{group_id}' cannot be a member of itself"),
                )));
            }
        }
    }
    Ok(())
}

/// Inside a store job: the connection and the group exist, or the `NotFound` to answer.
fn check_group(
    db: &rusqlite::Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    group_id: &str,
) -> JobResult<()> {
    if store::connections::state(db, tenant, connection_id)?.is_none() {
        return refuse(not_found(ResourceKind::Connection, connection_id.as_str()));
    }
    if store::groups::get(db, tenant, connection_id, group_id)?.is_none() {
        return refuse(not_found(ResourceKind::ExternalGroup, group_id));
    }
    Ok(())
}

fn not_found(kind: ResourceKind, id: &str) -> Error {
    Error::NotFound {
        kind,
        id: id.to_string(),
    }
}
