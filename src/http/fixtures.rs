//! The fixtures document (`fixtures/schema.json`): its reader, `POST /_emulator/fixtures`,
//! `GET /_emulator/fixtures?tenant=` (export), and loading files at start (`--fixtures`).
//!
//! Each declaration is a Graph request body (a user, a group, a connection, a schema, an
//! external group and its members, an item) read by the same function its endpoint uses, so a
//! declaration the API would refuse is refused with the API's message, at its JSON path.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{Query, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::{ApiError, ErrorCode, ErrorDetail};
use super::extract::{json_kind, ApiVersion, JsonObject};
use super::openapi::wire;
use crate::domain::application::Application;
use crate::domain::directory::ExternalMemberType;
use crate::domain::ids::TenantId;
use crate::domain::schema::BASE_TYPE;
use crate::service;
use crate::service::fixtures::{
    ConnectionFixture, Counts, ExternalGroupFixture, GroupFixture, ItemFixture, Located, Problem,
    Problems, TenantFixture, TenantState,
};
use crate::state::AppState;

/// The largest fixtures document `POST /_emulator/fixtures` reads (files loaded at start have no cap).
pub const MAX_DOCUMENT_BYTES: usize = 512 * 1024 * 1024;

const DOCUMENT_MEMBERS: &[&str] = &["$schema", "tenants"];
const TENANT_MEMBERS: &[&str] = &["id", "users", "groups", "applications", "connections"];
const APPLICATION_MEMBERS: &[&str] = &[
    "appId",
    "displayName",
    "secrets",
    "roles",
    "scopes",
    "certificates",
];
/// Fixture members of a connection besides its Graph body.
const CONNECTION_PARTS: &[&str] = &["schema", "groups", "items"];

/// Problems found while reading, each with its path and the API's answer.
#[derive(Default)]
struct Reader {
    problems: Vec<(String, ApiError)>,
    n_more: usize,
}

impl Reader {
    fn problem(&mut self, path: String, error: ApiError) {
        if self.problems.len() < service::fixtures::MAX_PROBLEMS {
            self.problems.push((path, error));
        } else {
            self.n_more += 1;
        }
    }

    /// A refused body: the error's own target (a member, `acl[0].type`) extends the path.
    fn refused(&mut self, path: &str, error: ApiError) {
        let full = service::fixtures::join(path, error.target.as_deref().unwrap_or(""));
        self.problem(full, error);
    }

    fn structure(&mut self, path: String, message: String) {
        self.problem(path, ApiError::invalid(message));
    }

    /// The members of `map` outside `allowed` are problems.
    fn allow_only(&mut self, path: &str, map: &Map<String, Value>, allowed: &[&str], what: &str) {
        for key in map.keys().filter(|key| !allowed.contains(&key.as_str())) {
            self.structure(
                format!("{path}/{}", escape(key)),
                format!(
                    "'{key}' is not a member of {what} (members: {}).",
                    allowed.join(", ")
                ),
            );
        }
    }

    fn object<'a>(
        &mut self,
        path: &str,
        value: &'a Value,
        what: &str,
    ) -> Option<&'a Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.structure(
                    path.to_string(),
                    format!("{what} must be a JSON object, not {}.", json_kind(other)),
                );
                None
            }
        }
    }

    /// The array member `name` of `map` (absent or null: empty).
    fn list<'a>(&mut self, path: &str, map: &'a Map<String, Value>, name: &str) -> &'a [Value] {
        match map.get(name) {
            None | Some(Value::Null) => &[],
            Some(Value::Array(values)) => values,
            Some(other) => {
                self.structure(
                    format!("{path}/{name}"),
                    format!("'{name}' must be a list, not {}.", json_kind(other)),
                );
                &[]
            }
        }
    }

    fn strings(
        &mut self,
        path: &str,
        map: &Map<String, Value>,
        name: &str,
    ) -> Vec<Located<String>> {
        let mut strings = Vec::new();
        for (index, value) in self.list(path, map, name).iter().enumerate() {
            let path = format!("{path}/{name}/{index}");
            match value {
                Value::String(text) => strings.push(Located::new(path, text.clone())),
                other => self.structure(
                    path,
                    format!("'{name}' holds strings, not {}.", json_kind(other)),
                ),
            }
        }
        strings
    }
}

