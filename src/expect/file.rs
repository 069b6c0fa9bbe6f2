//! Reading an expectations file: JSON text to `Expectations`, with every problem named by the
//! JSON pointer of the value at fault (`/personas/1/queries/0/total: ...`). Pure: no IO.

use std::fmt;

use serde_json::{Map, Value};

use crate::domain::ids::{TenantId, DEFAULT_TENANT_ID};

/// A whole expectations file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    /// As written in the file (the emulator compares tenant ids in lowercase).
    pub tenant: String,
    pub personas: Vec<Persona>,
}

/// One person and what they must and must not see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persona {
    /// UPN or object id, as `POST /_emulator/token` takes it.
    pub user: String,
    pub queries: Vec<QuerySpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySpec {
    pub name: Option<String>,
    /// The KQL `queryString`.
    pub query: String,
    /// Connection ids to search; `None`: every connection of the tenant.
    pub connections: Option<Vec<String>>,
    pub must_see: Vec<ItemRef>,
    pub must_not_see: Vec<ItemRef>,
    /// Seeing an item not in `must_see` is a difference.
    pub exactly: bool,
    /// The exact number of visible hits.
    pub total: Option<u64>,
    /// Per property (in file order), the exact count of each named bucket (in file order).
    pub aggregations: Vec<(String, Vec<(String, u64)>)>,
}

impl QuerySpec {
    /// How the query is named in reports: its `name`, else its query string.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.query)
    }
}

/// An item named in `mustSee` / `mustNotSee`: `itemId` (in any queried connection) or
/// `connectionId/itemId`. Item ids cannot contain `/`, so the first `/` splits the two.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemRef {
    pub connection: Option<String>,
    pub item: String,
}

impl ItemRef {
    pub fn parse(raw: &str) -> Option<ItemRef> {
        match raw.split_once('/') {
            None if !raw.is_empty() => Some(ItemRef {
                connection: None,
                item: raw.to_string(),
            }),
            Some((connection, item))
                if !connection.is_empty() && !item.is_empty() && !item.contains('/') =>
            {
                Some(ItemRef {
                    connection: Some(connection.to_string()),
                    item: item.to_string(),
                })
            }
            _ => None,
        }
    }

    /// Whether this reference names the item `item` of connection `connection`
    /// (connection ids compare without regard to ASCII case, as Graph does).
    pub fn matches(&self, connection: &str, item: &str) -> bool {
        self.item == item
            && self
                .connection
                .as_deref()
                .is_none_or(|c| c.eq_ignore_ascii_case(connection))
    }
}

impl fmt::Display for ItemRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.connection {
            Some(connection) => write!(f, "{connection}/{}", self.item),
            None => f.write_str(&self.item),
        }
    }
}

/// One problem of the file: the JSON pointer of the value at fault and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub pointer: String,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "(document): {}", self.message)
        } else {
            write!(f, "{}: {}", self.pointer, self.message)
        }
    }
}

/// At most this many problems are reported for one file.
const MAX_ERRORS: usize = 50;

/// Parses and validates an expectations file; on failure, every problem found (at most 50).
pub fn parse(text: &str) -> Result<Expectations, Vec<FileError>> {
    let document: Value = serde_json::from_str(text).map_err(|error| {
        vec![FileError {
            pointer: String::new(),
            message: format!("not valid JSON: {error}"),
        }]
    })?;
    from_value(&document)
}

/// Validates an already parsed document.
pub fn from_value(document: &Value) -> Result<Expectations, Vec<FileError>> {
    let mut reader = Reader::default();
    let expectations = reader.document(document);
    if reader.errors.is_empty() {
        Ok(expectations)
    } else {
        reader.errors.truncate(MAX_ERRORS);
        Err(reader.errors)
    }
}

/// Escapes a member name for a JSON pointer (RFC 6901: `~` is `~0`, `/` is `~1`).
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

const DOCUMENT_MEMBERS: &[&str] = &["$schema", "tenant", "personas"];
const PERSONA_MEMBERS: &[&str] = &["user", "queries"];
const QUERY_MEMBERS: &[&str] = &[
    "name",
    "query",
    "connections",
    "mustSee",
    "mustNotSee",
    "exactly",
    "total",
    "aggregations",
];

