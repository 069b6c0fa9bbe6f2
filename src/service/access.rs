//! Who may see what: expanding a user's memberships (cached until a membership changes in the
//! tenant) and explaining an item's access decision.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::{Error, ResourceKind};
use crate::domain::acl::{
    evaluate, AccessDecision, Member, MembershipGraph, Principals, UserIdentity,
};
use crate::domain::ids::{ConnectionId, ItemId, TenantId};
use crate::domain::item::ExternalItem;
use crate::state::AppState;
use crate::store;
use crate::store::directory::DirectoryUser;

/// (tenant, lowercased user id, lowercased connection id).
type CacheKey = (TenantId, String, String);
/// The membership generation an expansion was made at, and the expansion.
type CachedPrincipals = (u64, Arc<Principals>);

/// Expanded principal sets per (tenant, user, connection), valid while the tenant's membership
/// generation is unchanged. Every membership write bumps the generation, so the very next
/// search or explanation sees the change.
#[derive(Debug, Default, Clone)]
pub struct PrincipalCache {
    generations: Arc<RwLock<HashMap<TenantId, u64>>>,
    entries: Arc<RwLock<HashMap<CacheKey, CachedPrincipals>>>,
}

impl PrincipalCache {
    fn generation(&self, tenant: &TenantId) -> u64 {
        self.generations
            .read()
            .expect("cache lock")
            .get(tenant)
            .copied()
            .unwrap_or(0)
    }

    /// Invalidates every expansion of the tenant (a membership, user or group changed).
    pub fn membership_changed(&self, tenant: &TenantId) {
        *self
            .generations
            .write()
            .expect("cache lock")
            .entry(tenant.clone())
            .or_default() += 1;
        self.entries
            .write()
            .expect("cache lock")
            .retain(|(t, _, _), _| t != tenant);
    }

    pub fn clear(&self) {
        let tenants: Vec<TenantId> = self
            .generations
            .read()
            .expect("cache lock")
            .keys()
            .cloned()
            .collect();
        for tenant in tenants {
            self.membership_changed(&tenant);
        }
        self.entries.write().expect("cache lock").clear();
    }
}

/// The identity a decision is made for: the directory user, or (for a token naming a user the
/// directory does not know) a member user with no groups.
pub fn identity_of(user: &DirectoryUser) -> UserIdentity {
    UserIdentity {
        id: user.id.clone(),
        user_principal_name: Some(user.user_principal_name.clone()),
        is_guest: user.user_type.eq_ignore_ascii_case("Guest"),
    }
}

/// Finds a directory user by id or UPN.
pub async fn find_user(
    state: &AppState,
    tenant: &TenantId,
    id_or_upn: &str,
) -> Result<Option<DirectoryUser>, Error> {
    let (tenant, lookup) = (tenant.clone(), id_or_upn.to_string());
    Ok(state
        .store
        .read(move |db| store::directory::find_user(db, &tenant, &lookup))
        .await?)
}

/// The user's expanded principals for one connection's external groups (and the tenant's Entra groups).
pub async fn principals(
    state: &AppState,
    tenant: &TenantId,
    user: UserIdentity,
    connection_id: &ConnectionId,
) -> Result<Arc<Principals>, Error> {
    let cache = &state.principals;
    let generation = cache.generation(tenant);
    let key = (
        tenant.clone(),
        user.id.to_ascii_lowercase(),
        connection_id.as_str().to_ascii_lowercase(),
    );
    if let Some((cached_generation, principals)) =
        cache.entries.read().expect("cache lock").get(&key)
    {
        if *cached_generation == generation && principals.user == user {
            return Ok(principals.clone());
        }
    }
    let (lookup_tenant, lookup_connection) = (tenant.clone(), connection_id.clone());
    let (entra, external) = state
        .store
        .read(move |db| {
            Ok((
                store::directory::all_memberships(db, &lookup_tenant)?,
                store::groups::all_memberships(db, &lookup_tenant, &lookup_connection)?,
            ))
        })
        .await?;
    let graph = membership_graph(&entra, &external);
    let principals = Arc::new(Principals::expand(user, &graph));
    cache
        .entries
        .write()
        .expect("cache lock")
        .insert(key, (generation, principals.clone()));
    Ok(principals)
}

/// Builds the membership graph. Directory memberships do not record whether the member is a user
/// or a group (object ids are unique across both), so each member is entered as both.
pub fn membership_graph(
    entra: &[(String, String)],
    external: &[(String, String, String)],
) -> MembershipGraph {
    let mut graph = MembershipGraph::default();
    for (group, member) in entra {
        graph.add(Member::Group(group.clone()), Member::User(member.clone()));
        graph.add(Member::Group(group.clone()), Member::Group(member.clone()));
    }
    for (group, member, member_type) in external {
        let member = match member_type.as_str() {
            "user" => Member::User(member.clone()),
            "group" => Member::Group(member.clone()),
            _ => Member::ExternalGroup(member.clone()),
        };
        graph.add(Member::ExternalGroup(group.clone()), member);
    }
    graph
}

/// Whether `user_id_or_upn` may see the item, and why.
pub struct Explanation {
    pub item: ExternalItem,
    pub decision: AccessDecision,
}

pub async fn explain(
    state: &AppState,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    item_id: &ItemId,
    user_id_or_upn: &str,
) -> Result<Explanation, Error> {
    let Some(user) = find_user(state, tenant, user_id_or_upn).await? else {
        return Err(Error::NotFound {
            kind: ResourceKind::User,
            id: user_id_or_upn.to_string(),
        });
    };
    let caller = crate::domain::principal::Caller {
        tenant: tenant.clone(),
        ..crate::domain::principal::Caller::default_app()
    };
    let item = super::items::get(state, &caller, connection_id, item_id).await?;
    let principals = principals(state, tenant, identity_of(&user), connection_id).await?;
    let decision = evaluate(&item.acl, &principals);
    Ok(Explanation { item, decision })
}
