//! A connection's search result templates (`searchSettings.searchResultTemplates`,
//! spec/connections.md §1.2): their rules, and which template an item gets.
//!
//! Templates are tried by ascending `priority` (ties in declaration order); the first whose
//! rules all hold for the item's properties is the item's template. A template without rules
//! fits every item.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::connection::parse_enum_member;
use super::item::parse_date_time;
use super::schema::Schema;
use super::Violation;

pub const MAX_DISPLAY_TEMPLATE_ID_CHARS: usize = 16;
/// "Maximum of 2 search result templates per connection" (externalconnectors-searchsettings).
pub const MAX_SEARCH_RESULT_TEMPLATES: usize = 2;
/// Rules per template and values per rule at most (Graph documents none; gcemu's bound, so that
/// choosing a template costs little per hit).
pub const MAX_RULES: usize = 20;
pub const MAX_RULE_VALUES: usize = 20;

#[derive(Debug, Clone, PartialEq)]
pub struct DisplayTemplate {
    pub id: String,
    pub priority: i64,
    /// The Adaptive Card, as declared.
    pub layout: Value,
    pub rules: Vec<PropertyRule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PropertyRule {
    pub property: String,
    pub operation: RuleOperation,
    pub values: Vec<String>,
    pub joined_by: JoinedBy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleOperation {
    /// The property has no value (absent, `null` or an empty collection); `values` is ignored.
    Null,
    Equals,
    NotEquals,
    Contains,
    NotContains,
    LessThan,
    GreaterThan,
    StartsWith,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinedBy {
    Or,
    And,
}

const RULE_OPERATIONS: &[&str] = &[
    "null",
    "equals",
    "notEquals",
    "contains",
    "notContains",
    "lessThan",
    "greaterThan",
    "startsWith",
];

impl RuleOperation {
    fn parse(raw: &str) -> Option<RuleOperation> {
        Some(match parse_enum_member(RULE_OPERATIONS, raw)? {
            "null" => RuleOperation::Null,
            "equals" => RuleOperation::Equals,
            "notEquals" => RuleOperation::NotEquals,
            "contains" => RuleOperation::Contains,
            "notContains" => RuleOperation::NotContains,
            "lessThan" => RuleOperation::LessThan,
            "greaterThan" => RuleOperation::GreaterThan,
            _ => RuleOperation::StartsWith,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RuleOperation::Null => "null",
            RuleOperation::Equals => "equals",
            RuleOperation::NotEquals => "notEquals",
            RuleOperation::Contains => "contains",
            RuleOperation::NotContains => "notContains",
            RuleOperation::LessThan => "lessThan",
            RuleOperation::GreaterThan => "greaterThan",
            RuleOperation::StartsWith => "startsWith",
        }
    }
}

/// Reads and checks the displayTemplate list under `list_member` of a settings object
/// (`searchSettings.searchResultTemplates`, `complianceSettings.eDiscoveryResultTemplates`).
pub fn parse_display_templates(
    settings: &Value,
    settings_name: &str,
    list_member: &str,
) -> Result<Vec<DisplayTemplate>, Violation> {
    let Some(object) = settings.as_object() else {
        return Err(Violation::new(
            settings_name,
            format!("{settings_name} must be an object"),
        ));
    };
    let list_target = format!("{settings_name}.{list_member}");
    let entries = match object.get(list_member) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(entries)) => entries,
        Some(_) => {
            return Err(Violation::new(
                &list_target,
                format!("{list_target} must be a list"),
            ))
        }
    };
    if list_member == "searchResultTemplates" && entries.len() > MAX_SEARCH_RESULT_TEMPLATES {
        return Err(Violation::new(
            &list_target,
            format!(
                "{list_target} holds {} templates; a connection has at most {MAX_SEARCH_RESULT_TEMPLATES}",
                entries.len()
            ),
        ));
    }
    let mut templates: Vec<DisplayTemplate> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let target = format!("{list_target}[{index}]");
        let template = parse_template(entry, &target)?;
        if templates
            .iter()
            .any(|other| other.id.eq_ignore_ascii_case(&template.id))
        {
            return Err(Violation::new(
                format!("{target}.id"),
                format!(
                    "{target}.id '{}' is used by another template of the list",
                    template.id
                ),
            ));
        }
        templates.push(template);
    }
    Ok(templates)
}

fn parse_template(entry: &Value, target: &str) -> Result<DisplayTemplate, Violation> {
    let Some(template) = entry.as_object() else {
        return Err(Violation::new(
            target,
            format!("{target} must be an object"),
        ));
    };
    let id = template
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if id.is_empty()
        || id.chars().count() > MAX_DISPLAY_TEMPLATE_ID_CHARS
        || !id.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(Violation::new(
            format!("{target}.id"),
            format!(
                "{target}.id '{}' must be 1 to {MAX_DISPLAY_TEMPLATE_ID_CHARS} letters and digits",
                super::excerpt(id, 40)
            ),
        ));
    }
    let layout = match template.get("layout") {
        Some(layout @ Value::Object(_)) => layout.clone(),
        _ => {
            return Err(Violation::new(
                format!("{target}.layout"),
                format!("{target}.layout must be an Adaptive Card object"),
            ))
        }
    };
    let priority = template.get("priority").and_then(Value::as_i64);
    let Some(priority) = priority.filter(|p| (1..=i64::from(i32::MAX)).contains(p)) else {
        return Err(Violation::new(
            format!("{target}.priority"),
            format!("{target}.priority must be a positive 32-bit integer"),
        ));
    };
    let rules = match template.get("rules") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(rules)) if rules.len() > MAX_RULES => {
            return Err(Violation::new(
                format!("{target}.rules"),
                format!(
                    "{target}.rules holds {} rules; gcemu accepts at most {MAX_RULES}",
                    rules.len()
                ),
            ))
        }
        Some(Value::Array(rules)) => rules
            .iter()
            .enumerate()
            .map(|(index, rule)| parse_rule(rule, &format!("{target}.rules[{index}]")))
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(Violation::new(
                format!("{target}.rules"),
                format!("{target}.rules must be a list"),
            ))
        }
    };
    Ok(DisplayTemplate {
        id: id.to_string(),
        priority,
        layout,
        rules,
    })
}