/// JSON pointer escaping of one segment.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// `map` without the named members (the fixture parts that are not part of the Graph body).
fn without(map: &Map<String, Value>, names: &[&str]) -> Map<String, Value> {
    map.iter()
        .filter(|(key, _)| !names.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// Reads a whole document. Paths start with `origin` (empty, or a file name and `#`).
/// Tenants declared more than once (also across files) are merged into one declaration.
fn read_document(
    origin: &str,
    document: &Value,
    tenants: &mut Vec<TenantFixture>,
    positions: &mut HashMap<TenantId, usize>,
    reader: &mut Reader,
) {
    let root = origin.to_string();
    let Some(map) = reader.object(&root, document, "A fixtures document") else {
        return;
    };
    reader.allow_only(&root, map, DOCUMENT_MEMBERS, "a fixtures document");
    if !map.contains_key("tenants") {
        reader.structure(
            format!("{root}/tenants"),
            "A fixtures document needs 'tenants': a list of tenants.".into(),
        );
    }
    for (index, tenant) in reader.list(&root, map, "tenants").iter().enumerate() {
        let path = format!("{root}/tenants/{index}");
        if let Some(fixture) = read_tenant(&path, tenant, reader) {
            match positions
                .get(&fixture.tenant.value)
                .map(|&position| &mut tenants[position])
            {
                Some(known) => {
                    known.users.extend(fixture.users);
                    known.groups.extend(fixture.groups);
                    known.applications.extend(fixture.applications);
                    known.connections.extend(fixture.connections);
                }
                None => {
                    positions.insert(fixture.tenant.value.clone(), tenants.len());
                    tenants.push(fixture);
                }
            }
        }
    }
}

fn read_tenant(path: &str, value: &Value, reader: &mut Reader) -> Option<TenantFixture> {
    let map = reader.object(path, value, "A tenant")?;
    reader.allow_only(path, map, TENANT_MEMBERS, "a tenant");
    let tenant = match map.get("id") {
        None | Some(Value::Null) => TenantId::default_tenant(),
        Some(Value::String(raw)) => match TenantId::parse(raw) {
            Ok(tenant) => tenant,
            Err(violation) => {
                reader.structure(format!("{path}/id"), format!("{}.", violation.message));
                return None;
            }
        },
        Some(other) => {
            reader.structure(
                format!("{path}/id"),
                format!("A tenant id is a string, not {}.", json_kind(other)),
            );
            return None;
        }
    };
    let mut fixture = TenantFixture {
        tenant: Located::new(format!("{path}/id"), tenant),
        users: Vec::new(),
        groups: Vec::new(),
        applications: Vec::new(),
        connections: Vec::new(),
    };
    for (index, user) in reader.list(path, map, "users").iter().enumerate() {
        let path = format!("{path}/users/{index}");
        let Some(body) = reader.object(&path, user, "A user") else {
            continue;
        };
        match super::directory::read_user(body) {
            Ok(user) => fixture.users.push(Located::new(path, user)),
            Err(error) => reader.refused(&path, error),
        }
    }
    for (index, group) in reader.list(path, map, "groups").iter().enumerate() {
        let path = format!("{path}/groups/{index}");
        let Some(body) = reader.object(&path, group, "A group") else {
            continue;
        };
        let members = reader.strings(&path, body, "members");
        match super::directory::read_group(&without(body, &["members"])) {
            Ok(group) => fixture
                .groups
                .push(Located::new(path, GroupFixture { group, members })),
            Err(error) => reader.refused(&path, error),
        }
    }
    for (index, app) in reader.list(path, map, "applications").iter().enumerate() {
        let path = format!("{path}/applications/{index}");
        if let Some(app) = read_application(&path, app, reader) {
            fixture.applications.push(Located::new(path, app));
        }
    }
    for (index, connection) in reader.list(path, map, "connections").iter().enumerate() {
        let path = format!("{path}/connections/{index}");
        if let Some(connection) = read_connection(&path, connection, reader) {
            fixture.connections.push(Located::new(path, connection));
        }
    }
    Some(fixture)
}

/// An application declared on its own (`POST /_emulator/applications`): its members as in a
/// fixtures document, refused with every problem in `error.details`.
pub(super) fn read_application_body(body: &Value) -> Result<Application, ApiError> {
    let mut reader = Reader::default();
    let app = read_application("", body, &mut reader);
    match app {
        Some(app) if reader.problems.is_empty() => Ok(app),
        _ => Err(refusal(reader, Problems::default())),
    }
}

fn read_application(path: &str, value: &Value, reader: &mut Reader) -> Option<Application> {
    let map = reader.object(path, value, "An application")?;
    reader.allow_only(path, map, APPLICATION_MEMBERS, "an application");
    let mut text = |name: &str| match map.get(name) {
        Some(Value::String(text)) => Some(text.clone()),
        other => {
            reader.structure(
                format!("{path}/{name}"),
                format!(
                    "An application needs '{name}' (a string), not {}.",
                    other.map_or("nothing", json_kind)
                ),
            );
            None
        }
    };
    let app_id = text("appId");
    let display_name = text("displayName");
    let secrets = reader.strings(path, map, "secrets");
    let roles = reader.strings(path, map, "roles");
    let scopes = reader.strings(path, map, "scopes");
    let certificates = reader.strings(path, map, "certificates");
    Some(Application {
        app_id: app_id?.to_ascii_lowercase(),
        display_name: display_name?,
        secrets: secrets.into_iter().map(|s| s.value).collect(),
        roles: roles.into_iter().map(|s| s.value).collect(),
        scopes: scopes.into_iter().map(|s| s.value).collect(),
        certificates: certificates.into_iter().map(|s| s.value).collect(),
    })
}

fn read_connection(path: &str, value: &Value, reader: &mut Reader) -> Option<ConnectionFixture> {
    let map = reader.object(path, value, "A connection")?;
    let schema = match map.get("schema") {
        None | Some(Value::Null) => None,
        Some(value) => {
            let schema_path = format!("{path}/schema");
            reader
                .object(&schema_path, value, "A schema")
                .and_then(|body| {
                    let mut body = body.clone();
                    body.entry("baseType")
                        .or_insert_with(|| Value::String(BASE_TYPE.into()));
                    match super::schema::parse_schema(&body, ApiVersion::Beta) {
                        Ok(schema) => Some(Located::new(schema_path.clone(), schema)),
                        Err(error) => {
                            reader.refused(&schema_path, error);
                            None
                        }
                    }
                })
        }
    };
    let mut groups = Vec::new();
    for (index, group) in reader.list(path, map, "groups").iter().enumerate() {
        let path = format!("{path}/groups/{index}");
        if let Some(group) = read_external_group(&path, group, reader) {
            groups.push(Located::new(path, group));
        }
    }
    let mut items = Vec::new();
    for (index, item) in reader.list(path, map, "items").iter().enumerate() {
        let path = format!("{path}/items/{index}");
        if let Some(item) = read_item(&path, item, reader) {
            items.push(Located::new(path, item));
        }
    }
    let (id, fields) = match super::connections::read_connection(
        &without(map, CONNECTION_PARTS),
        ApiVersion::Beta,
    ) {
        Ok(read) => read,
        Err(error) => {
            reader.refused(path, error);
            return None;
        }
    };
    Some(ConnectionFixture {
        id: Located::new(format!("{path}/id"), id),
        fields,
        schema,
        groups,
        items,
    })
}

fn read_external_group(
    path: &str,
    value: &Value,
    reader: &mut Reader,
) -> Option<ExternalGroupFixture> {
    let body = reader.object(path, value, "An external group")?;
    let mut members = Vec::new();
    for (index, member) in reader.list(path, body, "members").iter().enumerate() {
        let path = format!("{path}/members/{index}");
        let Some(member) = reader.object(&path, member, "A member") else {
            continue;
        };
        match super::groups::read_member(member, ApiVersion::Beta) {
            Ok(member) => members.push(Located::new(path, member)),
            Err(error) => reader.refused(&path, error),
        }
    }
    match super::groups::read_group(&without(body, &["members"])) {
        Ok(group) => Some(ExternalGroupFixture { group, members }),
        Err(error) => {
            reader.refused(path, error);
            None
        }
    }
}

fn read_item(path: &str, value: &Value, reader: &mut Reader) -> Option<ItemFixture> {
    let body = reader.object(path, value, "An item")?;
    let id = match body.get("id") {
        Some(Value::String(id)) => id,
        other => {
            reader.structure(
                format!("{path}/id"),
                format!(
                    "An item needs an 'id' (a string), not {}.",
                    other.map_or("nothing", json_kind)
                ),
            );
            return None;
        }
    };
    let read = super::items::parse_item_id(id)
        .and_then(|id| super::items::read_item(body.clone(), id, ApiVersion::Beta));
    match read {
        Ok((item, activities)) => Some(ItemFixture { item, activities }),
        Err(error) => {
            reader.refused(path, error);
            None
        }
    }
}

/// The problems as one Graph `400`, every problem in `details` with its path as `target`.
fn refusal(reader: Reader, problems: Problems) -> ApiError {
    let mut details: Vec<ErrorDetail> = reader
        .problems
        .into_iter()
        .map(|(path, error)| detail(path, &error))
        .collect();
    details.extend(problems.listed.into_iter().map(|problem| {
        let Problem {
            path,
            error,
            directory,
        } = problem;
        let error = if directory {
            ApiError::from_directory(error)
        } else {
            ApiError::from(error)
        };
        detail(path, &error)
    }));
    details.truncate(service::fixtures::MAX_PROBLEMS);
    let n_more = reader.n_more + problems.n_more;
    let n_listed = details.len();
    let message = if n_more > 0 {
        format!(
            "The fixtures document has {} problems ({n_listed} listed in details, each at its JSON path); nothing of it was loaded.",
            n_listed + n_more
        )
    } else if n_listed == 1 {
        format!(
            "The fixtures document has a problem at {}: {} Nothing of it was loaded.",
            details[0].target, details[0].message
        )
    } else {
        format!(
            "The fixtures document has {n_listed} problems (listed in details, each at its JSON path); nothing of it was loaded."
        )
    };
    ApiError::new(ErrorCode::InvalidRequest, message).with_details(details)
}

fn detail(path: String, error: &ApiError) -> ErrorDetail {
    ErrorDetail {
        code: error.code.as_str(),
        message: error.full_message(),
        target: if path.is_empty() { "/".into() } else { path },
    }
}

/// Reads and checks documents (`(origin, document)` pairs) into the states to write.
fn prepare(
    state: &AppState,
    documents: &[(String, Value)],
) -> Result<Vec<(TenantId, TenantState)>, ApiError> {
    let mut reader = Reader::default();
    let mut tenants = Vec::new();
    let mut positions = HashMap::new();
    for (origin, document) in documents {
        read_document(origin, document, &mut tenants, &mut positions, &mut reader);
    }
    match service::fixtures::check(&state.config, tenants) {
        Ok(states) if reader.problems.is_empty() => Ok(states),
        Ok(_) => Err(refusal(reader, Problems::default())),
        Err(problems) => Err(refusal(reader, problems)),
    }
}

fn counts_json(counts: &Counts) -> Value {
    json!({
        "tenants": counts.tenants,
        "users": counts.users,
        "groups": counts.groups,
        "groupMembers": counts.group_members,
        "applications": counts.applications,
        "connections": counts.connections,
        "schemas": counts.schemas,
        "externalGroups": counts.external_groups,
        "externalGroupMembers": counts.external_group_members,
        "items": counts.items,
        "activities": counts.activities,
    })
}

/// `POST /_emulator/fixtures`: loads a document; `200` with what was created per kind.
#[utoipa::path(
    post, path = "/fixtures", tag = "control plane", operation_id = "loadFixtures",
    request_body = wire::FixturesDocument,
    responses((status = 200, description = "Loaded: each declared tenant replaced, all or nothing (`400` with every problem in `error.details`).", body = wire::FixturesLoaded))
)]
pub async fn load(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let JsonObject(document) = JsonObject::read(request, &state, MAX_DOCUMENT_BYTES).await?;
    let started = Instant::now();
    let checked_state = state.clone();
    let tenants = tokio::task::spawn_blocking(move || {
        prepare(&checked_state, &[(String::new(), Value::Object(document))])
    })
    .await
    .map_err(|_| {
        ApiError::new(
            ErrorCode::InternalServerError,
            "Checking the fixtures failed.",
        )
    })??;
    let tenant_ids: Vec<String> = tenants
        .iter()
        .map(|(t, _)| t.as_str().to_string())
        .collect();
    let counts = service::fixtures::load(&state, tenants, Arc::new(AtomicU64::new(0))).await?;
    state.index.flush().await.map_err(service::Error::from)?;
    Ok(Json(json!({
        "tenants": tenant_ids,
        "created": counts_json(&counts),
        "durationMs": started.elapsed().as_millis() as u64,
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    tenant: Option<String>,
}

/// `GET /_emulator/fixtures?tenant=T`: the tenant's state as a fixtures document.
#[utoipa::path(
    get, path = "/fixtures", tag = "control plane", operation_id = "exportFixtures",
    params(
        ("tenant" = Option<String>, Query, description = "A tenant id (the default tenant when absent).")),
    responses((status = 200, description = "The tenant's state as a fixtures document that loads back into the same state.", body = wire::FixturesDocument))
)]
pub async fn export(
    State(state): State<AppState>,
    Query(query): Query<ExportQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = super::emulator::tenant_for_token(&state, &headers, query.tenant)?;
    let exported = service::fixtures::export(&state, &tenant).await?;
    let document = tokio::task::spawn_blocking(move || document_json(&tenant, &exported))
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::InternalServerError,
                "Exporting the tenant failed.",
            )
        })?;
    Ok(Json(document).into_response())
}

