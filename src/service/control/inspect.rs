//! What the web console shows: the tenants, a tenant's overview, its items page by page with
//! each ACL entry resolved to who it names, and its membership graph with cycles and a user's
//! chains. Read-only, and every answer is about the one tenant asked for.

use std::collections::HashMap;

use crate::domain::acl::{AclEntry, AclPrincipal, Member, Principals};
use crate::domain::connection::ExternalConnection;
use crate::domain::directory::{
    DirectoryGroup, DirectoryMember, DirectoryUser, ExternalMemberType,
};
use crate::domain::group_graph;
use crate::domain::ids::{ConnectionId, ItemId, TenantId};
use crate::domain::item::ExternalItem;
use crate::domain::operation::ConnectionOperation;
use crate::domain::schema::Schema;
use crate::service::access;
use crate::service::{Error, ResourceKind};
use crate::state::AppState;
use crate::store;
use crate::store::tenants::TenantCounts;

/// Items a console page holds at most.
pub const MAX_PAGE_SIZE: usize = 200;

/// Every tenant that holds something; the default tenant always comes first.
pub async fn tenants(state: &AppState) -> Result<Vec<TenantCounts>, Error> {
    let mut tenants = state.store.read(store::tenants::list).await?;
    let default = TenantId::default_tenant();
    let position = tenants.iter().position(|t| t.tenant == default);
    let first = match position {
        Some(position) => tenants.remove(position),
        None => TenantCounts {
            tenant: default,
            users: 0,
            groups: 0,
            connections: 0,
            items: 0,
        },
    };
    tenants.insert(0, first);
    Ok(tenants)
}

/// One connection as the overview shows it.
#[derive(Debug, Clone)]
pub struct ConnectionOverview {
    pub connection: ExternalConnection,
    /// The schema as `GET .../schema` answers it (the last one submitted).
    pub schema: Option<Schema>,
    pub operations: Vec<ConnectionOperation>,
    pub item_count: u64,
    pub items_remaining: u64,
}

#[derive(Debug, Clone)]
pub struct Overview {
    pub users: Vec<DirectoryUser>,
    pub groups: Vec<DirectoryGroup>,
    pub connections: Vec<ConnectionOverview>,
}

pub async fn overview(state: &AppState, tenant: &TenantId) -> Result<Overview, Error> {
    let tenant = tenant.clone();
    let (per_tenant, per_connection) = (
        state.config.tenant_item_quota(),
        state.config.max_items_per_connection,
    );
    Ok(state
        .store
        .read(move |db| {
            let in_tenant = store::items::count_in_tenant(db, &tenant)?;
            let mut connections = Vec::new();
            for connection in store::connections::list(db, &tenant)? {
                let id = connection.id.clone();
                let item_count = store::items::count_in_connection(db, &tenant, &id)?;
                connections.push(ConnectionOverview {
                    schema: store::schema::get_schemas(db, &tenant, &id)?.map(|s| s.readable),
                    operations: store::schema::list_operations(db, &tenant, &id)?,
                    item_count,
                    items_remaining: per_connection
                        .saturating_sub(item_count)
                        .min(per_tenant.saturating_sub(in_tenant)),
                    connection,
                });
            }
            Ok(Overview {
                users: store::directory::list_users(db, &tenant)?,
                groups: store::directory::list_groups(db, &tenant)?,
                connections,
            })
        })
        .await?)
}

fn connection_not_found(connection_id: &ConnectionId) -> Error {
    Error::NotFound {
        kind: ResourceKind::Connection,
        id: connection_id.to_string(),
    }
}

#[derive(Debug, Clone)]
pub struct ItemsPage {
    pub items: Vec<ExternalItem>,
    /// Items the filter keeps (all of the connection's without one).
    pub total: u64,
}

/// Item ids one store job reads at most while paging or filtering: the scan goes on in
/// further jobs, so writes and searches are served between its chunks.
const SCAN_CHUNK: usize = 5_000;