fn parse_rule(rule: &Value, target: &str) -> Result<PropertyRule, Violation> {
    let Some(rule) = rule.as_object() else {
        return Err(Violation::new(
            target,
            format!("{target} must be an object"),
        ));
    };
    let property = match rule.get("property").and_then(Value::as_str) {
        Some(property) if !property.trim().is_empty() => property.to_string(),
        _ => {
            return Err(Violation::new(
                format!("{target}.property"),
                format!("{target}.property is required: the name of a schema property"),
            ))
        }
    };
    let raw_operation = rule
        .get("operation")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(operation) = RuleOperation::parse(raw_operation) else {
        return Err(Violation::new(
            format!("{target}.operation"),
            format!(
                "{target}.operation '{}' is not one of {}",
                super::excerpt(raw_operation, 40),
                RULE_OPERATIONS.join(", ")
            ),
        ));
    };
    let values: Option<Vec<String>> = match rule.get("values") {
        Some(Value::Array(values)) => values
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => None,
    };
    let Some(values) = values else {
        return Err(Violation::new(
            format!("{target}.values"),
            format!("{target}.values must be a list of strings"),
        ));
    };
    if values.len() > MAX_RULE_VALUES || (values.is_empty() && operation != RuleOperation::Null) {
        return Err(Violation::new(
            format!("{target}.values"),
            format!(
                "{target}.values must hold 1 to {MAX_RULE_VALUES} strings for the operation '{}'",
                operation.as_str()
            ),
        ));
    }
    let joined_by = match rule.get("valuesJoinedBy").and_then(Value::as_str) {
        Some(raw) if raw.eq_ignore_ascii_case("or") => JoinedBy::Or,
        Some(raw) if raw.eq_ignore_ascii_case("and") => JoinedBy::And,
        other => {
            return Err(Violation::new(
                format!("{target}.valuesJoinedBy"),
                format!(
                    "{target}.valuesJoinedBy '{}' must be 'or' or 'and'",
                    super::excerpt(other.unwrap_or_default(), 40)
                ),
            ))
        }
    };
    Ok(PropertyRule {
        property,
        operation,
        values,
        joined_by,
    })
}

