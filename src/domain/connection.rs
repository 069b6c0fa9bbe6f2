//! The externalConnection and the rules for its writable properties (spec/connections.md).
//!
//! Open or loosely typed members (`configuration`, `activitySettings`, `searchSettings`,
//! `complianceSettings`) are kept as JSON documents so they round-trip exactly;
//! their documented limits are checked here.

use serde_json::Value;

use super::ids::ConnectionId;
use super::Violation;

/// The connection's lifecycle state (`connectionState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    Draft,
    Ready,
    Obsolete,
    LimitExceeded,
}

impl ConnectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Draft => "draft",
            ConnectionState::Ready => "ready",
            ConnectionState::Obsolete => "obsolete",
            ConnectionState::LimitExceeded => "limitExceeded",
        }
    }

    pub fn parse(raw: &str) -> Option<ConnectionState> {
        [
            ConnectionState::Draft,
            ConnectionState::Ready,
            ConnectionState::Obsolete,
            ConnectionState::LimitExceeded,
        ]
        .into_iter()
        .find(|state| state.as_str().eq_ignore_ascii_case(raw))
    }
}

/// `contentCategory` members, in CSDL order; `unknownFutureValue` is not accepted on input.
pub const CONTENT_CATEGORIES: &[&str] = &[
    "uncategorized",
    "knowledgeBase",
    "wikis",
    "fileRepository",
    "qna",
    "crm",
    "dashboard",
    "people",
    "media",
    "email",
    "messaging",
    "meetingTranscripts",
    "taskManagement",
    "learningManagement",
];

/// `contentExperienceType` members (beta `enabledContentExperiences`).
pub const CONTENT_EXPERIENCES: &[&str] = &["search", "compliance"];

/// Finds `raw` among `members` ignoring letter case and returns Graph's own spelling.
pub fn parse_enum_member(members: &[&'static str], raw: &str) -> Option<&'static str> {
    members
        .iter()
        .copied()
        .find(|member| member.eq_ignore_ascii_case(raw))
}

/// An external connection as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalConnection {
    pub id: ConnectionId,
    pub name: String,
    pub description: Option<String>,
    pub state: ConnectionState,
    /// The open `configuration` complex type; always an object with `authorizedAppIds`.
    pub configuration: Value,
    pub connector_id: Option<String>,
    pub content_category: &'static str,
    pub activity_settings: Option<Value>,
    pub search_settings: Option<Value>,
    pub enabled_content_experiences: Option<Vec<&'static str>>,
    pub compliance_settings: Option<Value>,
}

/// The writable members of a connection, each present only when the client sent it.
/// Used both for create (where `name` is required) and for update (PATCH semantics).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectionFields {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub configuration: Option<Value>,
    pub connector_id: Option<Option<String>>,
    pub content_category: Option<&'static str>,
    pub activity_settings: Option<Option<Value>>,
    pub search_settings: Option<Option<Value>>,
    pub enabled_content_experiences: Option<Vec<&'static str>>,
    pub compliance_settings: Option<Option<Value>>,
}

pub const MAX_NAME_CHARS: usize = 128;
pub const MAX_URL_TO_ITEM_RESOLVERS: usize = 8;

impl ExternalConnection {
    /// Builds a new `draft` connection from a create request made by application `caller_app_id`.
    pub fn create(
        id: ConnectionId,
        fields: ConnectionFields,
        caller_app_id: &str,
    ) -> Result<ExternalConnection, Violation> {
        let name = fields
            .name
            .clone()
            .ok_or_else(|| Violation::new("name", "the connection's name is required"))?;
        let mut connection = ExternalConnection {
            id,
            name,
            description: None,
            state: ConnectionState::Draft,
            configuration: serde_json::json!({ "authorizedAppIds": [] }),
            connector_id: None,
            content_category: "uncategorized",
            activity_settings: None,
            search_settings: None,
            enabled_content_experiences: None,
            compliance_settings: None,
        };
        connection.apply(fields)?;
        connection.authorize_app(caller_app_id);
        Ok(connection)
    }