/// A page of the connection's items in id order; `contains` keeps items whose id or a property
/// value contains it (ASCII letters without regard to case). Counting a filter's matches reads
/// the whole connection, in chunks of `SCAN_CHUNK` ids.
pub async fn items(
    state: &AppState,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    contains: Option<String>,
    skip: usize,
    top: usize,
) -> Result<ItemsPage, Error> {
    let contains = contains
        .filter(|text| !text.is_empty())
        .map(|text| text.to_ascii_lowercase());
    let (lookup_tenant, lookup) = (tenant.clone(), connection_id.clone());
    let Some(in_connection) = state
        .store
        .read(
            move |db| match store::connections::state(db, &lookup_tenant, &lookup)? {
                None => Ok(None),
                Some(_) => store::items::count_in_connection(db, &lookup_tenant, &lookup).map(Some),
            },
        )
        .await?
    else {
        return Err(connection_not_found(connection_id));
    };
    let wanted = skip.saturating_add(top);
    let mut page_ids: Vec<String> = Vec::with_capacity(top);
    let mut matched: u64 = 0;
    let mut after: Option<String> = None;
    loop {
        // Without a filter the scan stops at the page's end (the count is kept in the store).
        let limit = match contains {
            None => SCAN_CHUNK
                .min(wanted.saturating_sub(matched as usize))
                .max(1),
            Some(_) => SCAN_CHUNK,
        };
        let (tenant, lookup, filter, from) = (
            tenant.clone(),
            connection_id.clone(),
            contains.clone(),
            after.take(),
        );
        let chunk = state
            .store
            .read(move |db| {
                store::items::scan_ids(
                    db,
                    &tenant,
                    &lookup,
                    from.as_deref(),
                    filter.as_deref(),
                    limit,
                )
            })
            .await?;
        let done = chunk.len() < limit;
        after = chunk.last().map(|(id, _)| id.clone());
        for (id, keeps) in chunk {
            if !keeps {
                continue;
            }
            if matched >= skip as u64 && page_ids.len() < top {
                page_ids.push(id);
            }
            matched += 1;
        }
        if done || (contains.is_none() && matched as usize >= wanted) {
            break;
        }
    }
    let total = match contains {
        None => in_connection,
        Some(_) => matched,
    };
    let (tenant, lookup) = (tenant.clone(), connection_id.clone());
    let items = state
        .store
        .read(move |db| {
            let mut items = Vec::with_capacity(page_ids.len());
            for id in page_ids {
                // An item deleted meanwhile is left out of the page.
                if let Ok(id) = ItemId::parse(&id) {
                    if let Some(item) = store::items::get(db, &tenant, &lookup, &id)? {
                        items.push(item);
                    }
                }
            }
            Ok(items)
        })
        .await?;
    Ok(ItemsPage { items, total })
}

/// Who an ACL entry names, as found in the tenant.
#[derive(Debug, Clone)]
pub enum Named {
    User(Option<DirectoryUser>),
    /// The group (when it exists) and its direct members.
    Group(Option<DirectoryGroup>, usize),
    /// The external group's display name (when it exists) and its direct members.
    ExternalGroup(Option<Option<String>>, usize),
    Everyone,
    EveryoneExceptGuests,
}

#[derive(Debug, Clone)]
pub struct ResolvedEntry {
    pub entry: AclEntry,
    pub named: Named,
}

#[derive(Debug, Clone)]
pub struct ItemDetail {
    pub item: ExternalItem,
    pub acl: Vec<ResolvedEntry>,
}