#[derive(Default)]
struct Reader {
    errors: Vec<FileError>,
}

impl Reader {
    fn error(&mut self, pointer: &str, message: impl Into<String>) {
        self.errors.push(FileError {
            pointer: pointer.to_string(),
            message: message.into(),
        });
    }

    fn expected(&mut self, pointer: &str, what: &str, found: &Value) {
        self.error(pointer, format!("expected {what}, found {}", kind(found)));
    }

    /// The object at `pointer` with only `allowed` members, or `None` (error recorded).
    fn object<'v>(
        &mut self,
        value: &'v Value,
        pointer: &str,
        allowed: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Value::Object(map) = value else {
            self.expected(pointer, "an object", value);
            return None;
        };
        for name in map.keys().filter(|name| !allowed.contains(&name.as_str())) {
            self.error(
                &format!("{pointer}/{}", escape(name)),
                format!("unknown member (allowed: {})", allowed.join(", ")),
            );
        }
        Some(map)
    }

    fn string(&mut self, value: &Value, pointer: &str) -> Option<String> {
        match value {
            Value::String(text) if !text.is_empty() => Some(text.clone()),
            Value::String(_) => {
                self.error(pointer, "expected a non-empty string, found an empty one");
                None
            }
            other => {
                self.expected(pointer, "a string", other);
                None
            }
        }
    }

    fn required<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        name: &str,
        pointer: &str,
    ) -> Option<&'v Value> {
        let value = map.get(name);
        if value.is_none() {
            self.error(pointer, format!("the member '{name}' is required"));
        }
        value
    }

    fn document(&mut self, document: &Value) -> Expectations {
        let mut expectations = Expectations {
            tenant: DEFAULT_TENANT_ID.to_string(),
            personas: Vec::new(),
        };
        let Some(map) = self.object(document, "", DOCUMENT_MEMBERS) else {
            return expectations;
        };
        if let Some(value) = map.get("$schema") {
            if !value.is_string() {
                self.expected("/$schema", "a string", value);
            }
        }
        if let Some(value) = map.get("tenant") {
            if let Some(tenant) = self.string(value, "/tenant") {
                match TenantId::parse(&tenant) {
                    Ok(_) => expectations.tenant = tenant,
                    Err(violation) => self.error("/tenant", violation.message),
                }
            }
        }
        match self.required(map, "personas", "") {
            Some(Value::Array(personas)) => {
                for (index, persona) in personas.iter().enumerate() {
                    if let Some(persona) = self.persona(persona, &format!("/personas/{index}")) {
                        expectations.personas.push(persona);
                    }
                }
            }
            Some(other) => self.expected("/personas", "an array of personas", other),
            None => {}
        }
        expectations
    }

    fn persona(&mut self, value: &Value, pointer: &str) -> Option<Persona> {
        let map = self.object(value, pointer, PERSONA_MEMBERS)?;
        let user = self
            .required(map, "user", pointer)
            .and_then(|user| self.string(user, &format!("{pointer}/user")));
        let mut queries = Vec::new();
        match self.required(map, "queries", pointer) {
            Some(Value::Array(values)) => {
                for (index, query) in values.iter().enumerate() {
                    if let Some(query) = self.query(query, &format!("{pointer}/queries/{index}")) {
                        queries.push(query);
                    }
                }
            }
            Some(other) => {
                self.expected(&format!("{pointer}/queries"), "an array of queries", other)
            }
            None => {}
        }
        Some(Persona {
            user: user?,
            queries,
        })
    }

    fn query(&mut self, value: &Value, pointer: &str) -> Option<QuerySpec> {
        let map = self.object(value, pointer, QUERY_MEMBERS)?;
        let errors_before = self.errors.len();
        let name = map
            .get("name")
            .and_then(|name| self.string(name, &format!("{pointer}/name")));
        // An empty query string is the server's to judge; only its type is checked here.
        let query = match self.required(map, "query", pointer) {
            Some(Value::String(text)) => Some(text.clone()),
            Some(other) => {
                self.expected(&format!("{pointer}/query"), "a string", other);
                None
            }
            None => None,
        };
        let connections = map.get("connections").and_then(|value| {
            let at = format!("{pointer}/connections");
            let list = self.connection_list(value, &at)?;
            if list.is_empty() {
                self.error(
                    &at,
                    "expected at least one connection id (leave the member out to search every connection)",
                );
                return None;
            }
            Some(list)
        });
        let must_see = self.item_list(map, "mustSee", pointer, connections.as_deref());
        let must_not_see = self.item_list(map, "mustNotSee", pointer, connections.as_deref());
        for (index, item) in must_not_see.iter().enumerate() {
            if let Some(other) = must_see.iter().find(|seen| overlaps(seen, item)) {
                self.error(
                    &format!("{pointer}/mustNotSee/{index}"),
                    format!("'{item}' is also in mustSee ('{other}')"),
                );
            }
        }
        let exactly = match map.get("exactly") {
            None => false,
            Some(Value::Bool(exactly)) => *exactly,
            Some(other) => {
                self.expected(&format!("{pointer}/exactly"), "true or false", other);
                false
            }
        };
        let total = map
            .get("total")
            .and_then(|value| self.count(value, &format!("{pointer}/total")));
        let aggregations = match map.get("aggregations") {
            None => Vec::new(),
            Some(value) => self.aggregations(value, &format!("{pointer}/aggregations")),
        };
        if self.errors.len() > errors_before {
            return None;
        }
        Some(QuerySpec {
            name,
            query: query?,
            connections,
            must_see,
            must_not_see,
            exactly,
            total,
            aggregations,
        })
    }

    fn count(&mut self, value: &Value, pointer: &str) -> Option<u64> {
        let count = value.as_u64();
        if count.is_none() {
            let shown = match value {
                Value::Number(number) => format!("found {number}"),
                other => format!("found {}", kind(other)),
            };
            self.error(pointer, format!("expected a non-negative integer, {shown}"));
        }
        count
    }

    /// Visits each element of an array of non-empty strings (in order, so that problems are
    /// reported in document order); `false` when `value` is not an array.
    fn each_string(
        &mut self,
        value: &Value,
        pointer: &str,
        mut visit: impl FnMut(&mut Self, String, String),
    ) -> bool {
        let Value::Array(values) = value else {
            self.expected(pointer, "an array of strings", value);
            return false;
        };
        for (index, value) in values.iter().enumerate() {
            let at = format!("{pointer}/{index}");
            if let Some(text) = self.string(value, &at) {
                visit(self, at, text);
            }
        }
        true
    }

    fn connection_list(&mut self, value: &Value, pointer: &str) -> Option<Vec<String>> {
        let mut list: Vec<String> = Vec::new();
        let is_array = self.each_string(value, pointer, |reader, at, raw| {
            let id = connection_id(&raw);
            if id.is_empty() || id.contains('/') {
                reader.error(&at, format!("'{raw}' is not a connection id"));
            } else if !list.iter().any(|known| known.eq_ignore_ascii_case(id)) {
                list.push(id.to_string());
            }
        });
        is_array.then_some(list)
    }

    fn item_list(
        &mut self,
        map: &Map<String, Value>,
        name: &str,
        pointer: &str,
        connections: Option<&[String]>,
    ) -> Vec<ItemRef> {
        let mut items = Vec::new();
        let Some(value) = map.get(name) else {
            return items;
        };
        self.each_string(value, &format!("{pointer}/{name}"), |reader, at, raw| {
            let Some(item) = ItemRef::parse(&raw) else {
                reader.error(
                    &at,
                    format!("'{raw}' is neither an item id nor connectionId/itemId"),
                );
                return;
            };
            if let (Some(connection), Some(connections)) = (&item.connection, connections) {
                if !connections.iter().any(|c| c.eq_ignore_ascii_case(connection)) {
                    reader.error(
                        &at,
                        format!(
                            "the connection '{connection}' is not among the query's connections ({})",
                            connections.join(", ")
                        ),
                    );
                    return;
                }
            }
            items.push(item);
        });
        items
    }

    fn aggregations(&mut self, value: &Value, pointer: &str) -> Vec<(String, Vec<(String, u64)>)> {
        let Value::Object(properties) = value else {
            self.expected(
                pointer,
                "an object of {\"propertyName\": {\"bucketValue\": count}}",
                value,
            );
            return Vec::new();
        };
        let mut aggregations = Vec::new();
        for (property, buckets) in properties {
            let at = format!("{pointer}/{}", escape(property));
            if property.is_empty() {
                self.error(&at, "the property name is empty");
                continue;
            }
            let Value::Object(buckets) = buckets else {
                self.expected(&at, "an object of {\"bucketValue\": count}", buckets);
                continue;
            };
            let counts = buckets
                .iter()
                .filter_map(|(key, count)| {
                    self.count(count, &format!("{at}/{}", escape(key)))
                        .map(|count| (key.clone(), count))
                })
                .collect();
            aggregations.push((property.clone(), counts));
        }
        aggregations
    }
}