    /// Applies an update with PATCH semantics: members absent from `fields` keep their values.
    /// Either every member is applied or, on a violation, `self` is left unchanged.
    pub fn apply(&mut self, fields: ConnectionFields) -> Result<(), Violation> {
        let mut updated = self.clone();
        if let Some(name) = fields.name {
            validate_name(&name)?;
            updated.name = name;
        }
        if let Some(description) = fields.description {
            updated.description = description;
        }
        if let Some(configuration) = fields.configuration {
            validate_configuration(&configuration)?;
            updated.configuration = configuration;
        }
        if let Some(connector_id) = fields.connector_id {
            updated.connector_id = connector_id;
        }
        if let Some(content_category) = fields.content_category {
            updated.content_category = content_category;
        }
        if let Some(activity_settings) = fields.activity_settings {
            if let Some(settings) = &activity_settings {
                validate_activity_settings(settings)?;
            }
            updated.activity_settings = activity_settings;
        }
        if let Some(search_settings) = fields.search_settings {
            if let Some(settings) = &search_settings {
                validate_display_templates(settings, "searchSettings", "searchResultTemplates")?;
            }
            updated.search_settings = search_settings;
        }
        if let Some(experiences) = fields.enabled_content_experiences {
            updated.enabled_content_experiences = Some(experiences);
        }
        if let Some(compliance_settings) = fields.compliance_settings {
            if let Some(settings) = &compliance_settings {
                validate_display_templates(
                    settings,
                    "complianceSettings",
                    "eDiscoveryResultTemplates",
                )?;
            }
            updated.compliance_settings = compliance_settings;
        }
        *self = updated;
        Ok(())
    }

    /// Returns the application ids allowed to manage this connection besides its creator.
    pub fn authorized_app_ids(&self) -> Vec<String> {
        self.configuration
            .get("authorizedAppIds")
            .and_then(Value::as_array)
            .map(|ids| {
                ids.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Adds `app_id` to `configuration.authorizedAppIds` unless it is already listed,
    /// as the real service does for the creating application.
    pub fn authorize_app(&mut self, app_id: &str) {
        let Some(configuration) = self.configuration.as_object_mut() else {
            return;
        };
        let ids = configuration
            .entry("authorizedAppIds")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(ids) = ids.as_array_mut() {
            if !ids.iter().any(|id| {
                id.as_str()
                    .is_some_and(|id| id.eq_ignore_ascii_case(app_id))
            }) {
                ids.push(Value::String(app_id.to_string()));
            }
        }
    }
}

/// `name` is required, non-empty and at most 128 characters.
pub fn validate_name(name: &str) -> Result<(), Violation> {
    if name.trim().is_empty() {
        return Err(Violation::new(
            "name",
            "the connection's name must not be empty",
        ));
    }
    let n_chars = name.chars().count();
    if n_chars > MAX_NAME_CHARS {
        return Err(Violation::new(
            "name",
            format!("the connection's name must be at most {MAX_NAME_CHARS} characters long, it has {n_chars}"),
        ));
    }
    Ok(())
}

/// `configuration` is an open object whose `authorizedAppIds`, when present, is a list of strings.
pub fn validate_configuration(configuration: &Value) -> Result<(), Violation> {
    let Some(object) = configuration.as_object() else {
        return Err(Violation::new(
            "configuration",
            "configuration must be an object",
        ));
    };
    match object.get("authorizedAppIds") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(ids))
            if ids
                .iter()
                .all(|id| id.as_str().is_some_and(|id| !id.is_empty())) =>
        {
            Ok(())
        }
        Some(_) => Err(Violation::new(
            "configuration.authorizedAppIds",
            "configuration.authorizedAppIds must be a list of application ids (strings)",
        )),
    }
}

/// `activitySettings.urlToItemResolvers`: at most 8 `itemIdResolver`s, priorities 1 to 8,
/// an `urlPattern` that compiles, and an `itemId` template naming only groups of the pattern.
pub fn validate_activity_settings(settings: &Value) -> Result<(), Violation> {
    let Some(object) = settings.as_object() else {
        return Err(Violation::new(
            "activitySettings",
            "activitySettings must be an object",
        ));
    };
    let resolvers = match object.get("urlToItemResolvers") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(resolvers)) => resolvers,
        Some(_) => {
            return Err(Violation::new(
                "activitySettings.urlToItemResolvers",
                "activitySettings.urlToItemResolvers must be a list",
            ))
        }
    };
    if resolvers.len() > MAX_URL_TO_ITEM_RESOLVERS {
        return Err(Violation::new(
            "activitySettings.urlToItemResolvers",
            format!(
                "at most {MAX_URL_TO_ITEM_RESOLVERS} urlToItemResolvers are allowed, {} were sent",
                resolvers.len()
            ),
        ));
    }
    for (index, resolver) in resolvers.iter().enumerate() {
        let target = format!("activitySettings.urlToItemResolvers[{index}]");
        let Some(resolver) = resolver.as_object() else {
            return Err(Violation::new(
                &target,
                format!("{target} must be an object"),
            ));
        };
        if let Some(odata_type) = resolver.get("@odata.type").and_then(Value::as_str) {
            let bare = odata_type.trim_start_matches('#');
            if !bare.eq_ignore_ascii_case("microsoft.graph.externalConnectors.itemIdResolver") {
                return Err(Violation::new(
                    format!("{target}.@odata.type"),
                    format!("a type named '{bare}' could not be resolved: the only urlToItemResolver type is '#microsoft.graph.externalConnectors.itemIdResolver'"),
                ));
            }
        }
        let priority = resolver.get("priority").and_then(Value::as_i64);
        if !priority.is_some_and(|p| (1..=8).contains(&p)) {
            return Err(Violation::new(
                format!("{target}.priority"),
                format!("{target}.priority must be an integer from 1 to 8"),
            ));
        }
        let Some(item_id) = resolver.get("itemId").and_then(Value::as_str) else {
            return Err(Violation::new(
                format!("{target}.itemId"),
                format!("{target}.itemId is required"),
            ));
        };
        let Some(match_info) = resolver.get("urlMatchInfo").and_then(Value::as_object) else {
            return Err(Violation::new(
                format!("{target}.urlMatchInfo"),
                format!("{target}.urlMatchInfo is required"),
            ));
        };
        let base_urls_ok = match match_info.get("baseUrls") {
            Some(Value::Array(urls)) => !urls.is_empty() && urls.iter().all(Value::is_string),
            _ => false,
        };
        if !base_urls_ok {
            return Err(Violation::new(
                format!("{target}.urlMatchInfo.baseUrls"),
                format!("{target}.urlMatchInfo.baseUrls must be a non-empty list of URLs"),
            ));
        }
        let Some(pattern) = match_info.get("urlPattern").and_then(Value::as_str) else {
            return Err(Violation::new(
                format!("{target}.urlMatchInfo.urlPattern"),
                format!("{target}.urlMatchInfo.urlPattern is required"),
            ));
        };
        let regex = regex::Regex::new(pattern).map_err(|error| {
            Violation::new(
                format!("{target}.urlMatchInfo.urlPattern"),
                format!("{target}.urlMatchInfo.urlPattern '{pattern}' is not a valid regular expression: {}", first_line(&error.to_string())),
            )
        })?;
        let group_names: Vec<&str> = regex.capture_names().flatten().collect();
        for placeholder in template_placeholders(item_id) {
            if !group_names.contains(&placeholder) {
                return Err(Violation::new(
                    format!("{target}.itemId"),
                    format!("{target}.itemId names the group '{{{placeholder}}}' that urlPattern does not capture"),
                ));
            }
        }
    }
    Ok(())
}

