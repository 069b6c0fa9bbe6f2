//! The emulated Entra directory: users, groups and nested memberships of the caller's tenant.
//!
//! User ids, user principal names and group ids share one namespace (`domain::directory`);
//! a new object that would reuse a name is refused. Each use case is one store job, and every
//! write that can change who is in which group invalidates the principal cache as its
//! post-commit effect (`access::write_membership`).

use super::access::write_membership;
use super::{Error, ResourceKind};
use crate::domain::directory::{
    DirectoryGroup, DirectoryMember, DirectoryObject, DirectoryUser, GroupId,
};
use crate::domain::principal::Caller;
use crate::state::AppState;
use crate::store::directory::Insertion;
use crate::store::{self, refuse};

pub async fn create_user(
    state: &AppState,
    caller: &Caller,
    user: DirectoryUser,
) -> Result<DirectoryUser, Error> {
    let tenant = caller.tenant.clone();
    let stored = user.clone();
    let insertion = write_membership(state, &caller.tenant, move |db| {
        let insertion = store::directory::insert_user(db, &tenant, &stored)?;
        Ok((insertion, insertion == Insertion::Inserted))
    })
    .await?;
    match insertion {
        Insertion::Inserted => Ok(user),
        Insertion::Refused { property, taken } => {
            let value = match property {
                "id" => user.id.as_str(),
                _ => user.user_principal_name.as_str(),
            };
            Err(Error::Invalid(taken.clash(property, value)))
        }
    }
}

pub async fn get_user(
    state: &AppState,
    caller: &Caller,
    id_or_upn: &str,
) -> Result<DirectoryUser, Error> {
    super::access::find_user(state, &caller.tenant, id_or_upn)
        .await?
        .ok_or_else(|| not_found(ResourceKind::User, id_or_upn))
}

pub async fn list_users(state: &AppState, caller: &Caller) -> Result<Vec<DirectoryUser>, Error> {
    let tenant = caller.tenant.clone();
    Ok(state
        .store
        .read(move |db| store::directory::list_users(db, &tenant))
        .await?)
}

/// Deletes the user (by id or UPN) and their memberships.
pub async fn delete_user(state: &AppState, caller: &Caller, id_or_upn: &str) -> Result<(), Error> {
    let (tenant, lookup) = (caller.tenant.clone(), id_or_upn.to_string());
    let existed = write_membership(state, &caller.tenant, move |db| {
        let Some(user) = store::directory::find_user(db, &tenant, &lookup)? else {
            return Ok((false, false));
        };
        store::directory::delete_user(db, &tenant, &user.id)?;
        Ok((true, true))
    })
    .await?;
    if !existed {
        return Err(not_found(ResourceKind::User, id_or_upn));
    }
    Ok(())
}

pub async fn create_group(
    state: &AppState,
    caller: &Caller,
    group: DirectoryGroup,
) -> Result<DirectoryGroup, Error> {
    let tenant = caller.tenant.clone();
    let stored = group.clone();
    let insertion = state
        .store
        .write(move |db| store::directory::insert_group(db, &tenant, &stored))
        .await?;
    match insertion {
        Insertion::Inserted => Ok(group),
        Insertion::Refused { property, taken } => {
            Err(Error::Invalid(taken.clash(property, group.id.as_str())))
        }
    }
}

