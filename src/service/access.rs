//! Who may see what: expanding a user's memberships (cached until a membership changes in the
//! tenant) and explaining an item's access decision.
//!
//! Membership writes invalidate the cache through `PrincipalCache::invalidation`, a post-commit
//! effect of the store write itself, so a client that goes away mid-request cannot skip it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::{Error, ResourceKind};
use crate::domain::acl::{
    evaluate, AccessDecision, Member, MembershipGraph, Principals, UserIdentity,
    MAX_EXTERNAL_GROUPS_PER_QUERY,
};
use crate::domain::directory::{
    DirectoryMember, DirectoryUser, ExternalMemberType, GroupId, UserType,
};
use crate::domain::ids::{ConnectionId, ItemId, TenantId};
use crate::domain::item::ExternalItem;
use crate::domain::Violation;
use crate::state::AppState;
use crate::store;
use crate::store::Effect;

/// Expansions cached at most; the cache starts over beyond this.
pub const MAX_CACHED_EXPANSIONS: usize = 10_000;

/// (tenant, lowercased user id, lowercased connection id).
type CacheKey = (TenantId, String, String);
/// The membership generation an expansion was made at, and the expansion.
type CachedPrincipals = (u64, Arc<Principals>);
/// The generation a user was looked up at, and what was found.
type CachedUser = (u64, Option<DirectoryUser>);

/// Expanded principal sets per (tenant, user, connection), valid while the tenant's membership
/// generation is unchanged. Every membership write bumps the generation, so the very next
/// search or explanation sees the change.
#[derive(Debug, Clone)]
pub struct PrincipalCache {
    generations: Arc<RwLock<HashMap<TenantId, u64>>>,
    entries: Arc<RwLock<HashMap<CacheKey, CachedPrincipals>>>,
    /// Directory users by (tenant, lowercased id or UPN) as found at a generation (`None`: no
    /// such user), so that a search does not ask the store who its caller is every time.
    users: Arc<RwLock<HashMap<(TenantId, String), CachedUser>>>,
    /// Entries kept at most (`MAX_CACHED_EXPANSIONS` unless set lower).
    capacity: Arc<std::sync::atomic::AtomicUsize>,
}

impl Default for PrincipalCache {
    fn default() -> PrincipalCache {
        PrincipalCache {
            generations: Arc::default(),
            entries: Arc::default(),
            users: Arc::default(),
            capacity: Arc::new(std::sync::atomic::AtomicUsize::new(MAX_CACHED_EXPANSIONS)),
        }
    }
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
        self.users
            .write()
            .expect("cache lock")
            .retain(|(t, _), _| t != tenant);
    }

    /// The post-commit effect of a membership write: runs `membership_changed` on the store
    /// thread right after the commit, whether or not the writer still awaits the answer.
    pub fn invalidation(&self, tenant: &TenantId) -> Effect {
        let (cache, tenant) = (self.clone(), tenant.clone());
        Box::new(move || cache.membership_changed(&tenant))
    }

    /// Lowers (or restores) the bound on cached expansions; tests use a small one.
    pub fn set_capacity(&self, capacity: usize) {
        self.capacity
            .store(capacity.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Expansions cached now.
    pub fn len(&self) -> usize {
        self.entries.read().expect("cache lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        self.users.write().expect("cache lock").clear();
    }
}

/// The identity a decision is made for: the directory user, or (for a token naming a user the
/// directory does not know) a member user with no groups.
pub fn identity_of(user: &DirectoryUser) -> UserIdentity {
    UserIdentity {
        id: user.id.as_str().to_string(),
        user_principal_name: Some(user.user_principal_name.clone()),
        is_guest: user.user_type == UserType::Guest,
    }
}

/// Runs a store write whose post-commit effect, when the write reports `true` beside its
/// result, invalidates the tenant's expanded principals. The invalidation runs on the store
/// thread in commit order, before the answer, even if the caller stopped waiting.
pub(super) async fn write_membership<R, F>(
    state: &AppState,
    tenant: &TenantId,
    write: F,
) -> Result<R, Error>
where
    R: Send + 'static,
    F: FnOnce(&rusqlite::Connection) -> super::JobResult<(R, bool)> + Send + 'static,
{
    let invalidation = state.principals.invalidation(tenant);
    Ok(state
        .store
        .write_or_refuse_with_effect(move |db| {
            let (result, changed) = write(db)?;
            Ok((result, changed.then_some(invalidation)))
        })
        .await?)
}

/// Finds a directory user by id or UPN.
pub async fn find_user(
    state: &AppState,
    tenant: &TenantId,
    id_or_upn: &str,
) -> Result<Option<DirectoryUser>, Error> {
    let cache = &state.principals;
    let key = (tenant.clone(), id_or_upn.to_ascii_lowercase());
    // Read before the store: a change committed meanwhile bumps the generation, so what is
    // cached below is never taken for newer than it is.
    let generation = cache.generation(tenant);
    if let Some((cached_generation, user)) = cache.users.read().expect("cache lock").get(&key) {
        if *cached_generation == generation {
            return Ok(user.clone());
        }
    }
    let (lookup_tenant, lookup) = (tenant.clone(), id_or_upn.to_string());
    let user = state
        .store
        .read(move |db| store::directory::find_user(db, &lookup_tenant, &lookup))
        .await?;
    let mut users = cache.users.write().expect("cache lock");
    if users.len() >= cache.capacity.load(std::sync::atomic::Ordering::Relaxed) {
        users.clear();
    }
    users.insert(key, (generation, user.clone()));
    Ok(user)
}

/// The user's expanded principals for one connection's external groups (and the tenant's Entra groups).
/// A cache miss builds the graph and walks it on a blocking thread; a user in more external
/// groups than a query allows is refused (`Error::Invalid`) as soon as the walk finds one too many.
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
    let expansion = tokio::task::spawn_blocking(move || {
        let graph = membership_graph(&entra, &external);
        Principals::expand(user, &graph, MAX_EXTERNAL_GROUPS_PER_QUERY)
    })
    .await
    .map_err(|error| Error::Internal(format!("principal expansion: {error}")))?;
    let principals = Arc::new(expansion.map_err(|too_many| {
        Error::Invalid(Violation::new(
            "requests",
            format!(
                "the user is in more than the {} external groups of connection '{connection_id}' that a query allows",
                too_many.limit
            ),
        ))
    })?);
    let mut entries = cache.entries.write().expect("cache lock");
    if entries.len() >= cache.capacity.load(std::sync::atomic::Ordering::Relaxed) {
        // Tokens may name any user id: past the bound, start over rather than grow.
        entries.clear();
    }
    entries.insert(key, (generation, principals.clone()));
    Ok(principals)
}

/// Builds the membership graph from the typed membership rows of the store.
pub fn membership_graph(
    entra: &[(GroupId, DirectoryMember)],
    external: &[(String, ExternalMemberType, String)],
) -> MembershipGraph {
    let mut graph = MembershipGraph::default();
    for (group, member) in entra {
        let member = match member {
            DirectoryMember::User(id) => Member::User(id.as_str().to_string()),
            DirectoryMember::Group(id) => Member::Group(id.as_str().to_string()),
        };
        graph.add(Member::Group(group.as_str().to_string()), member);
    }
    for (group, member_type, member) in external {
        let member = match member_type {
            ExternalMemberType::User => Member::User(member.clone()),
            ExternalMemberType::Group => Member::Group(member.clone()),
            ExternalMemberType::ExternalGroup => Member::ExternalGroup(member.clone()),
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
