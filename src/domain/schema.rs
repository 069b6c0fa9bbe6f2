//! The connection schema and every rule the service applies to it (spec/schema.md).
//!
//! `Schema::validate` checks a submitted schema on its own; `Schema::validate_update` checks the
//! change from the registered schema. Each violation names the offending property.
//! Rules are split into `RuleClass::Syntax` (always refused at once) and `RuleClass::Semantic`
//! (refused at once by default, or reported through a `failed` operation when configured).
//!
//! Both checks take time linear in the size of the schemas: the count limits are checked first
//! (a schema over one of them gets only those violations), and duplicates are found with hash
//! sets, so a hostile request cannot make validation slow.

use std::collections::HashMap;

use super::Violation;

pub const BASE_TYPE: &str = "microsoft.graph.externalItem";
/// Properties per schema (spec/schema.md, spec/limits.md).
pub const MAX_PROPERTIES: usize = 128;
/// Characters of a property name or alias (spec/schema.md).
pub const MAX_NAME_CHARS: usize = 32;
/// Characters of a property description (spec/schema.md, beta doc).
pub const MAX_DESCRIPTION_CHARS: usize = 200;
/// Aliases per property. The spec states no limit; this one is gcemu's choice, generous for any
/// real connector (each alias is a name of up to 32 characters) and a bound on validation work.
pub const MAX_ALIASES: usize = 32;
/// Labels per property: there are only this many labels, and a label may be used once.
pub const MAX_LABELS: usize = LABELS.len();
/// How many characters of a refused name a message quotes.
const QUOTED_NAME_CHARS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PropertyType {
    String,
    Int64,
    Double,
    DateTime,
    Boolean,
    StringCollection,
    Int64Collection,
    DoubleCollection,
    DateTimeCollection,
    Principal,
    PrincipalCollection,
}

impl PropertyType {
    pub const ALL: [PropertyType; 11] = [
        PropertyType::String,
        PropertyType::Int64,
        PropertyType::Double,
        PropertyType::DateTime,
        PropertyType::Boolean,
        PropertyType::StringCollection,
        PropertyType::Int64Collection,
        PropertyType::DoubleCollection,
        PropertyType::DateTimeCollection,
        PropertyType::Principal,
        PropertyType::PrincipalCollection,
    ];

    /// Graph's camelCase member name.
    pub fn as_str(self) -> &'static str {
        match self {
            PropertyType::String => "string",
            PropertyType::Int64 => "int64",
            PropertyType::Double => "double",
            PropertyType::DateTime => "dateTime",
            PropertyType::Boolean => "boolean",
            PropertyType::StringCollection => "stringCollection",
            PropertyType::Int64Collection => "int64Collection",
            PropertyType::DoubleCollection => "doubleCollection",
            PropertyType::DateTimeCollection => "dateTimeCollection",
            PropertyType::Principal => "principal",
            PropertyType::PrincipalCollection => "principalCollection",
        }
    }

    /// Parses a member name in any letter case (`String`, `DateTime`, `int64collection`).
    pub fn parse(raw: &str) -> Option<PropertyType> {
        PropertyType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(raw))
    }

    /// Members declared after `unknownFutureValue` in the CSDL (answered as `unknownFutureValue`
    /// unless the client sends `Prefer: include-unknown-enum-members`).
    pub fn is_evolvable(self) -> bool {
        matches!(
            self,
            PropertyType::Principal | PropertyType::PrincipalCollection
        )
    }

    pub fn is_collection(self) -> bool {
        matches!(
            self,
            PropertyType::StringCollection
                | PropertyType::Int64Collection
                | PropertyType::DoubleCollection
                | PropertyType::DateTimeCollection
                | PropertyType::PrincipalCollection
        )
    }

    pub fn is_string(self) -> bool {
        matches!(self, PropertyType::String | PropertyType::StringCollection)
    }

    /// The element type of a collection (the type itself for single values).
    pub fn element(self) -> PropertyType {
        match self {
            PropertyType::StringCollection => PropertyType::String,
            PropertyType::Int64Collection => PropertyType::Int64,
            PropertyType::DoubleCollection => PropertyType::Double,
            PropertyType::DateTimeCollection => PropertyType::DateTime,
            PropertyType::PrincipalCollection => PropertyType::Principal,
            single => single,
        }
    }
}

