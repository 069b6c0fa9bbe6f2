//! Fixtures: a whole tenant declared at once (directory, applications, connections with their
//! schema, external groups, items), checked against every rule the API applies, and written in
//! one store job, so a document is applied entirely or not at all. Also the reverse: a tenant's
//! current state as declarations (export).
//!
//! Loading a tenant replaces its state: the document says what the tenant is. That makes every
//! rule checkable against the document alone (the store's state cannot make a declaration
//! clash), so `check` is pure and reports every problem, each at the path of its declaration.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{Error, ResourceKind};
use crate::config::Config;
use crate::domain::application::Application;
use crate::domain::connection::{ConnectionFields, ExternalConnection};
use crate::domain::directory::{
    DirectoryGroup, DirectoryMember, DirectoryUser, ExternalMemberType, GroupId, TakenName,
};
use crate::domain::ids::{ConnectionId, ExternalGroupId, ItemId, TenantId};
use crate::domain::item::{ExternalActivity, ExternalItem};
use crate::domain::principal::DEFAULT_APP_ID;
use crate::domain::schema::Schema;
use crate::domain::Violation;
use crate::state::AppState;
use crate::store::groups::ExternalGroup;
use crate::store::{self, refuse, Effect};

/// A declaration and the JSON pointer (prefixed with its file, when loaded at start) it came from.
#[derive(Debug, Clone)]
pub struct Located<T> {
    pub path: String,
    pub value: T,
}

impl<T> Located<T> {
    pub fn new(path: impl Into<String>, value: T) -> Located<T> {
        Located {
            path: path.into(),
            value,
        }
    }
}

/// One tenant of a fixtures document, read from the wire but not yet checked.
#[derive(Debug, Clone)]
pub struct TenantFixture {
    pub tenant: Located<TenantId>,
    pub users: Vec<Located<DirectoryUser>>,
    pub groups: Vec<Located<GroupFixture>>,
    pub applications: Vec<Located<Application>>,
    pub connections: Vec<Located<ConnectionFixture>>,
}

#[derive(Debug, Clone)]
pub struct GroupFixture {
    pub group: DirectoryGroup,
    /// Users (by id or user principal name) and groups (by id) of the same tenant.
    pub members: Vec<Located<String>>,
}

#[derive(Debug, Clone)]
pub struct ConnectionFixture {
    pub id: Located<String>,
    pub fields: ConnectionFields,
    pub schema: Option<Located<Schema>>,
    pub groups: Vec<Located<ExternalGroupFixture>>,
    pub items: Vec<Located<ItemFixture>>,
}

#[derive(Debug, Clone)]
pub struct ExternalGroupFixture {
    pub group: ExternalGroup,
    pub members: Vec<Located<(String, ExternalMemberType)>>,
}

#[derive(Debug, Clone)]
pub struct ItemFixture {
    pub item: ExternalItem,
    pub activities: Vec<ExternalActivity>,
}

/// A refused declaration: where it is, what the API would have answered, and whether that
/// answer comes from the directory endpoints (which speak Entra's error codes).
#[derive(Debug)]
pub struct Problem {
    pub path: String,
    pub error: Error,
    pub directory: bool,
}

/// A tenant's state as declarations: what `check` makes of a fixture, and what export reads.
#[derive(Debug, Clone, Default)]
pub struct TenantState {
    pub users: Vec<DirectoryUser>,
    pub groups: Vec<DirectoryGroup>,
    pub memberships: Vec<(GroupId, DirectoryMember)>,
    pub applications: Vec<Application>,
    pub connections: Vec<ConnectionState>,
}

#[derive(Debug, Clone)]
pub struct ConnectionState {
    pub connection: ExternalConnection,
    /// The effective schema; a connection without one is a draft.
    pub schema: Option<Schema>,
    pub groups: Vec<ExternalGroup>,
    /// (group id, member id, member type).
    pub members: Vec<(String, String, ExternalMemberType)>,
    pub items: Vec<(ExternalItem, Vec<ExternalActivity>)>,
}

