//! External items: property values checked against the schema, content, activities
//! (spec/items.md). Property bags are kept as the JSON the client sent (with its annotations),
//! so they read back unchanged; this module decides whether each value fits its declared type.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use super::acl::AclEntry;
use super::ids::ItemId;
use super::schema::{PropertyType, Schema};
use super::Violation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    Text,
    Html,
}

impl ContentType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Text => "text",
            ContentType::Html => "html",
        }
    }

    pub fn parse(raw: &str) -> Option<ContentType> {
        [ContentType::Text, ContentType::Html]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(raw))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemContent {
    pub content_type: ContentType,
    pub value: String,
}

impl ItemContent {
    /// The text the index sees: HTML tags removed and entities decoded.
    pub fn searchable_text(&self) -> std::borrow::Cow<'_, str> {
        match self.content_type {
            ContentType::Text => std::borrow::Cow::Borrowed(&self.value),
            ContentType::Html => std::borrow::Cow::Owned(strip_html(&self.value)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExternalItem {
    pub id: ItemId,
    pub acl: Vec<AclEntry>,
    /// The `properties` object as sent, instance annotations included.
    pub properties: Map<String, Value>,
    pub content: Option<ItemContent>,
    /// `informationProtectionLabel.sensitivityLabelId`, when the item carries a sensitivity label.
    pub sensitivity_label_id: Option<String>,
}

/// Why a property bag does not fit the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyProblem {
    /// A name the schema does not declare.
    NotInSchema(Violation),
    /// A value (or annotation) that does not fit the declared type.
    DoesNotMatch(Violation),
    /// No property at all.
    Empty(Violation),
}

/// Checks a `properties` object against the schema: at least one property, every name declared
/// (names match without regard to case), every value of the declared type, and `@odata.type`
/// annotations, when present, naming that type.
pub fn check_properties(
    schema: &Schema,
    properties: &Map<String, Value>,
) -> Result<(), PropertyProblem> {
    let mut n_properties = 0;
    for (key, value) in properties {
        if let Some((name, annotation)) = key.split_once('@') {
            let Some(property) = schema.property(name) else {
                return Err(not_in_schema(name));
            };
            if annotation.eq_ignore_ascii_case("odata.type") {
                let declared = value.as_str().unwrap_or_default();
                if !annotation_fits(property.property_type, declared) {
                    return Err(PropertyProblem::DoesNotMatch(Violation::new(
                        format!("properties.{key}"),
                        format!(
                            "Property {name} in payload has a value that does not match schema. The annotation '{declared}' does not fit its type {}{}",
                            property.property_type.as_str(),
                            expected_annotation(property.property_type).map(|a| format!(" (use '{a}')")).unwrap_or_default()
                        ),
                    )));
                }
            }
            continue;
        }
        n_properties += 1;
        let Some(property) = schema.property(key) else {
            return Err(not_in_schema(key));
        };
        if let Err(problem) = value_fits(property.property_type, value) {
            return Err(PropertyProblem::DoesNotMatch(Violation::new(
                format!("properties.{key}"),
                format!(
                    "Property {key} in payload has a value that does not match schema. It is declared {} but {problem}",
                    property.property_type.as_str()
                ),
            )));
        }
    }
    if n_properties == 0 {
        return Err(PropertyProblem::Empty(Violation::new(
            "properties",
            "an item needs at least one property",
        )));
    }
    Ok(())
}

fn not_in_schema(name: &str) -> PropertyProblem {
    PropertyProblem::NotInSchema(Violation::new(
        format!("properties.{name}"),
        format!("property '{name}' is not defined in the connection's schema"),
    ))
}

/// The annotation a client should send for a type, where one is needed or allowed.
pub fn expected_annotation(property_type: PropertyType) -> Option<&'static str> {
    match property_type {
        PropertyType::String => Some("String"),
        PropertyType::Int64 => Some("Int64"),
        PropertyType::Double => Some("Double"),
        PropertyType::DateTime => Some("DateTimeOffset"),
        PropertyType::Boolean => Some("Boolean"),
        PropertyType::StringCollection => Some("Collection(String)"),
        PropertyType::Int64Collection => Some("Collection(Int64)"),
        PropertyType::DoubleCollection => Some("Collection(Double)"),
        PropertyType::DateTimeCollection => Some("Collection(DateTimeOffset)"),
        PropertyType::Principal => Some("microsoft.graph.externalConnectors.principal"),
        PropertyType::PrincipalCollection => {
            Some("Collection(microsoft.graph.externalConnectors.principal)")
        }
    }
}

/// Whether an `@odata.type` annotation names the property's type. `#` and `Edm.` prefixes and
/// letter case do not matter; dateTime collections must say `DateTimeOffset` (spec/items.md).
pub fn annotation_fits(property_type: PropertyType, annotation: &str) -> bool {
    let normalized = annotation
        .trim_start_matches('#')
        .to_ascii_lowercase()
        .replace("edm.", "");
    let accepted: &[&str] = match property_type {
        PropertyType::String => &["string"],
        PropertyType::Int64 => &["int64"],
        PropertyType::Double => &["double"],
        PropertyType::DateTime => &["datetimeoffset", "datetime"],
        PropertyType::Boolean => &["boolean"],
        PropertyType::StringCollection => &["collection(string)"],
        PropertyType::Int64Collection => &["collection(int64)"],
        PropertyType::DoubleCollection => &["collection(double)"],
        PropertyType::DateTimeCollection => &["collection(datetimeoffset)"],
        PropertyType::Principal => &["microsoft.graph.externalconnectors.principal"],
        PropertyType::PrincipalCollection => {
            &["collection(microsoft.graph.externalconnectors.principal)"]
        }
    };
    accepted.contains(&normalized.as_str())
}

const PRINCIPAL_MEMBERS: &[&str] = &[
    "externalName",
    "externalId",
    "entraDisplayName",
    "entraId",
    "email",
    "upn",
    "tenantId",
];

/// Whether a JSON value fits a property type; the error says what was sent instead.
pub fn value_fits(property_type: PropertyType, value: &Value) -> Result<(), String> {
    if value.is_null() {
        return Ok(());
    }
    if property_type.is_collection() {
        let elements = match (property_type, value) {
            (PropertyType::PrincipalCollection, Value::Object(object)) => {
                match object.get("principals") {
                    Some(Value::Array(principals)) if object.len() == 1 => principals,
                    _ => {
                        return Err(
                            "a principalCollection object holds only a 'principals' list".into(),
                        )
                    }
                }
            }
            (_, Value::Array(elements)) => elements,
            (_, other) => return Err(format!("{} was sent instead of a list", kind(other))),
        };
        for (index, element) in elements.iter().enumerate() {
            if element.is_null() {
                return Err(format!("element {index} is null"));
            }
            value_fits(property_type.element(), element)
                .map_err(|problem| format!("element {index}: {problem}"))?;
        }
        return Ok(());
    }
    match (property_type, value) {
        (PropertyType::String, Value::String(_)) => Ok(()),
        (PropertyType::Int64, Value::Number(number)) => {
            if number.as_i64().is_some() {
                Ok(())
            } else if number.as_u64().is_some() {
                Err(format!("{number} is outside the int64 range"))
            } else {
                Err(format!("{number} is not a whole number"))
            }
        }
        (PropertyType::Double, Value::Number(_)) => Ok(()),
        (PropertyType::Boolean, Value::Bool(_)) => Ok(()),
        (PropertyType::DateTime, Value::String(text)) => {
            parse_date_time(text).map(|_| ()).ok_or_else(|| {
                format!("'{text}' is not an ISO 8601 date and time (example: 2024-05-01T10:00:00Z)")
            })
        }
        (PropertyType::Principal, Value::Object(object)) => {
            for (member, member_value) in object {
                if member.starts_with('@') {
                    continue;
                }
                if !PRINCIPAL_MEMBERS.contains(&member.as_str()) {
                    return Err(format!(
                        "'{member}' is not a member of principal ({})",
                        PRINCIPAL_MEMBERS.join(", ")
                    ));
                }
                if !(member_value.is_string() || member_value.is_null()) {
                    return Err(format!("principal member '{member}' must be a string"));
                }
            }
            Ok(())
        }
        (_, other) => Err(format!("{} was sent", kind(other))),
    }
}

/// Parses the date-time forms clients send: RFC 3339 with `Z` or an offset, with or without
/// fractional seconds (up to 9 digits), and a local form without offset, read as UTC.
pub fn parse_date_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Some(instant.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|naive| naive.and_utc())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Removes tags (and the content of `script` and `style`) and decodes common entities.
///
/// One pass over the input, linear in its length: tag names and closing tags are matched without
/// regard to ASCII case byte by byte (nothing is lowercased), and every slice boundary sits at an
/// ASCII byte (`<`, `>` or the end of a closing tag), so user text is never cut inside a character.
/// Each tag becomes one space; an unterminated tag, script or style runs to the end of the input.
pub fn strip_html(html: &str) -> String {
    let bytes = html.as_bytes();
    let mut text = String::with_capacity(html.len());
    let mut position = 0;
    while let Some(offset) = find_byte(&bytes[position..], b'<') {
        let open = position + offset;
        push_decoded(&mut text, &html[position..open]);
        let after_tag = if starts_with_ignore_ascii_case(&bytes[open..], b"<script") {
            find_ignore_ascii_case(bytes, open, b"</script>")
        } else if starts_with_ignore_ascii_case(&bytes[open..], b"<style") {
            find_ignore_ascii_case(bytes, open, b"</style>")
        } else {
            find_byte(&bytes[open..], b'>').map(|close| open + close + 1)
        };
        position = after_tag.unwrap_or(bytes.len());
        text.push(' ');
    }
    push_decoded(&mut text, &html[position..]);
    text
}

/// The entities `strip_html` decodes. None contains `&` or `;` inside, so occurrences never overlap
/// and one left-to-right pass decodes exactly what successive replacements would.
const ENTITIES: &[(&str, char)] = &[
    ("&nbsp;", ' '),
    ("&lt;", '<'),
    ("&gt;", '>'),
    ("&quot;", '"'),
    ("&#39;", '\''),
    ("&amp;", '&'),
];

/// Appends `piece` with its entities decoded (an `&amp;` yields `&` and is not decoded again).
fn push_decoded(text: &mut String, piece: &str) {
    let mut rest = piece;
    while let Some(ampersand) = rest.find('&') {
        text.push_str(&rest[..ampersand]);
        let candidate = &rest[ampersand..];
        match ENTITIES
            .iter()
            .find(|(entity, _)| candidate.starts_with(entity))
        {
            Some((entity, decoded)) => {
                text.push(*decoded);
                rest = &candidate[entity.len()..];
            }
            None => {
                text.push('&');
                rest = &candidate[1..];
            }
        }
    }
    text.push_str(rest);
}

fn find_byte(haystack: &[u8], needle: u8) -> Option<usize> {
    haystack.iter().position(|&byte| byte == needle)
}

fn starts_with_ignore_ascii_case(haystack: &[u8], prefix: &[u8]) -> bool {
    haystack.len() >= prefix.len() && haystack[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// The offset just past the first `pattern` (which starts with `<`) at or after `from`, ignoring
/// ASCII case. Linear: each `<` is looked at once and compared with at most `pattern.len()` bytes.
fn find_ignore_ascii_case(bytes: &[u8], from: usize, pattern: &[u8]) -> Option<usize> {
    debug_assert_eq!(pattern.first(), Some(&b'<'));
    let mut position = from;
    while let Some(offset) = find_byte(&bytes[position..], b'<') {
        let candidate = position + offset;
        if starts_with_ignore_ascii_case(&bytes[candidate..], pattern) {
            return Some(candidate + pattern.len());
        }
        position = candidate + 1;
    }
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityType {
    Viewed,
    Modified,
    Created,
    Commented,
}

impl ActivityType {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityType::Viewed => "viewed",
            ActivityType::Modified => "modified",
            ActivityType::Created => "created",
            ActivityType::Commented => "commented",
        }
    }

    pub fn parse(raw: &str) -> Option<ActivityType> {
        [
            ActivityType::Viewed,
            ActivityType::Modified,
            ActivityType::Created,
            ActivityType::Commented,
        ]
        .into_iter()
        .find(|t| t.as_str().eq_ignore_ascii_case(raw))
    }
}

/// `identityType` of an activity's `performedBy` and of external group members.
pub const IDENTITY_TYPES: &[&str] = &["user", "group", "externalGroup"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalActivity {
    pub activity_type: ActivityType,
    /// As sent (an ISO 8601 instant that parsed).
    pub start_date_time: String,
    pub performed_by_id: String,
    pub performed_by_type: &'static str,
}

/// Activities per addActivities call (spec/limits.md).
pub const MAX_ACTIVITIES_PER_CALL: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schema::Property;
    use proptest::prelude::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema {
            properties: vec![
                Property::new("title", PropertyType::String),
                Property::new("priority", PropertyType::Int64),
                Property::new("score", PropertyType::Double),
                Property::new("created", PropertyType::DateTime),
                Property::new("done", PropertyType::Boolean),
                Property::new("tags", PropertyType::StringCollection),
                Property::new("dates", PropertyType::DateTimeCollection),
                Property::new("owner", PropertyType::Principal),
                Property::new("watchers", PropertyType::PrincipalCollection),
            ],
        }
    }

    fn check(properties: Value) -> Result<(), PropertyProblem> {
        check_properties(&schema(), properties.as_object().unwrap())
    }

    #[test]
    fn typed_values_annotations_and_principals_are_accepted() {
        assert_eq!(
            check(json!({
                "title": "Printer jam", "Title@odata.type": "String", "priority": 2, "score": 0.5,
                "created": "2024-05-01T10:00:00.1234567+02:00", "done": false,
                "tags@odata.type": "Collection(String)", "tags": ["hw", "floor3"],
                "dates@odata.type": "#Collection(DateTimeOffset)", "dates": ["2024-05-01T10:00:00Z", "2024-05-01T10:00:00"],
                "owner": {"upn": "adele@contoso.com", "entraId": "1"},
                "watchers": {"principals": [{"email": "a@b.c"}]}
            })),
            Ok(())
        );
        assert_eq!(
            check(json!({"watchers": [{"email": "a@b.c"}], "score": 3})),
            Ok(()),
            "integers are doubles too"
        );
    }

    #[test]
    fn at_least_one_property_is_needed() {
        assert!(matches!(check(json!({})), Err(PropertyProblem::Empty(_))));
        assert!(matches!(
            check(json!({"tags@odata.type": "Collection(String)"})),
            Err(PropertyProblem::Empty(_))
        ));
    }

    #[test]
    fn names_outside_the_schema_are_refused() {
        let Err(PropertyProblem::NotInSchema(violation)) =
            check(json!({"title": "x", "projectName": "y"}))
        else {
            panic!("expected NotInSchema");
        };
        assert!(violation.message.contains("'projectName'"));
    }

    #[test]
    fn values_of_the_wrong_type_are_refused_naming_the_property() {
        for (properties, name) in [
            (json!({"title": 5}), "title"),
            (json!({"priority": "2"}), "priority"),
            (json!({"priority": 2.5}), "priority"),
            (json!({"priority": 9223372036854775808u64}), "priority"),
            (json!({"done": "false"}), "done"),
            (json!({"created": "yesterday"}), "created"),
            (json!({"created": "2024-13-01T00:00:00Z"}), "created"),
            (json!({"tags": "hw"}), "tags"),
            (json!({"tags": ["hw", 3]}), "tags"),
            (json!({"owner": {"nickname": "x"}}), "owner"),
            (
                json!({"dates@odata.type": "Collection(DateTime)", "dates": []}),
                "dates",
            ),
            (
                json!({"tags@odata.type": "Collection(Int64)", "tags": []}),
                "tags",
            ),
        ] {
            let Err(PropertyProblem::DoesNotMatch(violation)) = check(properties.clone()) else {
                panic!("{properties} should not match");
            };
            assert!(
                violation.message.starts_with(&format!(
                    "Property {name} in payload has a value that does not match schema."
                )),
                "{}",
                violation.message
            );
        }
    }

    #[test]
    fn int64_bounds_are_exact() {
        assert_eq!(check(json!({"priority": i64::MAX})), Ok(()));
        assert_eq!(check(json!({"priority": i64::MIN})), Ok(()));
    }

    /// The former implementation, kept as the reference: obviously right, quadratic on many tags.
    fn reference_strip_html(html: &str) -> String {
        let mut text = String::new();
        let mut rest = html;
        while let Some(open) = rest.find('<') {
            text.push_str(&rest[..open]);
            let after = &rest[open..];
            let lowered = after.to_ascii_lowercase();
            let skip_until = if lowered.starts_with("<script") {
                Some("</script>")
            } else if lowered.starts_with("<style") {
                Some("</style>")
            } else {
                None
            };
            rest = match skip_until {
                Some(end) => match lowered.find(end) {
                    Some(position) => &after[position + end.len()..],
                    None => "",
                },
                None => match after.find('>') {
                    Some(close) => &after[close + 1..],
                    None => "",
                },
            };
            text.push(' ');
        }
        text.push_str(rest);
        text.replace("&nbsp;", " ")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    }

    #[test]
    fn stripping_megabytes_of_script_and_style_tags_is_linear() {
        // A few MB under the item size cap: quadratic stripping would take hours here.
        let mut html = String::new();
        while html.len() < 4 * 1024 * 1024 {
            html.push_str(
                "<script></script><STYLE>p{}</Style>é<ScRiPt src=x>var a = '<b>';</SCRIPT>",
            );
        }
        let expected_accents = html.matches('é').count();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || sender.send(strip_html(&html)));
        let text = receiver
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("stripping a few MB answers well within 30 s");
        assert!(
            text.chars().all(|c| c == ' ' || c == 'é'),
            "only separators and the text between tags remain"
        );
        assert_eq!(text.matches('é').count(), expected_accents);
    }