/// `label` members in CSDL order. The first nine precede `unknownFutureValue`; the rest are evolvable.
pub const LABELS: &[&str] = &[
    "title",
    "url",
    "createdBy",
    "lastModifiedBy",
    "authors",
    "createdDateTime",
    "lastModifiedDateTime",
    "fileName",
    "fileExtension",
    "containerName",
    "containerUrl",
    "iconUrl",
    "assignedToPeople",
    "closedBy",
    "closedDate",
    "priority",
    "sprintName",
    "tags",
    "severity",
    "state",
    "dueDate",
    "itemParentId",
    "itemPath",
    "itemType",
    "numberOfReactions",
    "parentUrl",
    "priorityNormalized",
    "reportedBy",
    "secondaryId",
    "personEmails",
    "personAddresses",
    "personAnniversaries",
    "personName",
    "personNote",
    "personPhones",
    "personCurrentPosition",
    "personWebAccounts",
    "personWebSite",
    "personSkills",
    "personProjects",
    "personAccount",
    "personAwards",
    "personCertifications",
    "personAssistants",
    "personColleagues",
    "personManager",
    "personAlternateContacts",
    "personEmergencyContacts",
    "personEducationalActivities",
    "personInterests",
    "personLanguages",
    "personPublications",
    "personPatents",
    "personWorkPositions",
];

/// Labels declared before `unknownFutureValue`.
const N_CLASSIC_LABELS: usize = 9;

pub fn parse_label(raw: &str) -> Option<&'static str> {
    LABELS
        .iter()
        .copied()
        .find(|label| label.eq_ignore_ascii_case(raw))
}

pub fn label_is_evolvable(label: &str) -> bool {
    LABELS
        .iter()
        .position(|l| *l == label)
        .is_some_and(|index| index >= N_CLASSIC_LABELS)
}

/// The property type a label requires, where the docs and samples settle it; `None` leaves it open.
pub fn label_required_type(label: &str) -> Option<PropertyType> {
    match label {
        "title" | "url" | "createdBy" | "lastModifiedBy" | "fileName" | "fileExtension"
        | "iconUrl" | "containerName" | "containerUrl" => Some(PropertyType::String),
        "createdDateTime" | "lastModifiedDateTime" => Some(PropertyType::DateTime),
        "authors" => Some(PropertyType::StringCollection),
        _ => None,
    }
}

/// `rankingHint.importanceScore` members (beta).
pub const IMPORTANCE_SCORES: &[&str] = &["low", "medium", "high", "veryHigh"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    pub name: String,
    pub property_type: PropertyType,
    pub is_searchable: bool,
    pub is_queryable: bool,
    pub is_retrievable: bool,
    pub is_refinable: bool,
    pub is_exact_match_required: bool,
    pub aliases: Vec<String>,
    pub labels: Vec<&'static str>,
    pub description: Option<String>,
    pub importance_score: Option<&'static str>,
}