/// What a load created, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub tenants: u64,
    pub users: u64,
    pub groups: u64,
    pub group_members: u64,
    pub applications: u64,
    pub connections: u64,
    pub schemas: u64,
    pub external_groups: u64,
    pub external_group_members: u64,
    pub items: u64,
    pub activities: u64,
}

impl Counts {
    fn of(tenants: &[(TenantId, TenantState)]) -> Counts {
        let mut counts = Counts {
            tenants: tenants.len() as u64,
            ..Counts::default()
        };
        for (_, state) in tenants {
            counts.users += state.users.len() as u64;
            counts.groups += state.groups.len() as u64;
            counts.group_members += state.memberships.len() as u64;
            counts.applications += state.applications.len() as u64;
            counts.connections += state.connections.len() as u64;
            for connection in &state.connections {
                counts.schemas += u64::from(connection.schema.is_some());
                counts.external_groups += connection.groups.len() as u64;
                counts.external_group_members += connection.members.len() as u64;
                counts.items += connection.items.len() as u64;
                counts.activities += connection
                    .items
                    .iter()
                    .map(|(_, activities)| activities.len() as u64)
                    .sum::<u64>();
            }
        }
        counts
    }
}

/// Problems reported at most; a document with more says how many were left out.
pub const MAX_PROBLEMS: usize = 1000;

/// Collects problems up to `MAX_PROBLEMS`, counting the rest.
#[derive(Debug, Default)]
pub struct Problems {
    pub listed: Vec<Problem>,
    pub n_more: usize,
}

