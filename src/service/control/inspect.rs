//! What the web console shows: the tenants, a tenant's overview, its items page by page with
//! each ACL entry resolved to who it names, and its membership graph with cycles and a user's
//! chains. Read-only, and every answer is about the one tenant asked for.

use std::collections::HashMap;

use crate::domain::acl::{AclEntry, AclPrincipal, Member, MembershipGraph, Principals};
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

/// A page of the connection's items in id order; `contains` keeps items whose id or a property
/// value contains it (ASCII letters without regard to case).
pub async fn items(
    state: &AppState,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    contains: Option<String>,
    skip: usize,
    top: usize,
) -> Result<ItemsPage, Error> {
    let (tenant, lookup) = (tenant.clone(), connection_id.clone());
    let contains = contains
        .filter(|text| !text.is_empty())
        .map(|text| text.to_ascii_lowercase());
    let page = state
        .store
        .read(move |db| {
            if store::connections::state(db, &tenant, &lookup)?.is_none() {
                return Ok(None);
            }
            store::items::filtered_page(db, &tenant, &lookup, contains.as_deref(), skip, top)
                .map(Some)
        })
        .await?;
    let (items, total) = page.ok_or_else(|| connection_not_found(connection_id))?;
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
            let (mut entra, mut external) = (None, None);
            for entry in &item.acl {
                let named = match entry.principal() {
                    AclPrincipal::User(id) => {
                        Named::User(store::directory::find_user(db, &tenant, &id)?)
                    }
                    AclPrincipal::Group(id) => {
                        let memberships = match &entra {
                            Some(memberships) => memberships,
                            None => entra.insert(store::directory::all_memberships(db, &tenant)?),
                        };
                        let members = memberships
                            .iter()
                            .filter(|(group, _)| group.as_str().eq_ignore_ascii_case(&id))
                            .count();
                        let group = store::directory::get_group(
                            db,
                            &tenant,
                            &crate::domain::directory::GroupId::stored(id),
                        )?;
                        Named::Group(group, members)
                    }
                    AclPrincipal::ExternalGroup(id) => {
                        let memberships = match &external {
                            Some(memberships) => memberships,
                            None => external.insert(store::groups::all_memberships(
                                db,
                                &tenant,
                                &connection,
                            )?),
                        };
                        let members = memberships
                            .iter()
                            .filter(|(group, _, _)| *group == id)
                            .count();
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

/// A chain by which a user is in a group, user first.
#[derive(Debug, Clone)]
pub struct MembershipChain {
    pub node: usize,
    pub path: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct GroupGraph {
    pub nodes: Vec<GroupNode>,
    /// Groups that contain themselves through nesting: node positions, one list per cycle.
    pub cycles: Vec<Vec<usize>>,
    /// With a user: how they reach each group they are in.
    pub chains: Vec<MembershipChain>,
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
    let chains = match user {
        Some(user) => chains_of(
            &user,
            &entra,
            &external,
            &entra_nodes,
            &external_nodes,
            &nodes,
            &user_names,
        ),
        None => Vec::new(),
    };
    GroupGraph {
        nodes,
        cycles,
        chains,
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
) -> Vec<MembershipChain> {
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
    // The Entra groups alone first, then each connection's graph (Entra plus its external groups).
    let mut graphs: Vec<(Option<usize>, MembershipGraph)> =
        vec![(None, access::membership_graph(entra, &[]))];
    for (position, (_, _, memberships)) in external.iter().enumerate() {
        graphs.push((Some(position), access::membership_graph(entra, memberships)));
    }
    for (connection, graph) in graphs {
        let Ok(principals) = Principals::expand(identity.clone(), &graph, usize::MAX) else {
            continue;
        };
        let mut reached: Vec<(usize, Vec<Member>)> = principals
            .groups()
            .filter_map(|group| {
                let node = match group {
                    Member::Group(id) => entra_nodes.get(&id.to_ascii_lowercase()).copied(),
                    Member::ExternalGroup(id) => {
                        connection.and_then(|c| external_nodes.get(&(c, id.clone())).copied())
                    }
                    Member::User(_) => None,
                }?;
                Some((node, principals.chain_to(group)?))
            })
            .collect();
        reached.sort_by_key(|(node, chain)| (chain.len(), *node));
        for (node, chain) in reached {
            if std::mem::replace(&mut seen[node], true) {
                continue;
            }
            chains.push(MembershipChain {
                node,
                path: chain.iter().map(|m| describe(m, connection)).collect(),
            });
        }
    }
    chains
}