/// Every rule of `templates` names a property of `schema` (by name or alias).
pub fn check_rule_properties(
    templates: &[DisplayTemplate],
    schema: &Schema,
    list_target: &str,
) -> Result<(), Violation> {
    for (index, template) in templates.iter().enumerate() {
        for (rule_index, rule) in template.rules.iter().enumerate() {
            if schema.property_by_name_or_alias(&rule.property).is_none() {
                let target = format!("{list_target}[{index}].rules[{rule_index}].property");
                return Err(Violation::new(
                    &target,
                    format!(
                        "{target} names '{}', which is not a property of the connection's schema",
                        super::excerpt(&rule.property, 80)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The connection's search result templates in the order they are tried: ascending priority,
/// ties in declaration order. Stored settings were checked when written; anything unreadable
/// counts as no templates.
pub fn search_result_templates(search_settings: Option<&Value>) -> Vec<DisplayTemplate> {
    let mut templates = declared_search_result_templates(search_settings);
    templates.sort_by_key(|template| template.priority);
    templates
}

/// The connection's search result templates in declaration order.
pub fn declared_search_result_templates(search_settings: Option<&Value>) -> Vec<DisplayTemplate> {
    search_settings
        .and_then(|settings| {
            parse_display_templates(settings, "searchSettings", "searchResultTemplates").ok()
        })
        .unwrap_or_default()
}

/// The template an item with `properties` gets: the first of `templates` (already in priority
/// order) whose rules all hold. `schema` resolves aliases in rules.
pub fn choose<'a>(
    templates: &'a [DisplayTemplate],
    schema: &Schema,
    properties: &Map<String, Value>,
) -> Option<&'a DisplayTemplate> {
    templates.iter().find(|template| {
        template
            .rules
            .iter()
            .all(|rule| rule_holds(rule, schema, properties).holds)
    })
}

/// How one template fared for an item (for the explain endpoint).
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateOutcome {
    pub id: String,
    pub priority: i64,
    pub chosen: bool,
    pub rules: Vec<RuleOutcome>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleOutcome {
    pub property: String,
    pub operation: RuleOperation,
    pub values: Vec<String>,
    pub joined_by: JoinedBy,
    /// The item's value of the property, as stored (`None` when it has none).
    pub actual: Option<Value>,
    pub holds: bool,
    /// Why, in words (for example "the schema has no property 'x'").
    pub reason: String,
}

/// Every template tried for the item, in order, up to and including the chosen one.
pub fn explain(
    templates: &[DisplayTemplate],
    schema: &Schema,
    properties: &Map<String, Value>,
) -> Vec<TemplateOutcome> {
    let mut outcomes = Vec::new();
    for template in templates {
        let rules: Vec<RuleOutcome> = template
            .rules
            .iter()
            .map(|rule| rule_holds(rule, schema, properties))
            .collect();
        let chosen = rules.iter().all(|r| r.holds);
        outcomes.push(TemplateOutcome {
            id: template.id.clone(),
            priority: template.priority,
            chosen,
            rules,
        });
        if chosen {
            break;
        }
    }
    outcomes
}

fn rule_holds(
    rule: &PropertyRule,
    schema: &Schema,
    properties: &Map<String, Value>,
) -> RuleOutcome {
    let outcome = |actual: Option<Value>, holds: bool, reason: String| RuleOutcome {
        property: rule.property.clone(),
        operation: rule.operation,
        values: rule.values.clone(),
        joined_by: rule.joined_by,
        actual,
        holds,
        reason,
    };
    let Some(property) = schema.property_by_name_or_alias(&rule.property) else {
        return outcome(
            None,
            false,
            format!("the schema has no property '{}'", rule.property),
        );
    };
    let actual = properties
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(&property.name))
        .map(|(_, value)| value)
        .filter(|value| !value.is_null());
    let elements: Vec<&Value> = match actual {
        None => Vec::new(),
        Some(Value::Array(values)) => values.iter().filter(|v| !v.is_null()).collect(),
        Some(value) => vec![value],
    };
    if rule.operation == RuleOperation::Null {
        let holds = elements.is_empty();
        let reason = if holds {
            "the item has no value for it"
        } else {
            "the item has a value for it"
        };
        return outcome(actual.cloned(), holds, reason.into());
    }
    // Lowercased once per rule, not once per comparison.
    let lowered: Vec<String> = elements.iter().map(|v| lower(v)).collect();
    let per_value = |expected: &String| {
        value_holds(
            rule.operation,
            &elements,
            &lowered,
            &expected.to_lowercase(),
            expected,
        )
    };
    let holds = match rule.joined_by {
        JoinedBy::Or => rule.values.iter().any(per_value),
        JoinedBy::And => rule.values.iter().all(per_value),
    };
    let reason = format!(
        "{} {} {} the values ({}) is {holds}",
        if actual.is_some() {
            "the item's value"
        } else {
            "the item has no value, and"
        },
        rule.operation.as_str(),
        match rule.joined_by {
            JoinedBy::Or => "any of",
            JoinedBy::And => "all of",
        },
        rule.values.join(", "),
    );
    outcome(actual.cloned(), holds, reason)
}

/// One value of a rule against the item's elements (each element of a collection counts):
/// positive operations hold when some element satisfies them, negated ones when none satisfies
/// the positive form.
fn value_holds(
    operation: RuleOperation,
    elements: &[&Value],
    lowered: &[String],
    expected_lower: &str,
    expected: &str,
) -> bool {
    let any_text = |test: &dyn Fn(&str) -> bool| lowered.iter().any(|text| test(text));
    let any_order = |wanted: Ordering| {
        elements
            .iter()
            .zip(lowered)
            .any(|(value, text)| compare(value, text, expected, expected_lower) == Some(wanted))
    };
    match operation {
        RuleOperation::Null => elements.is_empty(),
        RuleOperation::Equals => any_order(Ordering::Equal),
        RuleOperation::NotEquals => !any_order(Ordering::Equal),
        RuleOperation::Contains => any_text(&|text| text.contains(expected_lower)),
        RuleOperation::NotContains => !any_text(&|text| text.contains(expected_lower)),
        RuleOperation::StartsWith => any_text(&|text| text.starts_with(expected_lower)),
        RuleOperation::LessThan => any_order(Ordering::Less),
        RuleOperation::GreaterThan => any_order(Ordering::Greater),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn lower(value: &Value) -> String {
    text(value).to_lowercase()
}

/// An item value against a rule value: as numbers when both are numbers, as instants when both
/// are dates, as booleans for a boolean, else as text without regard to case (`lowered` and
/// `expected_lower` are the texts lowercased).
fn compare(value: &Value, lowered: &str, expected: &str, expected_lower: &str) -> Option<Ordering> {
    match value {
        Value::Number(number) => {
            let expected = expected.trim().parse::<f64>().ok()?;
            number.as_f64()?.partial_cmp(&expected)
        }
        Value::Bool(flag) => match expected_lower.trim() {
            "true" => Some(flag.cmp(&true)),
            "false" => Some(flag.cmp(&false)),
            _ => None,
        },
        Value::String(text) => match (parse_date_time(text), parse_date_time(expected.trim())) {
            (Some(actual), Some(expected)) => Some(actual.cmp(&expected)),
            _ => Some(lowered.cmp(expected_lower)),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schema::{Property, PropertyType};
    use serde_json::json;

    fn schema() -> Schema {
        let mut title = Property::new("title", PropertyType::String);
        title.aliases = vec!["heading".into()];
        Schema {
            properties: vec![
                title,
                Property::new("status", PropertyType::String),
                Property::new("priority", PropertyType::Int64),
                Property::new("tags", PropertyType::StringCollection),
                Property::new("due", PropertyType::DateTime),
                Property::new("url", PropertyType::String),
            ],
        }
    }

    fn templates(value: Value) -> Vec<DisplayTemplate> {
        let mut templates = parse_display_templates(
            &json!({ "searchResultTemplates": value }),
            "searchSettings",
            "searchResultTemplates",
        )
        .unwrap();
        templates.sort_by_key(|t| t.priority);
        templates
    }

    fn rule(property: &str, operation: &str, values: &[&str], joined: &str) -> Value {
        json!({"property": property, "operation": operation, "values": values, "valuesJoinedBy": joined})
    }

    fn chosen(list: &[DisplayTemplate], properties: Value) -> Option<String> {
        choose(list, &schema(), properties.as_object().unwrap()).map(|t| t.id.clone())
    }

    #[test]
    fn first_template_by_priority_whose_rules_all_hold() {
        let list = templates(json!([
            {"id": "fallback", "priority": 9, "layout": {}},
            {"id": "urgent", "priority": 2, "layout": {}, "rules": [
                rule("status", "equals", &["open", "new"], "or"),
                rule("priority", "lessThan", &["2"], "or")]}
        ]));
        assert_eq!(
            chosen(&list, json!({"status": "Open", "priority": 1})),
            Some("urgent".into())
        );
        assert_eq!(
            chosen(&list, json!({"status": "open", "priority": 3})),
            Some("fallback".into())
        );
        assert_eq!(
            chosen(&list, json!({"status": "closed", "priority": 1})),
            Some("fallback".into())
        );
    }

    #[test]
    fn every_operation_and_both_joins() {
        let cases = [
            (
                rule("title", "contains", &["print"], "or"),
                json!({"title": "Printer jam"}),
                true,
            ),
            (
                rule("heading", "startsWith", &["printer"], "or"),
                json!({"title": "Printer jam"}),
                true,
            ),
            (
                rule("title", "notContains", &["jam"], "or"),
                json!({"title": "Printer jam"}),
                false,
            ),
            (
                rule("title", "notEquals", &["x", "y"], "and"),
                json!({"title": "z"}),
                true,
            ),
            (
                rule("status", "equals", &["a", "b"], "and"),
                json!({"status": "a"}),
                false,
            ),
            (
                rule("priority", "greaterThan", &["10"], "or"),
                json!({"priority": 11}),
                true,
            ),
            (
                rule("priority", "greaterThan", &["10"], "or"),
                json!({"priority": 9}),
                false,
            ),
            (
                rule("priority", "equals", &["not a number"], "or"),
                json!({"priority": 9}),
                false,
            ),
            (
                rule("tags", "equals", &["red"], "or"),
                json!({"tags": ["blue", "red"]}),
                true,
            ),
            (
                rule("tags", "notEquals", &["red"], "or"),
                json!({"tags": ["blue", "red"]}),
                false,
            ),
            (
                rule("due", "lessThan", &["2025-01-01T00:00:00Z"], "or"),
                json!({"due": "2024-12-31T23:00:00Z"}),
                true,
            ),
            (
                rule("due", "null", &[], "or"),
                json!({"title": "no due date"}),
                true,
            ),
            (
                rule("due", "null", &[], "or"),
                json!({"due": "2024-12-31T23:00:00Z"}),
                false,
            ),
            (rule("status", "equals", &["open"], "or"), json!({}), false),
            (
                rule("status", "notEquals", &["open"], "or"),
                json!({}),
                true,
            ),
        ];
        for (rule, properties, expected) in cases {
            let list = templates(
                json!([{"id": "t", "priority": 1, "layout": {}, "rules": [rule.clone()]}]),
            );
            assert_eq!(
                chosen(&list, properties.clone()).is_some(),
                expected,
                "{rule} on {properties}"
            );
        }
    }

    #[test]
    fn refuses_what_the_spec_refuses() {
        for (list, target) in [
            (
                json!([{"id": "x".repeat(17), "priority": 1, "layout": {}}]),
                "[0].id",
            ),
            (
                json!([{"id": "a-b", "priority": 1, "layout": {}}]),
                "[0].id",
            ),
            (
                json!([{"id": "a", "priority": 0, "layout": {}}]),
                "[0].priority",
            ),
            (json!([{"id": "a", "priority": 1}]), "[0].layout"),
            (
                json!([{"id": "a", "priority": 1, "layout": {}}, {"id": "A", "priority": 2, "layout": {}}]),
                "[1].id",
            ),
            (
                json!([{"id": "a", "priority": 1, "layout": {}}, {"id": "b", "priority": 2, "layout": {}}, {"id": "c", "priority": 3, "layout": {}}]),
                "searchResultTemplates",
            ),
            (
                json!([{"id": "a", "priority": 1, "layout": {}, "rules": [rule("p", "near", &["x"], "or")]}]),
                "[0].rules[0].operation",
            ),
            (
                json!([{"id": "a", "priority": 1, "layout": {}, "rules": [rule("p", "equals", &[], "or")]}]),
                "[0].rules[0].values",
            ),
            (
                json!([{"id": "a", "priority": 1, "layout": {}, "rules": [rule("p", "equals", &["x"], "xor")]}]),
                "[0].rules[0].valuesJoinedBy",
            ),
        ] {
            let violation = parse_display_templates(
                &json!({ "searchResultTemplates": list }),
                "searchSettings",
                "searchResultTemplates",
            )
            .unwrap_err();
            assert!(
                violation.target.ends_with(target),
                "{} vs {target}",
                violation.target
            );
        }
    }

    #[test]
    fn rules_must_name_schema_properties() {
        let list = templates(
            json!([{"id": "a", "priority": 1, "layout": {}, "rules": [rule("heading", "equals", &["x"], "or"), rule("nope", "equals", &["x"], "or")]}]),
        );
        let violation =
            check_rule_properties(&list, &schema(), "searchSettings.searchResultTemplates")
                .unwrap_err();
        assert_eq!(
            violation.target,
            "searchSettings.searchResultTemplates[0].rules[1].property"
        );
        assert!(violation.message.contains("'nope'"));
    }

    #[test]
    fn explain_lists_templates_up_to_the_chosen_one() {
        let list = templates(json!([
            {"id": "urgent", "priority": 1, "layout": {}, "rules": [rule("status", "equals", &["open"], "or")]},
            {"id": "rest", "priority": 2, "layout": {}}
        ]));
        let outcomes = explain(
            &list,
            &schema(),
            json!({"status": "closed"}).as_object().unwrap(),
        );
        assert_eq!(outcomes.len(), 2);
        assert!(!outcomes[0].chosen && outcomes[1].chosen);
        assert_eq!(outcomes[0].rules[0].actual, Some(json!("closed")));
    }
}