impl Problems {
    pub fn push(&mut self, problem: Problem) {
        if self.listed.len() < MAX_PROBLEMS {
            self.listed.push(problem);
        } else {
            self.n_more += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    fn at(&mut self, path: &str, target: &str, error: Error) {
        self.push(Problem {
            path: join(path, target),
            error,
            directory: false,
        });
    }

    fn directory_at(&mut self, path: &str, target: &str, error: Error) {
        self.push(Problem {
            path: join(path, target),
            error,
            directory: true,
        });
    }

    fn violation(&mut self, path: &str, violation: Violation) {
        let target = violation.target.clone();
        self.at(path, &target, Error::Invalid(violation));
    }
}

/// `base` followed by a domain target (`acl[0].value`, `properties.tags@odata.type`) as JSON
/// pointer segments: `base/acl/0/value`. An annotation (`@`) ends the target: its dots are its own.
pub fn join(base: &str, target: &str) -> String {
    let mut path = base.to_string();
    let mut rest = target;
    while !rest.is_empty() {
        let end = if rest
            .split(['.', '['])
            .next()
            .is_some_and(|s| s.contains('@'))
        {
            rest.len()
        } else {
            rest.find(['.', '[']).unwrap_or(rest.len())
        };
        let (segment, tail) = rest.split_at(end);
        if !segment.is_empty() {
            path.push('/');
            path.push_str(&segment.replace('~', "~0").replace('/', "~1"));
        }
        rest = tail;
        if let Some(index_part) = rest.strip_prefix('[') {
            let close = index_part.find(']').unwrap_or(index_part.len());
            path.push('/');
            path.push_str(&index_part[..close]);
            rest = index_part.get(close + 1..).unwrap_or("");
        }
        rest = rest.strip_prefix('.').unwrap_or(rest);
    }
    path
}

/// Checks every declaration against the rules the API applies and the limits in `config`, and
/// turns the fixtures into the states to write, or lists every problem found.
pub fn check(
    config: &Config,
    fixtures: Vec<TenantFixture>,
) -> Result<Vec<(TenantId, TenantState)>, Problems> {
    let mut problems = Problems::default();
    let mut states = Vec::with_capacity(fixtures.len());
    let mut seen_tenants: HashMap<TenantId, String> = HashMap::new();
    for fixture in fixtures {
        if let Some(first) = seen_tenants.get(&fixture.tenant.value) {
            problems.at(
                &fixture.tenant.path,
                "",
                Error::Conflict(format!(
                    "tenant '{}' is declared twice (also at {first}); declare each tenant once",
                    fixture.tenant.value.as_str()
                )),
            );
            continue;
        }
        seen_tenants.insert(fixture.tenant.value.clone(), fixture.tenant.path.clone());
        let mut state = check_directory(fixture.users, fixture.groups, &mut problems);
        state.applications = check_applications(fixture.applications, &mut problems);
        state.connections = check_connections(config, fixture.connections, &mut problems);
        states.push((fixture.tenant.value, state));
    }
    if problems.is_empty() {
        Ok(states)
    } else {
        Err(problems)
    }
}

/// Users and groups: one namespace of ids and user principal names, members that resolve.
fn check_directory(
    users: Vec<Located<DirectoryUser>>,
    groups: Vec<Located<GroupFixture>>,
    problems: &mut Problems,
) -> TenantState {
    // Every name of the namespace, without regard to ASCII case, and what holds it.
    let mut names: HashMap<String, (TakenName, usize)> = HashMap::new();
    let mut state = TenantState::default();
    for Located { path, value: user } in users {
        let id_key = user.id.as_str().to_ascii_lowercase();
        let upn_key = user.user_principal_name.to_ascii_lowercase();
        if let Some((taken, _)) = names.get(&id_key) {
            problems.directory_at(
                &path,
                "id",
                Error::Invalid(taken.clash("id", user.id.as_str())),
            );
            continue;
        }
        if let Some((taken, _)) = names.get(&upn_key).filter(|_| upn_key != id_key) {
            problems.directory_at(
                &path,
                "userPrincipalName",
                Error::Invalid(taken.clash("userPrincipalName", &user.user_principal_name)),
            );
            continue;
        }
        let index = state.users.len();
        names.insert(id_key, (TakenName::UserId, index));
        names
            .entry(upn_key)
            .or_insert((TakenName::UserPrincipalName, index));
        state.users.push(user);
    }
    let mut declared_groups = Vec::new();
    for Located { path, value } in groups {
        let key = value.group.id.as_str().to_ascii_lowercase();
        if let Some((taken, _)) = names.get(&key) {
            problems.directory_at(
                &path,
                "id",
                Error::Invalid(taken.clash("id", value.group.id.as_str())),
            );
            continue;
        }
        names.insert(key, (TakenName::GroupId, state.groups.len()));
        state.groups.push(value.group.clone());
        declared_groups.push((path, value));
    }
    for (_, fixture) in &declared_groups {
        let group_id = &fixture.group.id;
        let mut group_members: HashSet<DirectoryMember> = HashSet::new();
        for Located { path, value } in &fixture.members {
            let member = match names.get(&value.to_ascii_lowercase()) {
                Some((TakenName::GroupId, index)) => {
                    DirectoryMember::Group(state.groups[*index].id.clone())
                }
                Some((_, index)) => DirectoryMember::User(state.users[*index].id.clone()),
                None => {
                    problems.directory_at(
                        path,
                        "",
                        Error::NotFound {
                            kind: ResourceKind::User,
                            id: value.clone(),
                        },
                    );
                    continue;
                }
            };
            if let Err(violation) = member.check_can_join(group_id) {
                problems.directory_at(path, "", Error::Invalid(violation));
                continue;
            }
            if !group_members.insert(member.clone()) {
                problems.directory_at(
                    path,
                    "",
                    Error::Conflict(format!(
                        "'{}' is already a member of group '{}'",
                        member.id(),
                        group_id
                    )),
                );
                continue;
            }
            state.memberships.push((group_id.clone(), member));
        }
    }
    state
}

fn check_applications(
    applications: Vec<Located<Application>>,
    problems: &mut Problems,
) -> Vec<Application> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut valid = Vec::new();
    for Located { path, value: app } in applications {
        let violations = app.validate();
        if !violations.is_empty() {
            for violation in violations {
                problems.violation(&path, violation);
            }
            continue;
        }
        if !seen.insert(app.app_id.to_ascii_lowercase()) {
            problems.at(
                &path,
                "appId",
                Error::Conflict(format!(
                    "application '{}' is declared twice in this tenant",
                    app.app_id
                )),
            );
            continue;
        }
        valid.push(app);
    }
    valid
}

fn check_connections(
    config: &Config,
    connections: Vec<Located<ConnectionFixture>>,
    problems: &mut Problems,
) -> Vec<ConnectionState> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut states = Vec::new();
    let mut n_external_groups = 0u64;
    let mut n_items_in_tenant = 0u64;
    for Located { path, value } in connections {
        let ConnectionFixture {
            id,
            fields,
            schema,
            groups,
            items,
        } = value;
        let connection_id = match ConnectionId::parse(&id.value) {
            Ok(connection_id) => connection_id,
            Err(violation) => {
                problems.at(&id.path, "", Error::Invalid(violation));
                continue;
            }
        };
        let connection = match ExternalConnection::create(connection_id, fields, DEFAULT_APP_ID) {
            Ok(connection) => connection,
            Err(violation) => {
                problems.violation(&path, violation);
                continue;
            }
        };
        if !seen.insert(connection.id.as_str().to_ascii_lowercase()) {
            problems.at(
                &id.path,
                "",
                Error::AlreadyExists {
                    kind: ResourceKind::Connection,
                    id: connection.id.to_string(),
                },
            );
            continue;
        }
        if seen.len() > config.max_connections_per_tenant {
            problems.at(
                &path,
                "",
                Error::QuotaExceeded(format!(
                    "the tenant already holds the maximum of {} connections",
                    config.max_connections_per_tenant
                )),
            );
            continue;
        }
        let schema_declared = schema.is_some();
        let schema = schema.and_then(
            |Located {
                 path,
                 value: schema,
             }| {
                let violations = schema.validate();
                if violations.is_empty() {
                    return Some(schema);
                }
                for violation in violations {
                    problems.violation(&path, violation.violation);
                }
                None
            },
        );
        if let Some(schema) = &schema {
            let templates = crate::domain::result_template::declared_search_result_templates(
                connection.search_settings.as_ref(),
            );
            if let Err(violation) = crate::domain::result_template::check_rule_properties(
                &templates,
                schema,
                "searchSettings.searchResultTemplates",
            ) {
                problems.violation(&path, violation);
            }
        }
        let (groups, members) = check_external_groups(groups, &mut n_external_groups, problems);
        let items = if schema_declared && schema.is_none() {
            // The schema's problems come first: its items are checked once it is valid.
            Vec::new()
        } else {
            check_items(
                config,
                &connection.id,
                schema.as_ref(),
                items,
                &mut n_items_in_tenant,
                problems,
            )
        };
        states.push(ConnectionState {
            connection,
            schema,
            groups,
            members,
            items,
        });
    }
    states
}