/// A tenant's state as a fixtures document that loads back into the same state.
fn document_json(tenant: &TenantId, exported: &TenantState) -> Value {
    let users: Vec<Value> = exported
        .users
        .iter()
        .map(|user| {
            let mut body = super::directory::user_properties(user);
            body.insert("accountEnabled".into(), json!(user.account_enabled));
            if let Some(password) = &user.password {
                body.insert("passwordProfile".into(), json!({ "password": password }));
            }
            Value::Object(body)
        })
        .collect();
    let mut members_of: HashMap<&str, Vec<&str>> = HashMap::new();
    for (group_id, member) in &exported.memberships {
        members_of
            .entry(group_id.as_str())
            .or_default()
            .push(member.id());
    }
    let groups: Vec<Value> = exported
        .groups
        .iter()
        .map(|group| {
            let members = members_of.remove(group.id.as_str()).unwrap_or_default();
            let mut body = Map::new();
            body.insert("id".into(), json!(group.id.as_str()));
            body.insert("displayName".into(), json!(group.display_name));
            if let Some(description) = &group.description {
                body.insert("description".into(), json!(description));
            }
            if let Some(nickname) = &group.mail_nickname {
                body.insert("mailNickname".into(), json!(nickname));
            }
            body.insert("members".into(), json!(members));
            Value::Object(body)
        })
        .collect();
    let applications: Vec<Value> = exported
        .applications
        .iter()
        .map(|app| {
            json!({
                "appId": app.app_id,
                "displayName": app.display_name,
                "secrets": app.secrets,
                "roles": app.roles,
                "scopes": app.scopes,
                "certificates": app.certificates,
            })
        })
        .collect();
    let connections: Vec<Value> = exported
        .connections
        .iter()
        .map(|connection| {
            let view = service::connections::ConnectionView {
                connection: connection.connection.clone(),
                n_items: 0,
            };
            let mut body = super::connections::connection_properties(ApiVersion::Beta, &view);
            // Computed members: the load recomputes them.
            body.remove("state");
            body.remove("ingestedItemsCount");
            body.retain(|_, value| !value.is_null());
            if let Some(schema) = &connection.schema {
                body.insert(
                    "schema".into(),
                    json!({
                        "baseType": BASE_TYPE,
                        "properties": super::schema::schema_properties(schema, ApiVersion::Beta, true),
                    }),
                );
            }
            let mut members_of: HashMap<&str, Vec<Value>> = HashMap::new();
            for (group_id, id, member_type) in &connection.members {
                members_of
                    .entry(group_id.as_str())
                    .or_default()
                    .push(member_json(id, *member_type));
            }
            let groups: Vec<Value> = connection
                .groups
                .iter()
                .map(|group| {
                    let members = members_of.remove(group.id.as_str()).unwrap_or_default();
                    let mut body = Map::new();
                    body.insert("id".into(), json!(group.id));
                    if let Some(name) = &group.display_name {
                        body.insert("displayName".into(), json!(name));
                    }
                    if let Some(description) = &group.description {
                        body.insert("description".into(), json!(description));
                    }
                    body.insert("members".into(), Value::Array(members));
                    Value::Object(body)
                })
                .collect();
            body.insert("groups".into(), Value::Array(groups));
            let items: Vec<Value> = connection
                .items
                .iter()
                .map(|(item, activities)| {
                    let mut body = super::items::item_properties(ApiVersion::Beta, item);
                    body.retain(|_, value| !value.is_null());
                    if !activities.is_empty() {
                        body.insert(
                            "activities".into(),
                            Value::Array(activities.iter().map(super::items::activity_json).collect()),
                        );
                    }
                    Value::Object(body)
                })
                .collect();
            body.insert("items".into(), Value::Array(items));
            Value::Object(body)
        })
        .collect();
    json!({
        "tenants": [{
            "id": tenant.as_str(),
            "users": users,
            "groups": groups,
            "applications": applications,
            "connections": connections,
        }]
    })
}