impl Property {
    /// A property with every search attribute off; tests and fixtures build on it.
    pub fn new(name: &str, property_type: PropertyType) -> Property {
        Property {
            name: name.to_string(),
            property_type,
            is_searchable: false,
            is_queryable: false,
            is_retrievable: false,
            is_refinable: false,
            is_exact_match_required: false,
            aliases: Vec::new(),
            labels: Vec::new(),
            description: None,
            importance_score: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    pub properties: Vec<Property>,
}

/// Whether a rule is about the shape of the request or about the meaning of the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleClass {
    /// Property, alias and label counts, names, aliases' characters, types, searchable-on-non-string,
    /// description length.
    Syntax,
    /// Searchable with refinable, exact match, labels, name and alias collisions, update rules.
    Semantic,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    pub class: RuleClass,
    pub violation: Violation,
}

fn syntax(target: String, message: String) -> SchemaViolation {
    SchemaViolation {
        class: RuleClass::Syntax,
        violation: Violation::new(target, message),
    }
}

fn semantic(target: String, message: String) -> SchemaViolation {
    SchemaViolation {
        class: RuleClass::Semantic,
        violation: Violation::new(target, message),
    }
}

/// A name for a message: whole, or its first characters when it is far over the length limit.
fn quoted(name: &str) -> String {
    let mut shown: String = name.chars().take(QUOTED_NAME_CHARS).collect();
    if shown.len() < name.len() {
        shown.push('…');
    }
    shown
}

/// Checks the name and alias rule: 1 to 32 ASCII letters and digits.
pub fn check_name(name: &str) -> Result<(), String> {
    let n_chars = name.chars().count();
    if n_chars == 0 || n_chars > MAX_NAME_CHARS {
        return Err(format!(
            "must be 1 to {MAX_NAME_CHARS} characters long, it has {n_chars}"
        ));
    }
    if let Some(bad) = name.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(format!("may contain only letters and digits, not {bad:?}"));
    }
    Ok(())
}

impl Schema {
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// Finds a property by its name or one of its aliases, ignoring letter case.
    pub fn property_by_name_or_alias(&self, name: &str) -> Option<&Property> {
        self.property(name).or_else(|| {
            self.properties.iter().find(|p| {
                p.aliases
                    .iter()
                    .any(|alias| alias.eq_ignore_ascii_case(name))
            })
        })
    }

    /// Returns every violation of the rules for a schema on its own, syntax ones first.
    /// A schema over a count limit gets only the count violations.
    pub fn validate(&self) -> Vec<SchemaViolation> {
        let over_limits = self.count_violations();
        if !over_limits.is_empty() {
            return over_limits;
        }
        let mut violations = Vec::new();
        if self.properties.is_empty() {
            violations.push(syntax(
                "properties".into(),
                format!("a schema has 1 to {MAX_PROPERTIES} properties, this one has 0"),
            ));
        }
        for (index, property) in self.properties.iter().enumerate() {
            let target = format!("properties[{index}]");
            let name = &quoted(&property.name);
            if let Err(problem) = check_name(&property.name) {
                violations.push(syntax(
                    format!("{target}.name"),
                    format!("property name '{name}' {problem}"),
                ));
            }
            for alias in &property.aliases {
                if let Err(problem) = check_name(alias) {
                    violations.push(syntax(
                        format!("{target}.aliases"),
                        format!("alias '{}' of property '{name}' {problem}", quoted(alias)),
                    ));
                }
            }
            if property.is_searchable && !property.property_type.is_string() {
                violations.push(syntax(
                    format!("{target}.isSearchable"),
                    format!(
                        "property '{name}' is of type {} and cannot be searchable: only string and stringCollection properties can",
                        property.property_type.as_str()
                    ),
                ));
            }
            if let Some(description) = &property.description {
                let n_chars = description.chars().count();
                if n_chars > MAX_DESCRIPTION_CHARS {
                    violations.push(syntax(
                        format!("{target}.description"),
                        format!("the description of property '{name}' must be at most {MAX_DESCRIPTION_CHARS} characters, it has {n_chars}"),
                    ));
                }
            }
            if property.is_searchable && property.is_refinable {
                violations.push(semantic(
                    format!("{target}.isRefinable"),
                    format!("property '{name}' cannot be both searchable and refinable"),
                ));
            }
            if property.is_refinable && property.property_type.element() == PropertyType::Principal
            {
                violations.push(semantic(
                    format!("{target}.isRefinable"),
                    format!(
                        "property '{name}' is of type {} and cannot be refinable",
                        property.property_type.as_str()
                    ),
                ));
            }
            if property.is_exact_match_required
                && (!property.property_type.is_string() || property.is_searchable)
            {
                violations.push(semantic(
                    format!("{target}.isExactMatchRequired"),
                    format!("property '{name}' can require exact matches only if it is a string or stringCollection that is not searchable"),
                ));
            }
            if !property.labels.is_empty() && !property.is_retrievable {
                violations.push(semantic(
                    format!("{target}.isRetrievable"),
                    format!("property '{name}' has labels and must therefore be retrievable"),
                ));
            }
            for label in &property.labels {
                if let Some(required) = label_required_type(label) {
                    if required != property.property_type {
                        violations.push(semantic(
                            format!("{target}.labels"),
                            format!(
                                "property '{name}' is of type {} but the label '{label}' needs a {} property",
                                property.property_type.as_str(),
                                required.as_str()
                            ),
                        ));
                    }
                }
            }
        }
        violations.extend(self.collisions());
        violations.sort_by_key(|v| v.class == RuleClass::Semantic);
        violations
    }