pub async fn get_group(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<DirectoryGroup, Error> {
    let group_id = group_lookup(id)?;
    let tenant = caller.tenant.clone();
    state
        .store
        .read(move |db| store::directory::get_group(db, &tenant, &group_id))
        .await?
        .ok_or_else(|| not_found(ResourceKind::Group, id))
}

pub async fn list_groups(state: &AppState, caller: &Caller) -> Result<Vec<DirectoryGroup>, Error> {
    let tenant = caller.tenant.clone();
    Ok(state
        .store
        .read(move |db| store::directory::list_groups(db, &tenant))
        .await?)
}

pub async fn delete_group(state: &AppState, caller: &Caller, id: &str) -> Result<(), Error> {
    let group_id = group_lookup(id)?;
    let tenant = caller.tenant.clone();
    let existed = write_membership(state, &caller.tenant, move |db| {
        let existed = store::directory::delete_group(db, &tenant, &group_id)?;
        Ok((existed, existed))
    })
    .await?;
    if !existed {
        return Err(not_found(ResourceKind::Group, id));
    }
    Ok(())
}

/// Adds a user (by id or UPN) or a group (nested, by id) to a group, in one store job.
pub async fn add_member(
    state: &AppState,
    caller: &Caller,
    group_id: &str,
    member_id: &str,
) -> Result<(), Error> {
    let group_id = group_lookup(group_id)?;
    let (tenant, member_lookup) = (caller.tenant.clone(), member_id.to_string());
    write_membership(state, &caller.tenant, move |db| {
        let Some(group) = store::directory::get_group(db, &tenant, &group_id)? else {
            return refuse(not_found(ResourceKind::Group, group_id.as_str()));
        };
        let Some(object) = store::directory::find_object(db, &tenant, &member_lookup)? else {
            return refuse(not_found(ResourceKind::User, &member_lookup));
        };
        let member = object.as_member();
        if let Err(violation) = member.check_can_join(&group.id) {
            return refuse(Error::Invalid(violation));
        }
        if !store::directory::add_member(db, &tenant, &group.id, &member)? {
            return refuse(Error::Conflict(format!(
                "'{}' is already a member of group '{}'",
                member.id(),
                group.id
            )));
        }
        Ok(((), true))
    })
    .await
}

/// Removes a user (by id or UPN) or a group from a group's members.
pub async fn remove_member(
    state: &AppState,
    caller: &Caller,
    group_id: &str,
    member_id: &str,
) -> Result<(), Error> {
    let Ok(group_id) = GroupId::parse(group_id) else {
        return Err(not_found(ResourceKind::User, member_id));
    };
    let (tenant, member_lookup) = (caller.tenant.clone(), member_id.to_string());
    let removed = write_membership(state, &caller.tenant, move |db| {
        let Some(object) = store::directory::find_object(db, &tenant, &member_lookup)? else {
            return Ok((false, false));
        };
        let removed = store::directory::remove_member(db, &tenant, &group_id, &object.as_member())?;
        Ok((removed, removed))
    })
    .await?;
    if !removed {
        return Err(not_found(ResourceKind::User, member_id));
    }
    Ok(())
}

/// The group's direct members, users and groups.
pub async fn members(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Vec<DirectoryObject>, Error> {
    let group_id = group_lookup(id)?;
    let tenant = caller.tenant.clone();
    let objects = state
        .store
        .read(move |db| {
            let Some(group) = store::directory::get_group(db, &tenant, &group_id)? else {
                return Ok(None);
            };
            let mut objects = Vec::new();
            for member in store::directory::members(db, &tenant, &group.id)? {
                let object = match &member {
                    DirectoryMember::User(id) => {
                        store::directory::get_user(db, &tenant, id)?.map(DirectoryObject::User)
                    }
                    DirectoryMember::Group(id) => {
                        store::directory::get_group(db, &tenant, id)?.map(DirectoryObject::Group)
                    }
                };
                objects.extend(object);
            }
            Ok(Some(objects))
        })
        .await?;
    objects.ok_or_else(|| not_found(ResourceKind::Group, id))
}

/// A group id from a path: one that cannot be an id names no group.
fn group_lookup(id: &str) -> Result<GroupId, Error> {
    GroupId::parse(id).map_err(|_| not_found(ResourceKind::Group, id))
}

fn not_found(kind: ResourceKind, id: &str) -> Error {
    Error::NotFound {
        kind,
        id: id.to_string(),
    }
}