type ExternalMembers = Vec<(String, String, ExternalMemberType)>;

fn check_external_groups(
    groups: Vec<Located<ExternalGroupFixture>>,
    n_in_tenant: &mut u64,
    problems: &mut Problems,
) -> (Vec<ExternalGroup>, ExternalMembers) {
    let mut seen: HashSet<String> = HashSet::new();
    let mut valid = Vec::new();
    let mut members = Vec::new();
    for Located { path, value } in groups {
        let ExternalGroupFixture {
            group,
            members: declared,
        } = value;
        if let Err(violation) = ExternalGroupId::parse(&group.id) {
            problems.violation(&path, violation);
            continue;
        }
        if !seen.insert(group.id.clone()) {
            problems.at(
                &path,
                "id",
                Error::AlreadyExists {
                    kind: ResourceKind::ExternalGroup,
                    id: group.id.clone(),
                },
            );
            continue;
        }
        *n_in_tenant += 1;
        if *n_in_tenant > super::groups::MAX_EXTERNAL_GROUPS_PER_TENANT {
            problems.at(
                &path,
                "",
                Error::QuotaExceeded(format!(
                    "the tenant already holds the maximum of {} external groups",
                    super::groups::MAX_EXTERNAL_GROUPS_PER_TENANT
                )),
            );
            continue;
        }
        let mut group_members: HashSet<(String, ExternalMemberType)> = HashSet::new();
        for Located {
            path,
            value: (member_id, member_type),
        } in declared
        {
            if let Err(error) = super::groups::check_member(&group.id, &member_id, member_type) {
                problems.at(&path, "", error);
                continue;
            }
            if !group_members.insert((member_id.clone(), member_type)) {
                problems.at(
                    &path,
                    "",
                    Error::Conflict(format!(
                        "'{member_id}' is already a member of external group '{}'.",
                        group.id
                    )),
                );
                continue;
            }
            members.push((group.id.clone(), member_id, member_type));
        }
        valid.push(group);
    }
    (valid, members)
}