    /// The count limits: properties per schema, aliases and labels per property. Checked before
    /// anything else, so the work the other rules do is bounded.
    fn count_violations(&self) -> Vec<SchemaViolation> {
        let n_properties = self.properties.len();
        if n_properties > MAX_PROPERTIES {
            return vec![syntax(
                "properties".into(),
                format!(
                    "a schema has 1 to {MAX_PROPERTIES} properties, this one has {n_properties}"
                ),
            )];
        }
        let mut violations = Vec::new();
        for (index, property) in self.properties.iter().enumerate() {
            let name = quoted(&property.name);
            let n_aliases = property.aliases.len();
            if n_aliases > MAX_ALIASES {
                violations.push(syntax(
                    format!("properties[{index}].aliases"),
                    format!("property '{name}' has {n_aliases} aliases; a property may have at most {MAX_ALIASES}"),
                ));
            }
            let n_labels = property.labels.len();
            if n_labels > MAX_LABELS {
                violations.push(syntax(
                    format!("properties[{index}].labels"),
                    format!("property '{name}' has {n_labels} labels; a property may have at most {MAX_LABELS}, each label once"),
                ));
            }
        }
        violations
    }

    /// Names and aliases share one namespace (case-insensitive); a label belongs to one property.
    /// One hash lookup per name, alias and label.
    fn collisions(&self) -> Vec<SchemaViolation> {
        let mut violations = Vec::new();
        let mut names: HashMap<String, &str> = HashMap::new();
        let mut labels: HashMap<&str, &str> = HashMap::new();
        for (index, property) in self.properties.iter().enumerate() {
            let candidates = std::iter::once((&property.name, "name"))
                .chain(property.aliases.iter().map(|a| (a, "alias")));
            for (candidate, what) in candidates {
                match names.entry(candidate.to_ascii_lowercase()) {
                    std::collections::hash_map::Entry::Occupied(taken) => {
                        violations.push(semantic(
                            format!(
                                "properties[{index}].{}",
                                if what == "name" { "name" } else { "aliases" }
                            ),
                            format!(
                                "the {what} '{}' of property '{}' is already used by property '{}'",
                                quoted(candidate),
                                quoted(&property.name),
                                quoted(taken.get())
                            ),
                        ));
                    }
                    std::collections::hash_map::Entry::Vacant(free) => {
                        free.insert(&property.name);
                    }
                }
            }
            for label in &property.labels {
                match labels.entry(label) {
                    std::collections::hash_map::Entry::Occupied(taken) => {
                        violations.push(semantic(
                            format!("properties[{index}].labels"),
                            format!(
                                "the label '{label}' of property '{}' is already on property '{}'",
                                quoted(&property.name),
                                quoted(taken.get())
                            ),
                        ));
                    }
                    std::collections::hash_map::Entry::Vacant(free) => {
                        free.insert(&property.name);
                    }
                }
            }
        }
        violations
    }