/// `helpdesk`, `/external/connections/helpdesk` and `external/connections/helpdesk` all name
/// the connection `helpdesk`.
pub fn connection_id(raw: &str) -> &str {
    let trimmed = raw.trim().trim_start_matches('/');
    trimmed
        .strip_prefix("external/connections/")
        .unwrap_or(trimmed)
}

/// Whether two references can name the same item.
fn overlaps(a: &ItemRef, b: &ItemRef) -> bool {
    a.item == b.item
        && match (&a.connection, &b.connection) {
            (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
            _ => true,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(document: Value) -> Vec<String> {
        from_value(&document)
            .expect_err("the document is refused")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_full_file_is_read() {
        let text = r#"{
            "$schema": "./expectations.schema.json",
            "tenant": "contoso",
            "personas": [
                {"user": "adele@contoso.com", "queries": [
                    {"name": "vpn tickets", "query": "vpn", "connections": ["helpdesk", "/external/connections/wiki"],
                     "mustSee": ["TCK-1042", "wiki/W-1"], "mustNotSee": ["helpdesk/TCK-1077"],
                     "exactly": true, "total": 12,
                     "aggregations": {"status": {"open": 3, "closed": 9}}}
                ]},
                {"user": "bob@contoso.com", "queries": [{"query": "printer"}]}
            ]
        }"#;
        let expectations = parse(text).unwrap();
        assert_eq!(expectations.tenant, "contoso");
        assert_eq!(expectations.personas.len(), 2);
        let query = &expectations.personas[0].queries[0];
        assert_eq!(query.label(), "vpn tickets");
        assert_eq!(
            query.connections.as_deref(),
            Some(&["helpdesk".to_string(), "wiki".to_string()][..])
        );
        assert_eq!(
            query.must_see,
            vec![
                ItemRef::parse("TCK-1042").unwrap(),
                ItemRef {
                    connection: Some("wiki".into()),
                    item: "W-1".into()
                }
            ]
        );
        assert_eq!(query.must_not_see[0].to_string(), "helpdesk/TCK-1077");
        assert!(query.exactly);
        assert_eq!(query.total, Some(12));
        assert_eq!(
            query.aggregations,
            vec![(
                "status".to_string(),
                vec![("open".to_string(), 3), ("closed".to_string(), 9)]
            )]
        );
        let plain = &expectations.personas[1].queries[0];
        assert_eq!(plain.label(), "printer");
        assert_eq!(plain.connections, None);
        assert!(!plain.exactly && plain.total.is_none() && plain.must_see.is_empty());
    }

    #[test]
    fn the_tenant_defaults_to_the_default_tenant() {
        let expectations = parse(r#"{"personas": []}"#).unwrap();
        assert_eq!(expectations.tenant, "00000000-0000-0000-0000-000000000001");
    }

    #[test]
    fn a_bad_value_deep_inside_is_named_by_its_json_pointer() {
        let document = json!({"personas": [
            {"user": "a@x", "queries": [{"query": "q"}]},
            {"user": "b@x", "queries": [{"query": "q", "total": -3}]}
        ]});
        assert_eq!(
            errors(document),
            vec!["/personas/1/queries/0/total: expected a non-negative integer, found -3"]
        );
        let document = json!({"personas": [{"user": "a@x", "queries": [
            {"query": "q", "aggregations": {"a/b": {"open": "three"}}}
        ]}]});
        assert_eq!(
            errors(document),
            vec!["/personas/0/queries/0/aggregations/a~1b/open: expected a non-negative integer, found a string"]
        );
    }

    #[test]
    fn unknown_members_wrong_types_and_missing_members_are_all_reported() {
        let document = json!({
            "tenant": 7,
            "personaz": [],
            "personas": [
                {"queries": []},
                {"user": "", "queries": {}},
                {"user": "c@x", "queries": [
                    {"querry": "typo"},
                    {"query": 3, "exactly": "yes", "mustSee": "TCK-1", "connections": []},
                    {"query": "q", "mustSee": ["a/b/c", 4], "mustNotSee": ["TCK-9"], "connections": ["x"]},
                    {"query": "q", "mustSee": ["TCK-9"], "mustNotSee": ["x/TCK-9"]}
                ]},
                "dave"
            ]
        });
        assert_eq!(
            errors(document),
            vec![
                "/personaz: unknown member (allowed: $schema, tenant, personas)",
                "/tenant: expected a string, found a number",
                "/personas/0: the member 'user' is required",
                "/personas/1/user: expected a non-empty string, found an empty one",
                "/personas/1/queries: expected an array of queries, found an object",
                "/personas/2/queries/0/querry: unknown member (allowed: name, query, connections, mustSee, mustNotSee, exactly, total, aggregations)",
                "/personas/2/queries/0: the member 'query' is required",
                "/personas/2/queries/1/query: expected a string, found a number",
                "/personas/2/queries/1/connections: expected at least one connection id (leave the member out to search every connection)",
                "/personas/2/queries/1/mustSee: expected an array of strings, found a string",
                "/personas/2/queries/1/exactly: expected true or false, found a string",
                "/personas/2/queries/2/mustSee/0: 'a/b/c' is neither an item id nor connectionId/itemId",
                "/personas/2/queries/2/mustSee/1: expected a string, found a number",
                "/personas/2/queries/3/mustNotSee/0: 'x/TCK-9' is also in mustSee ('TCK-9')",
                "/personas/3: expected an object, found a string",
            ]
        );
    }

    #[test]
    fn an_item_of_a_connection_the_query_does_not_search_is_refused() {
        let document = json!({"personas": [{"user": "a@x", "queries": [
            {"query": "q", "connections": ["helpdesk"], "mustSee": ["Helpdesk/T1", "wiki/W1"]}
        ]}]});
        assert_eq!(
            errors(document),
            vec!["/personas/0/queries/0/mustSee/1: the connection 'wiki' is not among the query's connections (helpdesk)"]
        );
    }

    #[test]
    fn the_document_itself_and_json_syntax_are_reported() {
        assert_eq!(
            errors(json!([1])),
            vec!["(document): expected an object, found an array"]
        );
        assert_eq!(
            errors(json!({})),
            vec!["(document): the member 'personas' is required"]
        );
        let syntax = parse("{\"personas\": [").unwrap_err();
        assert!(syntax[0].message.contains("not valid JSON"), "{syntax:?}");
        assert!(syntax[0].message.contains("line 1"), "{syntax:?}");
    }

    #[test]
    fn item_references_match_in_any_queried_connection_or_in_theirs() {
        let bare = ItemRef::parse("T1").unwrap();
        assert!(bare.matches("helpdesk", "T1") && bare.matches("wiki", "T1"));
        assert!(
            !bare.matches("helpdesk", "t1"),
            "item ids are case-sensitive"
        );
        let qualified = ItemRef::parse("HelpDesk/T1").unwrap();
        assert!(qualified.matches("helpdesk", "T1"));
        assert!(!qualified.matches("wiki", "T1"));
        assert_eq!(ItemRef::parse("/T1"), None);
        assert_eq!(ItemRef::parse("x/"), None);
        assert_eq!(ItemRef::parse(""), None);
    }
}
