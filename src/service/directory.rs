//! The emulated Entra directory: users, groups and nested memberships of the caller's tenant.

use super::{Error, ResourceKind};
use crate::domain::principal::Caller;
use crate::domain::Violation;
use crate::state::AppState;
use crate::store;
use crate::store::directory::{DirectoryGroup, DirectoryUser};

pub async fn create_user(
    state: &AppState,
    caller: &Caller,
    user: DirectoryUser,
) -> Result<DirectoryUser, Error> {
    let tenant = caller.tenant.clone();
    let stored = user.clone();
    let inserted = state
        .store
        .write(move |db| store::directory::insert_user(db, &tenant, &stored))
        .await?;
    if !inserted {
        return Err(Error::AlreadyExists {
            kind: ResourceKind::User,
            id: user.user_principal_name,
        });
    }
    state.principals.membership_changed(&caller.tenant);
    Ok(user)
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

pub async fn delete_user(state: &AppState, caller: &Caller, id_or_upn: &str) -> Result<(), Error> {
    let user = get_user(state, caller, id_or_upn).await?;
    let tenant = caller.tenant.clone();
    state
        .store
        .write(move |db| store::directory::delete_user(db, &tenant, &user.id))
        .await?;
    state.principals.membership_changed(&caller.tenant);
    Ok(())
}

pub async fn create_group(
    state: &AppState,
    caller: &Caller,
    group: DirectoryGroup,
) -> Result<DirectoryGroup, Error> {
    let tenant = caller.tenant.clone();
    let stored = group.clone();
    let inserted = state
        .store
        .write(move |db| store::directory::insert_group(db, &tenant, &stored))
        .await?;
    if !inserted {
        return Err(Error::AlreadyExists {
            kind: ResourceKind::Group,
            id: group.id,
        });
    }
    Ok(group)
}

pub async fn get_group(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<DirectoryGroup, Error> {
    let (tenant, lookup) = (caller.tenant.clone(), id.to_string());
    state
        .store
        .read(move |db| store::directory::get_group(db, &tenant, &lookup))
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
    let (tenant, lookup) = (caller.tenant.clone(), id.to_string());
    let existed = state
        .store
        .write(move |db| store::directory::delete_group(db, &tenant, &lookup))
        .await?;
    if !existed {
        return Err(not_found(ResourceKind::Group, id));
    }
    state.principals.membership_changed(&caller.tenant);
    Ok(())
}

/// A directory object that can be a group member.
pub enum DirectoryObject {
    User(DirectoryUser),
    Group(DirectoryGroup),
}

/// Adds a user or a group (nested) to a group.
pub async fn add_member(
    state: &AppState,
    caller: &Caller,
    group_id: &str,
    member_id: &str,
) -> Result<(), Error> {
    let (tenant, group_lookup, member_lookup) = (
        caller.tenant.clone(),
        group_id.to_string(),
        member_id.to_string(),
    );
    let outcome = state
        .store
        .write(move |db| {
            let Some(group) = store::directory::get_group(db, &tenant, &group_lookup)? else {
                return Ok(Err(not_found(ResourceKind::Group, &group_lookup)));
            };
            let member = match store::directory::find_user(db, &tenant, &member_lookup)? {
                Some(user) => user.id,
                None => match store::directory::get_group(db, &tenant, &member_lookup)? {
                    Some(member_group) => member_group.id,
                    None => return Ok(Err(not_found(ResourceKind::User, &member_lookup))),
                },
            };
            if member.eq_ignore_ascii_case(&group.id) {
                return Ok(Err(Error::Invalid(Violation::new(
                    "members",
                    "a group cannot be a member of itself",
                ))));
            }
            if !store::directory::add_member(db, &tenant, &group.id, &member)? {
                return Ok(Err(Error::Conflict(format!(
                    "'{member}' is already a member of group '{}'",
                    group.id
                ))));
            }
            Ok(Ok(()))
        })
        .await?;
    outcome?;
    state.principals.membership_changed(&caller.tenant);
    Ok(())
}

pub async fn remove_member(
    state: &AppState,
    caller: &Caller,
    group_id: &str,
    member_id: &str,
) -> Result<(), Error> {
    let (tenant, group_lookup, member_lookup) = (
        caller.tenant.clone(),
        group_id.to_string(),
        member_id.to_string(),
    );
    let removed = state
        .store
        .write(move |db| {
            store::directory::remove_member(db, &tenant, &group_lookup, &member_lookup)
        })
        .await?;
    if !removed {
        return Err(not_found(ResourceKind::User, member_id));
    }
    state.principals.membership_changed(&caller.tenant);
    Ok(())
}

/// The group's direct members, users and groups.
pub async fn members(
    state: &AppState,
    caller: &Caller,
    group_id: &str,
) -> Result<Vec<DirectoryObject>, Error> {
    let group = get_group(state, caller, group_id).await?;
    let tenant = caller.tenant.clone();
    Ok(state
        .store
        .read(move |db| {
            let mut objects = Vec::new();
            for member in store::directory::members(db, &tenant, &group.id)? {
                if let Some(user) = store::directory::find_user(db, &tenant, &member)? {
                    objects.push(DirectoryObject::User(user));
                } else if let Some(group) = store::directory::get_group(db, &tenant, &member)? {
                    objects.push(DirectoryObject::Group(group));
                }
            }
            Ok(objects)
        })
        .await?)
}

fn not_found(kind: ResourceKind, id: &str) -> Error {
    Error::NotFound {
        kind,
        id: id.to_string(),
    }
}