fn member_json(id: &str, member_type: ExternalMemberType) -> Value {
    json!({ "id": id, "type": member_type.as_str() })
}

/// Loads fixtures files at start as one document (all or nothing), logging progress while the
/// items are written. Returns what was created.
pub async fn load_files(state: &AppState, files: &[PathBuf]) -> anyhow::Result<Counts> {
    let started = Instant::now();
    let mut documents = Vec::with_capacity(files.len());
    for file in files {
        let path = file.clone();
        let document = tokio::task::spawn_blocking(move || -> anyhow::Result<Value> {
            let bytes = std::fs::read(&path)
                .with_context(|| format!("reading the fixtures file {}", path.display()))?;
            serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not valid JSON", path.display()))
        })
        .await??;
        documents.push((format!("{}#", file.display()), document));
    }
    let checked_state = state.clone();
    let tenants = tokio::task::spawn_blocking(move || prepare(&checked_state, &documents))
        .await?
        .map_err(|error| {
            let mut text = error.message.clone();
            for detail in error.details() {
                text.push_str(&format!("\n  {}: {}", detail.target, detail.message));
            }
            anyhow::anyhow!(text)
        })?;
    let total: usize = tenants
        .iter()
        .flat_map(|(_, state)| state.connections.iter().map(|c| c.items.len()))
        .sum();
    let written = Arc::new(AtomicU64::new(0));
    let progress = {
        let written = written.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                tracing::info!(
                    "loading fixtures: {} of {total} items written",
                    written.load(Ordering::Relaxed)
                );
            }
        })
    };
    let loaded = service::fixtures::load(state, tenants, written).await;
    progress.abort();
    let counts = loaded.map_err(|error| anyhow::anyhow!("loading the fixtures failed: {error}"))?;
    tracing::info!("loading fixtures: indexing {total} items");
    state.index.flush().await?;
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        "fixtures loaded in {seconds:.1} s: {} tenants, {} users, {} groups, {} connections, {} external groups, {} items ({:.0} items/s)",
        counts.tenants,
        counts.users,
        counts.groups,
        counts.connections,
        counts.external_groups,
        counts.items,
        counts.items as f64 / seconds.max(1e-9),
    );
    Ok(counts)
}