fn check_items(
    config: &Config,
    connection_id: &ConnectionId,
    schema: Option<&Schema>,
    items: Vec<Located<ItemFixture>>,
    n_in_tenant: &mut u64,
    problems: &mut Problems,
) -> Vec<(ExternalItem, Vec<ExternalActivity>)> {
    let mut valid = Vec::with_capacity(items.len());
    let Some(schema) = schema else {
        if let Some(first) = items.first() {
            problems.at(&first.path, "", super::items::not_ready(connection_id));
        }
        return valid;
    };
    let mut first_paths: HashMap<ItemId, String> = HashMap::with_capacity(items.len());
    let mut n_in_connection = 0u64;
    for Located { path, value } in items {
        if let Some(first) = first_paths.get(&value.item.id) {
            problems.at(
                &path,
                "id",
                Error::Conflict(format!(
                    "item '{}' is declared twice in connection '{connection_id}' (also at {first})",
                    value.item.id
                )),
            );
            continue;
        }
        if let Err(error) = super::items::check_item(schema, &value.item) {
            let target = match &error {
                Error::Invalid(violation) | Error::Mismatch(violation) => violation.target.clone(),
                _ => String::new(),
            };
            problems.at(&path, &target, error);
            continue;
        }
        n_in_connection += 1;
        *n_in_tenant += 1;
        if *n_in_tenant > config.tenant_item_quota() {
            problems.at(
                &path,
                "",
                Error::QuotaExceeded(format!(
                    "the tenant's item quota of {} items is used up; delete items or raise --item-quota",
                    config.tenant_item_quota()
                )),
            );
            // Every later item is over the quota too: one problem says it.
            break;
        }
        if n_in_connection > config.max_items_per_connection {
            problems.at(
                &path,
                "",
                Error::QuotaExceeded(format!(
                    "connection '{connection_id}' already holds its maximum of {} items",
                    config.max_items_per_connection
                )),
            );
            break;
        }
        first_paths.insert(value.item.id.clone(), path);
        valid.push((value.item, value.activities));
    }
    valid
}