/// A settings object holding a list of displayTemplates under `list_member`
/// (`searchSettings.searchResultTemplates`, `complianceSettings.eDiscoveryResultTemplates`).
pub fn validate_display_templates(
    settings: &Value,
    settings_name: &str,
    list_member: &str,
) -> Result<(), Violation> {
    super::result_template::parse_display_templates(settings, settings_name, list_member)
        .map(|_| ())
}

/// Names between braces in an `itemId` template such as `id_{n}`.
fn template_placeholders(template: &str) -> Vec<&str> {
    let mut placeholders = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        placeholders.push(&after[..close]);
        rest = &after[close + 1..];
    }
    placeholders
}

fn first_line(text: &str) -> &str {
    text.lines().last().unwrap_or(text).trim()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields_named(name: &str) -> ConnectionFields {
        ConnectionFields {
            name: Some(name.to_string()),
            ..ConnectionFields::default()
        }
    }

    #[test]
    fn create_starts_in_draft_and_authorizes_the_creating_app() {
        let connection = ExternalConnection::create(
            ConnectionId::parse("tickets").unwrap(),
            fields_named("Tickets"),
            "app-1",
        )
        .unwrap();
        assert_eq!(connection.state, ConnectionState::Draft);
        assert_eq!(connection.content_category, "uncategorized");
        assert_eq!(connection.authorized_app_ids(), vec!["app-1".to_string()]);
    }

    #[test]
    fn create_appends_the_creator_to_a_supplied_list_once() {
        let mut fields = fields_named("Tickets");
        fields.configuration = Some(json!({"authorizedAppIds": ["other", "APP-1"], "extra": 1}));
        let connection =
            ExternalConnection::create(ConnectionId::parse("tickets").unwrap(), fields, "app-1")
                .unwrap();
        assert_eq!(connection.authorized_app_ids(), vec!["other", "APP-1"]);
        assert_eq!(connection.configuration["extra"], 1);
    }

    #[test]
    fn name_is_required_non_empty_and_at_most_128_chars() {
        let id = ConnectionId::parse("tickets").unwrap();
        assert!(ExternalConnection::create(id.clone(), ConnectionFields::default(), "a").is_err());
        assert!(ExternalConnection::create(id.clone(), fields_named("  "), "a").is_err());
        assert!(
            ExternalConnection::create(id.clone(), fields_named(&"n".repeat(129)), "a").is_err()
        );
        assert!(ExternalConnection::create(id, fields_named(&"n".repeat(128)), "a").is_ok());
    }

    #[test]
    fn a_refused_update_changes_nothing() {
        let mut connection = ExternalConnection::create(
            ConnectionId::parse("tickets").unwrap(),
            fields_named("Tickets"),
            "a",
        )
        .unwrap();
        let before = connection.clone();
        let update = ConnectionFields {
            description: Some(Some("changed".into())),
            name: Some(String::new()),
            ..ConnectionFields::default()
        };
        assert!(connection.apply(update).is_err());
        assert_eq!(connection, before);
    }

    fn resolver(priority: i64, pattern: &str, item_id: &str) -> Value {
        json!({
            "@odata.type": "#microsoft.graph.externalConnectors.itemIdResolver",
            "priority": priority,
            "itemId": item_id,
            "urlMatchInfo": {"baseUrls": ["https://contoso.com"], "urlPattern": pattern}
        })
    }

    #[test]
    fn activity_settings_accept_the_documented_resolver() {
        let settings =
            json!({"urlToItemResolvers": [resolver(1, "/items/(?<n>[0-9]+)", "id_{n}")]});
        assert_eq!(validate_activity_settings(&settings), Ok(()));
    }

    #[test]
    fn activity_settings_refuse_more_than_8_resolvers() {
        let resolvers: Vec<Value> = (1..=9).map(|p| resolver(p.min(8), "/x", "x")).collect();
        let violation =
            validate_activity_settings(&json!({"urlToItemResolvers": resolvers})).unwrap_err();
        assert!(violation.message.contains("at most 8"));
    }

    #[test]
    fn activity_settings_refuse_bad_priority_pattern_and_template() {
        for (settings, expected) in [
            (resolver(0, "/x", "x"), "priority"),
            (resolver(9, "/x", "x"), "priority"),
            (
                resolver(1, "/items/(?<n>[0-9+", "x"),
                "not a valid regular expression",
            ),
            (resolver(1, "/items/(?<n>[0-9]+)", "id_{m}"), "'{m}'"),
        ] {
            let violation =
                validate_activity_settings(&json!({"urlToItemResolvers": [settings]})).unwrap_err();
            assert!(violation.message.contains(expected), "{violation}");
        }
    }

    #[test]
    fn display_templates_follow_their_rules() {
        let good = json!({"searchResultTemplates": [{"id": "tpl1", "priority": 1, "layout": {"type": "AdaptiveCard"},
            "rules": [{"property": "title", "operation": "Equals", "values": ["x"], "valuesJoinedBy": "or"}]}]});
        assert_eq!(
            validate_display_templates(&good, "searchSettings", "searchResultTemplates"),
            Ok(())
        );
        for (template, expected) in [
            (
                json!({"id": "has-dash", "priority": 1, "layout": {}}),
                ".id",
            ),
            (
                json!({"id": "x".repeat(17), "priority": 1, "layout": {}}),
                ".id",
            ),
            (
                json!({"id": "ok", "priority": 0, "layout": {}}),
                ".priority",
            ),
            (json!({"id": "ok", "priority": 1}), ".layout"),
            (
                json!({"id": "ok", "priority": 1, "layout": {}, "rules": [{"property": "p", "operation": "near", "values": [], "valuesJoinedBy": "or"}]}),
                ".operation",
            ),
        ] {
            let settings = json!({"searchResultTemplates": [template]});
            let violation =
                validate_display_templates(&settings, "searchSettings", "searchResultTemplates")
                    .unwrap_err();
            assert!(
                violation.target.ends_with(expected),
                "{} vs {expected}",
                violation.target
            );
        }
    }
}