/// The item with each ACL entry resolved to the user or group it names.
pub async fn item(
    state: &AppState,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    item_id: &ItemId,
) -> Result<ItemDetail, Error> {
    let (tenant, connection, id) = (tenant.clone(), connection_id.clone(), item_id.clone());
    let found = state
        .store
        .read(move |db| {
            if store::connections::state(db, &tenant, &connection)?.is_none() {
                return Ok(Err(ResourceKind::Connection));
            }
            let Some(item) = store::items::get(db, &tenant, &connection, &id)? else {
                return Ok(Err(ResourceKind::Item));
            };
            let mut acl = Vec::with_capacity(item.acl.len());
            // Direct members per group, counted once per kind (an ACL may name thousands).
            let mut entra: Option<HashMap<String, usize>> = None;
            let mut external: Option<HashMap<String, usize>> = None;
            for entry in &item.acl {
                let named = match entry.principal() {
                    AclPrincipal::User(id) => {
                        Named::User(store::directory::find_user(db, &tenant, &id)?)
                    }
                    AclPrincipal::Group(id) => {
                        let counts = match &entra {
                            Some(counts) => counts,
                            None => {
                                let mut counts = HashMap::new();
                                for (group, _) in store::directory::all_memberships(db, &tenant)? {
                                    *counts
                                        .entry(group.as_str().to_ascii_lowercase())
                                        .or_insert(0) += 1;
                                }
                                entra.insert(counts)
                            }
                        };
                        let members = counts.get(&id.to_ascii_lowercase()).copied().unwrap_or(0);
                        let group = store::directory::get_group(
                            db,
                            &tenant,
                            &crate::domain::directory::GroupId::stored(id),
                        )?;
                        Named::Group(group, members)
                    }
                    AclPrincipal::ExternalGroup(id) => {
                        let counts = match &external {
                            Some(counts) => counts,
                            None => {
                                let mut counts = HashMap::new();
                                for (group, _, _) in
                                    store::groups::all_memberships(db, &tenant, &connection)?
                                {
                                    *counts.entry(group).or_insert(0) += 1;
                                }
                                external.insert(counts)
                            }
                        };
                        let members = counts.get(&id).copied().unwrap_or(0);
                        let group = store::groups::get(db, &tenant, &connection, &id)?;
                        Named::ExternalGroup(group.map(|g| g.display_name), members)
                    }
                    AclPrincipal::Everyone => Named::Everyone,
                    AclPrincipal::EveryoneExceptGuests => Named::EveryoneExceptGuests,
                };
                acl.push(ResolvedEntry {
                    entry: entry.clone(),
                    named,
                });
            }
            Ok(Ok(ItemDetail { item, acl }))
        })
        .await?;
    found.map_err(|kind| Error::NotFound {
        kind,
        id: match kind {
            ResourceKind::Connection => connection_id.to_string(),
            _ => item_id.as_str().to_string(),
        },
    })
}

/// A group of the graph: Entra (`connection_id` is `None`) or external.
#[derive(Debug, Clone)]
pub struct GroupNode {
    pub group_id: String,
    pub connection_id: Option<ConnectionId>,
    pub display_name: Option<String>,
    pub members: Vec<GroupNodeMember>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    User,
    Group,
    ExternalGroup,
}

impl MemberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::User => "user",
            MemberKind::Group => "group",
            MemberKind::ExternalGroup => "externalGroup",
        }
    }
}

#[derive(Debug, Clone)]
pub struct GroupNodeMember {
    pub kind: MemberKind,
    pub id: String,
    pub display_name: Option<String>,
    /// The member's own node, when it is a group of the graph.
    pub node: Option<usize>,
}

/// Path steps all chains of one answer may hold together: a user at the bottom of a deep
/// nesting would otherwise get chains whose total length grows with the square of the depth.
pub const MAX_CHAIN_STEPS: usize = 100_000;