/// Replaces each tenant's state with the checked declarations in one store job, then makes the
/// index and the principal cache follow. `items_written` counts items as they are written (for
/// progress reports).
pub async fn load(
    state: &AppState,
    tenants: Vec<(TenantId, TenantState)>,
    items_written: Arc<AtomicU64>,
) -> Result<Counts, Error> {
    let counts = Counts::of(&tenants);
    let now = state.clock.now();
    let (index, principals) = (state.index.clone(), state.principals.clone());
    state
        .store
        .write_or_refuse_with_effect(move |db| {
            let mut completed = Vec::new();
            let mut last_seq = None;
            for (tenant, declared) in &tenants {
                store::clear_tenant(db, Some(tenant))?;
                for user in &declared.users {
                    if store::directory::insert_user(db, tenant, user)?
                        != store::directory::Insertion::Inserted
                    {
                        return refuse(Error::Internal(format!(
                            "user '{}' clashed although it was checked",
                            user.id
                        )));
                    }
                }
                for group in &declared.groups {
                    if store::directory::insert_group(db, tenant, group)?
                        != store::directory::Insertion::Inserted
                    {
                        return refuse(Error::Internal(format!(
                            "group '{}' clashed although it was checked",
                            group.id
                        )));
                    }
                }
                for (group_id, member) in &declared.memberships {
                    store::directory::add_member(db, tenant, group_id, member)?;
                }
                for app in &declared.applications {
                    store::applications::upsert(db, tenant, app)?;
                }
                let created_at = now.to_rfc3339();
                for connection in &declared.connections {
                    let connection_id = &connection.connection.id;
                    store::connections::insert(db, tenant, &connection.connection, &created_at)?;
                    if let Some(schema) = &connection.schema {
                        completed.extend(super::schema::register_completed(
                            db,
                            tenant,
                            connection_id,
                            schema,
                            now,
                        )?);
                    }
                    for group in &connection.groups {
                        store::groups::insert(db, tenant, connection_id, group)?;
                    }
                    for (group_id, member_id, member_type) in &connection.members {
                        store::groups::add_member(
                            db,
                            tenant,
                            connection_id,
                            group_id,
                            member_id,
                            *member_type,
                        )?;
                    }
                    for (item, activities) in &connection.items {
                        let seq = store::items::next_sequence(db)?;
                        store::items::insert(db, tenant, connection_id, item, seq)?;
                        store::items::insert_activities(
                            db,
                            tenant,
                            connection_id,
                            &item.id,
                            activities,
                        )?;
                        last_seq = Some(seq);
                        items_written.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            // Each connection's index is new (the reset drops the tenant's indexes), so following
            // its schema fills it from the store, which holds every item now: the items are not
            // sent to the indexer one by one as well.
            let follow = super::schema::follow_in_index(&index, completed);
            let tenant_ids: Vec<TenantId> = tenants.into_iter().map(|(tenant, _)| tenant).collect();
            let effect: Effect = Box::new(move || {
                for tenant in &tenant_ids {
                    index.reset(Some(tenant));
                    principals.membership_changed(tenant);
                }
                if let Some(follow) = follow {
                    follow();
                }
                if let Some(last_seq) = last_seq {
                    index.caught_up_with_store(last_seq);
                }
            });
            Ok((counts, Some(effect)))
        })
        .await
        .map_err(Error::from)
}

/// The tenant's current state as declarations (connections with their effective schema).
pub async fn export(state: &AppState, tenant: &TenantId) -> Result<TenantState, Error> {
    let tenant = tenant.clone();
    let exported = state
        .store
        .read(move |db| {
            let mut exported = TenantState {
                users: store::directory::list_users(db, &tenant)?,
                groups: store::directory::list_groups(db, &tenant)?,
                memberships: store::directory::all_memberships(db, &tenant)?,
                applications: store::applications::list(db, &tenant)?,
                connections: Vec::new(),
            };
            for connection in store::connections::list(db, &tenant)? {
                let id = connection.id.clone();
                let schema =
                    store::schema::get_schemas(db, &tenant, &id)?.and_then(|s| s.effective);
                let mut activities: HashMap<String, Vec<ExternalActivity>> = HashMap::new();
                for (item_id, activity) in store::items::activities_of_connection(db, &tenant, &id)?
                {
                    activities.entry(item_id).or_default().push(activity);
                }
                let mut items = Vec::new();
                let mut after: Option<String> = None;
                loop {
                    let page = store::items::page(db, &tenant, &id, after.as_deref(), 1000)?;
                    let Some((last, _)) = page.last() else { break };
                    after = Some(last.id.as_str().to_string());
                    for (item, _) in page {
                        let item_activities =
                            activities.remove(item.id.as_str()).unwrap_or_default();
                        items.push((item, item_activities));
                    }
                }
                let members = store::groups::all_memberships(db, &tenant, &id)?
                    .into_iter()
                    .map(|(group, member_type, member)| (group, member, member_type))
                    .collect();
                exported.connections.push(ConnectionState {
                    groups: store::groups::list(db, &tenant, &id)?,
                    members,
                    schema,
                    items,
                    connection,
                });
            }
            Ok(exported)
        })
        .await?;
    Ok(exported)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_become_json_pointer_segments() {
        assert_eq!(join("/t/0", "acl[0].value"), "/t/0/acl/0/value");
        assert_eq!(join("/t/0", "properties.title"), "/t/0/properties/title");
        assert_eq!(
            join("/t/0", "properties.tags@odata.type"),
            "/t/0/properties/tags@odata.type"
        );
        assert_eq!(
            join("/s", "properties[12].isRefinable"),
            "/s/properties/12/isRefinable"
        );
        assert_eq!(join("/s", ""), "/s");
        assert_eq!(join("/s", "a/b~c"), "/s/a~1b~0c");
    }
}