    /// Returns the violations of the update rules when `self` (registered) becomes `next`.
    /// Properties are matched by name (any case) through one hash map of `next`'s names, the
    /// first property of a name winning.
    pub fn validate_update(&self, next: &Schema) -> Vec<SchemaViolation> {
        let mut by_name: HashMap<String, (usize, &Property)> = HashMap::new();
        for (index, property) in next.properties.iter().enumerate() {
            by_name
                .entry(property.name.to_ascii_lowercase())
                .or_insert((index, property));
        }
        let mut violations = Vec::new();
        for existing in &self.properties {
            let Some(&(index, updated)) = by_name.get(&existing.name.to_ascii_lowercase()) else {
                violations.push(semantic(
                    "properties".into(),
                    format!(
                        "property '{}' cannot be removed or renamed once registered",
                        existing.name
                    ),
                ));
                continue;
            };
            let target = format!("properties[{index}]");
            if updated.property_type != existing.property_type {
                violations.push(semantic(
                    format!("{target}.type"),
                    format!(
                        "the type of property '{}' cannot change from {} to {}",
                        existing.name,
                        existing.property_type.as_str(),
                        updated.property_type.as_str()
                    ),
                ));
            }
            if updated.is_refinable && !existing.is_refinable {
                violations.push(semantic(
                    format!("{target}.isRefinable"),
                    format!(
                        "existing property '{}' cannot be made refinable",
                        existing.name
                    ),
                ));
            }
            if updated.is_exact_match_required != existing.is_exact_match_required {
                violations.push(semantic(
                    format!("{target}.isExactMatchRequired"),
                    format!(
                        "isExactMatchRequired of existing property '{}' cannot change",
                        existing.name
                    ),
                ));
            }
        }
        violations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(properties: Vec<Property>) -> Schema {
        Schema { properties }
    }

    fn title() -> Property {
        let mut property = Property::new("title", PropertyType::String);
        property.is_searchable = true;
        property.is_retrievable = true;
        property.labels = vec!["title"];
        property
    }

    fn messages(violations: &[SchemaViolation]) -> Vec<String> {
        violations
            .iter()
            .map(|v| v.violation.message.clone())
            .collect()
    }

    fn single_violation(schema: &Schema) -> SchemaViolation {
        let violations = schema.validate();
        assert_eq!(violations.len(), 1, "{:?}", messages(&violations));
        violations.into_iter().next().unwrap()
    }

    #[test]
    fn a_typical_schema_is_valid() {
        let mut status = Property::new("status", PropertyType::String);
        status.is_queryable = true;
        status.is_refinable = true;
        status.is_retrievable = true;
        let mut modified = Property::new("lastEdited", PropertyType::DateTime);
        modified.is_retrievable = true;
        modified.is_refinable = true;
        modified.labels = vec!["lastModifiedDateTime"];
        let mut tags = Property::new("tags", PropertyType::StringCollection);
        tags.is_searchable = true;
        tags.aliases = vec!["keywords".into()];
        assert_eq!(
            schema(vec![title(), status, modified, tags]).validate(),
            vec![]
        );
    }

    #[test]
    fn property_count_is_1_to_128() {
        assert_eq!(
            single_violation(&schema(vec![])).violation.target,
            "properties"
        );
        let many: Vec<Property> = (0..129)
            .map(|i| Property::new(&format!("p{i}"), PropertyType::Int64))
            .collect();
        assert!(single_violation(&schema(many))
            .violation
            .message
            .contains("129"));
        let max: Vec<Property> = (0..128)
            .map(|i| Property::new(&format!("p{i}"), PropertyType::Int64))
            .collect();
        assert!(schema(max).validate().is_empty());
    }

    #[test]
    fn names_are_1_to_32_letters_and_digits() {
        for bad in [
            "",
            "has space",
            "with-dash",
            "under_score",
            "a:b",
            "x$",
            "naïve",
            &"n".repeat(33),
        ] {
            let violation =
                single_violation(&schema(vec![Property::new(bad, PropertyType::String)]));
            assert_eq!(violation.class, RuleClass::Syntax);
            assert!(
                violation.violation.message.contains(&format!("'{bad}'")),
                "{bad}"
            );
        }
        assert!(
            schema(vec![Property::new(&"n".repeat(32), PropertyType::String)])
                .validate()
                .is_empty()
        );
    }

    #[test]
    fn aliases_follow_the_name_rules_and_do_not_collide() {
        let mut property = Property::new("title", PropertyType::String);
        property.aliases = vec!["bad alias".into()];
        assert!(single_violation(&schema(vec![property]))
            .violation
            .message
            .contains("'bad alias'"));
        let mut first = Property::new("title", PropertyType::String);
        first.aliases = vec!["heading".into()];
        let mut second = Property::new("subject", PropertyType::String);
        second.aliases = vec!["Heading".into()];
        let violation = single_violation(&schema(vec![first.clone(), second]));
        assert!(violation
            .violation
            .message
            .contains("'Heading' of property 'subject'"));
        let clash = Property::new("HEADING", PropertyType::Int64);
        assert!(single_violation(&schema(vec![first, clash]))
            .violation
            .message
            .contains("HEADING"));
    }

    #[test]
    fn duplicate_names_are_refused_in_any_case() {
        let violation = single_violation(&schema(vec![
            Property::new("title", PropertyType::String),
            Property::new("Title", PropertyType::String),
        ]));
        assert!(violation.violation.message.contains("'Title'"));
    }

    #[test]
    fn types_parse_in_any_case_and_unknown_future_value_is_not_a_type() {
        assert_eq!(PropertyType::parse("String"), Some(PropertyType::String));
        assert_eq!(
            PropertyType::parse("DATETIMECOLLECTION"),
            Some(PropertyType::DateTimeCollection)
        );
        assert_eq!(PropertyType::parse("unknownFutureValue"), None);
        assert_eq!(PropertyType::parse("text"), None);
        assert!(PropertyType::Principal.is_evolvable());
    }

    #[test]
    fn only_string_types_are_searchable() {
        for property_type in PropertyType::ALL {
            let mut property = Property::new("p", property_type);
            property.is_searchable = true;
            let violations = schema(vec![property]).validate();
            assert_eq!(
                violations.is_empty(),
                property_type.is_string(),
                "{property_type:?}"
            );
        }
    }

    #[test]
    fn searchable_and_refinable_together_are_refused() {
        let mut property = Property::new("status", PropertyType::String);
        property.is_searchable = true;
        property.is_refinable = true;
        let violation = single_violation(&schema(vec![property]));
        assert_eq!(violation.class, RuleClass::Semantic);
        assert!(violation.violation.message.contains("'status'"));
    }

    #[test]
    fn exact_match_needs_a_non_searchable_string() {
        let mut ticket = Property::new("ticketId", PropertyType::String);
        ticket.is_exact_match_required = true;
        ticket.is_queryable = true;
        assert!(schema(vec![ticket.clone()]).validate().is_empty());
        ticket.is_searchable = true;
        assert!(single_violation(&schema(vec![ticket]))
            .violation
            .target
            .ends_with("isExactMatchRequired"));
        let mut number = Property::new("count", PropertyType::Int64);
        number.is_exact_match_required = true;
        assert!(single_violation(&schema(vec![number]))
            .violation
            .message
            .contains("'count'"));
    }

    #[test]
    fn labelled_properties_must_be_retrievable() {
        let mut property = title();
        property.is_retrievable = false;
        assert!(single_violation(&schema(vec![property]))
            .violation
            .message
            .contains("must therefore be retrievable"));
    }

    #[test]
    fn a_label_belongs_to_one_property_of_the_right_type() {
        let mut other = title();
        other.name = "heading".into();
        let violation = single_violation(&schema(vec![title(), other]));
        assert!(violation
            .violation
            .message
            .contains("'title' of property 'heading'"));
        let mut created = Property::new("created", PropertyType::String);
        created.is_retrievable = true;
        created.labels = vec!["createdDateTime"];
        assert!(single_violation(&schema(vec![created]))
            .violation
            .message
            .contains("needs a dateTime"));
        let mut authors = Property::new("authors", PropertyType::StringCollection);
        authors.is_retrievable = true;
        authors.labels = vec!["authors"];
        assert!(schema(vec![authors]).validate().is_empty());
    }

    #[test]
    fn labels_parse_in_any_case_and_later_ones_are_evolvable() {
        assert_eq!(parse_label("Title"), Some("title"));
        assert_eq!(parse_label("ICONURL"), Some("iconUrl"));
        assert_eq!(parse_label("nonsense"), None);
        assert!(!label_is_evolvable("fileExtension"));
        assert!(label_is_evolvable("iconUrl"));
        assert!(label_is_evolvable("personWorkPositions"));
    }

    #[test]
    fn description_is_at_most_200_characters() {
        let mut property = Property::new("p", PropertyType::String);
        property.description = Some("d".repeat(201));
        assert!(single_violation(&schema(vec![property.clone()]))
            .violation
            .message
            .contains("201"));
        property.description = Some("d".repeat(200));
        assert!(schema(vec![property]).validate().is_empty());
    }

    #[test]
    fn principal_properties_cannot_be_refinable() {
        let mut property = Property::new("owner", PropertyType::Principal);
        property.is_refinable = true;
        assert!(single_violation(&schema(vec![property]))
            .violation
            .message
            .contains("'owner'"));
    }

    #[test]
    fn updates_may_add_properties_attributes_aliases_and_labels() {
        let registered = schema(vec![Property::new("status", PropertyType::String), title()]);
        let mut status = Property::new("status", PropertyType::String);
        status.is_queryable = true;
        status.is_retrievable = true;
        status.aliases = vec!["state".into()];
        status.labels = vec!["containerName"];
        let added = Property::new("priority", PropertyType::Int64);
        let next = schema(vec![status, title(), added]);
        assert!(registered.validate_update(&next).is_empty());
    }

    #[test]
    fn updates_may_not_remove_rename_retype_or_make_refinable() {
        let registered = schema(vec![Property::new("status", PropertyType::String), title()]);
        let removed = schema(vec![title()]);
        assert!(messages(&registered.validate_update(&removed))[0]
            .contains("'status' cannot be removed"));
        let renamed = schema(vec![Property::new("state", PropertyType::String), title()]);
        assert!(messages(&registered.validate_update(&renamed))[0].contains("'status'"));
        let retyped = schema(vec![Property::new("status", PropertyType::Int64), title()]);
        assert!(messages(&registered.validate_update(&retyped))[0].contains("from string to int64"));
        let mut refinable = Property::new("status", PropertyType::String);
        refinable.is_refinable = true;
        let made_refinable = schema(vec![refinable, title()]);
        assert!(messages(&registered.validate_update(&made_refinable))[0]
            .contains("cannot be made refinable"));
    }

    /// Runs `work` on its own thread and waits at most 30 s for it, so a quadratic regression
    /// fails the test instead of hanging it.
    fn within_30_s<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || sender.send(work()));
        receiver
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("validation answers within 30 s")
    }

    #[test]
    fn aliases_are_at_most_32_per_property_and_a_million_are_refused_at_once() {
        let mut property = Property::new("title", PropertyType::String);
        property.aliases = (0..MAX_ALIASES).map(|i| format!("a{i}")).collect();
        assert!(schema(vec![property.clone()]).validate().is_empty());
        property.aliases.push("one more".into());
        let violation = single_violation(&schema(vec![property]));
        assert_eq!(violation.class, RuleClass::Syntax);
        assert_eq!(violation.violation.target, "properties[0].aliases");
        assert_eq!(
            violation.violation.message,
            "property 'title' has 33 aliases; a property may have at most 32"
        );
        let mut huge = Property::new("title", PropertyType::String);
        huge.aliases = (0..1_000_000).map(|i| format!("a{i}")).collect();
        let violations = within_30_s(move || schema(vec![huge]).validate());
        assert_eq!(
            messages(&violations),
            vec!["property 'title' has 1000000 aliases; a property may have at most 32"]
        );
    }

    #[test]
    fn labels_are_at_most_one_of_each_per_property() {
        let mut property = title();
        property.labels = vec!["title"; MAX_LABELS + 1];
        let violation = single_violation(&schema(vec![property.clone()]));
        assert_eq!(violation.class, RuleClass::Syntax);
        assert!(
            violation.violation.message.contains("at most 54"),
            "{}",
            violation.violation.message
        );
        property.labels = vec!["title", "title"];
        assert!(single_violation(&schema(vec![property]))
            .violation
            .message
            .contains("'title' of property 'title' is already on property 'title'"));
    }

    #[test]
    fn a_million_properties_get_only_the_count_violation_at_once() {
        let properties: Vec<Property> = (0..1_000_000)
            .map(|i| Property::new(&format!("p{i}"), PropertyType::Int64))
            .collect();
        let violations = within_30_s(move || schema(properties).validate());
        assert_eq!(
            messages(&violations),
            vec!["a schema has 1 to 128 properties, this one has 1000000"]
        );
    }

    #[test]
    fn duplicate_names_and_aliases_are_found_in_one_pass_as_before() {
        // 128 properties with 32 aliases each, every alias also used by the next property: the
        // first use keeps the name, every later one is refused naming the first owner.
        let properties: Vec<Property> = (0..MAX_PROPERTIES)
            .map(|i| {
                let mut property = Property::new(&format!("p{i}"), PropertyType::String);
                property.aliases = (0..MAX_ALIASES)
                    .map(|j| format!("{}Alias{j}", if i % 2 == 0 { "X" } else { "x" }))
                    .collect();
                property
            })
            .collect();
        let violations = within_30_s(move || schema(properties).validate());
        assert_eq!(violations.len(), (MAX_PROPERTIES - 1) * MAX_ALIASES);
        assert!(violations.iter().all(|v| v.class == RuleClass::Semantic));
        assert_eq!(
            violations[0].violation.message,
            "the alias 'xAlias0' of property 'p1' is already used by property 'p0'"
        );
        assert_eq!(violations[0].violation.target, "properties[1].aliases");
        let name_as_alias = schema(vec![Property::new("Status", PropertyType::String), {
            let mut state = Property::new("state", PropertyType::String);
            state.aliases = vec!["STATUS".into(), "state".into()];
            state
        }]);
        assert_eq!(
            messages(&name_as_alias.validate()),
            vec![
                "the alias 'STATUS' of property 'state' is already used by property 'Status'",
                "the alias 'state' of property 'state' is already used by property 'state'",
            ]
        );
    }

    #[test]
    fn far_too_long_names_are_quoted_by_their_start() {
        let long = "n".repeat(1_000_000);
        let violation = single_violation(&schema(vec![Property::new(&long, PropertyType::String)]));
        assert!(violation
            .violation
            .message
            .contains(&format!("'{}…'", "n".repeat(64))));
        assert!(violation.violation.message.ends_with("it has 1000000"));
        assert!(violation.violation.message.len() < 200);
    }

    #[test]
    fn update_rules_match_properties_by_name_in_any_case_in_one_pass() {
        let registered = schema(
            (0..MAX_PROPERTIES)
                .map(|i| Property::new(&format!("p{i}"), PropertyType::String))
                .collect(),
        );
        let mut next = registered.clone();
        next.properties.reverse();
        for property in &mut next.properties {
            property.name = property.name.to_ascii_uppercase();
        }
        assert!(registered.validate_update(&next).is_empty());
        next.properties[0].property_type = PropertyType::Int64;
        let violations = registered.validate_update(&next);
        assert_eq!(
            messages(&violations),
            vec!["the type of property 'p127' cannot change from string to int64"]
        );
        assert_eq!(violations[0].violation.target, "properties[0].type");
    }
}