/// How a user is in a group: the group one step before it (`None`: the user is a direct
/// member), and, within `MAX_CHAIN_STEPS`, the whole chain, user first.
#[derive(Debug, Clone)]
pub struct MembershipChain {
    pub node: usize,
    pub via: Option<usize>,
    pub path: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct GroupGraph {
    pub nodes: Vec<GroupNode>,
    /// Groups that contain themselves through nesting: node positions, one list per cycle.
    pub cycles: Vec<Vec<usize>>,
    /// With a user: how they reach each group they are in.
    pub chains: Vec<MembershipChain>,
    /// Some chains have no `path`: the steps went over `MAX_CHAIN_STEPS`.
    pub chains_truncated: bool,
}

/// The tenant's directory groups and every connection's external groups, with their members,
/// cycles, and with `user` the chain by which that user is in each group.
pub async fn groups(
    state: &AppState,
    tenant: &TenantId,
    user: Option<&str>,
) -> Result<GroupGraph, Error> {
    let user = match user {
        None => None,
        Some(user) => match access::find_user(state, tenant, user).await? {
            Some(found) => Some(found),
            None => {
                return Err(Error::NotFound {
                    kind: ResourceKind::User,
                    id: user.to_string(),
                })
            }
        },
    };
    let lookup = tenant.clone();
    let stored = state
        .store
        .read(move |db| {
            let mut external = Vec::new();
            for connection in store::connections::list(db, &lookup)? {
                let groups = store::groups::list(db, &lookup, &connection.id)?;
                let members = store::groups::all_memberships(db, &lookup, &connection.id)?;
                external.push((connection.id, groups, members));
            }
            Ok((
                store::directory::list_users(db, &lookup)?,
                store::directory::list_groups(db, &lookup)?,
                store::directory::all_memberships(db, &lookup)?,
                external,
            ))
        })
        .await?;
    tokio::task::spawn_blocking(move || build_graph(stored, user))
        .await
        .map_err(|error| Error::Internal(format!("group graph: {error}")))
}

/// A connection's external groups and their (group, member type, member) rows.
type ExternalGroups = (
    ConnectionId,
    Vec<store::groups::ExternalGroup>,
    Vec<(String, ExternalMemberType, String)>,
);

type StoredGroups = (
    Vec<DirectoryUser>,
    Vec<DirectoryGroup>,
    Vec<(crate::domain::directory::GroupId, DirectoryMember)>,
    Vec<ExternalGroups>,
);

fn build_graph(
    (users, groups, entra, external): StoredGroups,
    user: Option<DirectoryUser>,
) -> GroupGraph {
    let user_names: HashMap<String, &DirectoryUser> = users
        .iter()
        .flat_map(|u| {
            [
                (u.id.as_str().to_ascii_lowercase(), u),
                (u.user_principal_name.to_ascii_lowercase(), u),
            ]
        })
        .collect();
    let mut nodes: Vec<GroupNode> = Vec::new();
    // Entra groups by lowercased id; external groups by (connection, id).
    let mut entra_nodes: HashMap<String, usize> = HashMap::new();
    let mut external_nodes: HashMap<(usize, String), usize> = HashMap::new();
    for group in &groups {
        entra_nodes.insert(group.id.as_str().to_ascii_lowercase(), nodes.len());
        nodes.push(GroupNode {
            group_id: group.id.as_str().to_string(),
            connection_id: None,
            display_name: Some(group.display_name.clone()),
            members: Vec::new(),
        });
    }
    for (position, (connection_id, groups, _)) in external.iter().enumerate() {
        for group in groups {
            external_nodes.insert((position, group.id.clone()), nodes.len());
            nodes.push(GroupNode {
                group_id: group.id.clone(),
                connection_id: Some(connection_id.clone()),
                display_name: group.display_name.clone(),
                members: Vec::new(),
            });
        }
    }
    let user_member = |id: &str| GroupNodeMember {
        kind: MemberKind::User,
        id: id.to_string(),
        display_name: user_names
            .get(&id.to_ascii_lowercase())
            .map(|u| u.display_name.clone()),
        node: None,
    };
    let group_member = |id: &str, nodes: &[GroupNode]| {
        let node = entra_nodes.get(&id.to_ascii_lowercase()).copied();
        GroupNodeMember {
            kind: MemberKind::Group,
            id: id.to_string(),
            display_name: node.and_then(|n| nodes[n].display_name.clone()),
            node,
        }
    };
    let mut edges = Vec::new();
    for (group, member) in &entra {
        let Some(&parent) = entra_nodes.get(&group.as_str().to_ascii_lowercase()) else {
            continue;
        };
        let member = match member {
            DirectoryMember::User(id) => user_member(id.as_str()),
            DirectoryMember::Group(id) => group_member(id.as_str(), &nodes),
        };
        if let Some(child) = member.node {
            edges.push((parent, child));
        }
        nodes[parent].members.push(member);
    }
    for (position, (_, _, memberships)) in external.iter().enumerate() {
        for (group, member_type, member_id) in memberships {
            let Some(&parent) = external_nodes.get(&(position, group.clone())) else {
                continue;
            };
            let member = match member_type {
                ExternalMemberType::User => user_member(member_id),
                ExternalMemberType::Group => group_member(member_id, &nodes),
                ExternalMemberType::ExternalGroup => {
                    let node = external_nodes.get(&(position, member_id.clone())).copied();
                    GroupNodeMember {
                        kind: MemberKind::ExternalGroup,
                        id: member_id.clone(),
                        display_name: node.and_then(|n| nodes[n].display_name.clone()),
                        node,
                    }
                }
            };
            if let Some(child) = member.node {
                edges.push((parent, child));
            }
            nodes[parent].members.push(member);
        }
    }
    for node in &mut nodes {
        node.members
            .sort_by(|a, b| (a.kind as u8, &a.id).cmp(&(b.kind as u8, &b.id)));
    }
    let cycles = group_graph::cycles(nodes.len(), &edges);
    let (chains, chains_truncated) = match user {
        Some(user) => chains_of(
            &user,
            &entra,
            &external,
            &entra_nodes,
            &external_nodes,
            &nodes,
            &user_names,
        ),
        None => (Vec::new(), false),
    };
    GroupGraph {
        nodes,
        cycles,
        chains,
        chains_truncated,
    }
}

/// For each group the user is in, the shortest chain that puts them there: Entra groups once,
/// external groups per connection.
fn chains_of(
    user: &DirectoryUser,
    entra: &[(crate::domain::directory::GroupId, DirectoryMember)],
    external: &[ExternalGroups],
    entra_nodes: &HashMap<String, usize>,
    external_nodes: &HashMap<(usize, String), usize>,
    nodes: &[GroupNode],
    user_names: &HashMap<String, &DirectoryUser>,
) -> (Vec<MembershipChain>, bool) {
    let describe = |member: &Member, connection: Option<usize>| -> String {
        match member {
            Member::User(id) => {
                let name = user_names
                    .get(&id.to_ascii_lowercase())
                    .map(|u| u.user_principal_name.clone())
                    .unwrap_or_else(|| id.clone());
                format!("user {name}")
            }
            Member::Group(id) => {
                let name = entra_nodes
                    .get(&id.to_ascii_lowercase())
                    .and_then(|n| nodes[*n].display_name.clone())
                    .unwrap_or_else(|| id.clone());
                format!("group {name}")
            }
            Member::ExternalGroup(id) => {
                let name = connection
                    .and_then(|c| external_nodes.get(&(c, id.clone())))
                    .and_then(|n| nodes[*n].display_name.clone())
                    .unwrap_or_else(|| id.clone());
                format!("externalGroup {name}")
            }
        }
    };
    let identity = access::identity_of(user);
    let mut chains = Vec::new();
    let mut seen = vec![false; nodes.len()];
    let mut steps_left = MAX_CHAIN_STEPS;
    let mut truncated = false;
    // The Entra groups alone first (an Entra group never contains an external group, so this
    // pass finds every Entra group the user is in), then each connection's graph for its
    // external groups, one graph at a time.
    let passes = std::iter::once(None).chain((0..external.len()).map(Some));
    for connection in passes {
        let memberships: &[(String, ExternalMemberType, String)] = match connection {
            None => &[],
            Some(position) => &external[position].2,
        };
        let graph = access::membership_graph(entra, memberships);
        let Ok(principals) = Principals::expand(identity.clone(), &graph, usize::MAX) else {
            continue;
        };
        let node_of = |member: &Member| match member {
            Member::Group(id) => entra_nodes.get(&id.to_ascii_lowercase()).copied(),
            Member::ExternalGroup(id) => {
                connection.and_then(|c| external_nodes.get(&(c, id.clone())).copied())
            }
            Member::User(_) => None,
        };
        let mut reached: Vec<(usize, &Member)> = principals
            .groups()
            .filter(|group| connection.is_none() || matches!(group, Member::ExternalGroup(_)))
            .filter_map(|group| Some((node_of(group)?, group)))
            .filter(|(node, _)| !seen[*node])
            .collect();
        reached.sort_by_key(|(node, _)| *node);
        for (node, group) in reached {
            seen[node] = true;
            let via = principals.reached_from(group).and_then(node_of);
            // Each chain costs its length to build: built only while the budget lasts.
            let path = if steps_left > 0 {
                principals.chain_to(group).map(|chain| {
                    steps_left = steps_left.saturating_sub(chain.len());
                    chain.iter().map(|m| describe(m, connection)).collect()
                })
            } else {
                truncated = true;
                None
            };
            chains.push(MembershipChain { node, via, path });
        }
    }
    (chains, truncated)
}