    #[test]
    fn unterminated_tags_run_to_the_end_and_non_ascii_text_survives() {
        assert_eq!(strip_html("naïve <b"), "naïve  ");
        assert_eq!(strip_html("日本<script>語"), "日本 ");
        assert_eq!(strip_html("ü<style>ü</styl"), "ü ");
        assert_eq!(strip_html("<scrip>ö</scrip>"), " ö ");
        assert_eq!(
            strip_html("a<SCRIPT>x</sCrIpT>b&amp;lt;&nbsp;c€&#39;"),
            "a b&lt; c€'"
        );
        assert_eq!(strip_html("<"), " ");
        assert_eq!(strip_html("&"), "&");
        assert_eq!(strip_html("é&am"), "é&am");
    }

    proptest! {
        #[test]
        fn stripping_matches_the_reference_and_never_panics(
            pieces in proptest::collection::vec(
                prop_oneof![
                    "[a-zé日 ;#&/<>]{0,6}",
                    proptest::sample::select(vec![
                        "<script>", "</script>", "<SCRIPT ", "</Script>", "<style>", "</STYLE>",
                        "<scrip", "</script", "<b>", "&amp;", "&lt;", "&gt;", "&quot;", "&#39;",
                        "&nbsp;", "&am", "<", ">", "é", "ß",
                    ]).prop_map(String::from),
                    any::<String>(),
                ],
                0..12,
            )
        ) {
            let html = pieces.concat();
            prop_assert_eq!(strip_html(&html), reference_strip_html(&html));
        }
    }

    #[test]
    fn html_is_stripped_for_the_index() {
        let content = ItemContent {
            content_type: ContentType::Html,
            value: "<p>Printer <b>jam</b> &amp; toner</p><script>var x = '<b>';</script><style>p{}</style>".into(),
        };
        let text = content.searchable_text();
        assert!(
            text.contains("Printer") && text.contains("jam") && text.contains("& toner"),
            "{text}"
        );
        assert!(
            !text.contains("var x") && !text.contains('<') && !text.contains("p{}"),
            "{text}"
        );
    }
}
