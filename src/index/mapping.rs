//! From a connection schema to a tantivy schema.
//!
//! Per property (name lowercased, so names that differ in case share fields):
//! - `t_<name>`: tokenized text, for searchable strings and queryable strings without exact match;
//! - `k_<name>`: the raw whole value, for exact-match and refinable strings (fast when refinable);
//! - `v_<name>`: typed values for numbers, dates and booleans (indexed when queryable or refinable, fast when refinable).
//!
//! Nothing is stored in the index: hits are read from the store (or its cache) by the version
//! the `seq` column names. Every document also has `id`, `seq`, `content` (HTML stripped) and
//! the ACL terms `acl_grant` / `acl_deny`.

use tantivy::schema::{
    DateOptions, Field, IndexRecordOption, NumericOptions, Schema as TantivySchema,
    TextFieldIndexing, TextOptions, FAST, INDEXED, STORED, STRING, TEXT,
};

use crate::domain::schema::{PropertyType, Schema};

/// The fields one schema property maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyFields {
    pub name: String,
    pub property_type: PropertyType,
    pub text: Option<Field>,
    pub keyword: Option<Field>,
    pub value: Option<Field>,
}

#[derive(Debug, Clone)]
pub struct IndexMapping {
    pub schema: TantivySchema,
    pub id: Field,
    /// The write sequence number of the item's stored version (fast), for reconciliation.
    pub seq: Field,
    pub content: Field,
    /// ACL principal terms (`AclPrincipal::term`) of grant and of deny entries.
    pub acl_grant: Field,
    pub acl_deny: Field,
    pub properties: Vec<PropertyFields>,
}

impl IndexMapping {
    pub fn property(&self, name: &str) -> Option<&PropertyFields> {
        self.properties
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }
}

/// Builds the tantivy schema for a connection schema that passed validation.
pub fn map(schema: &Schema) -> IndexMapping {
    let mut builder = TantivySchema::builder();
    let id = builder.add_text_field("id", STRING | FAST);
    let seq = builder.add_u64_field("seq", FAST);
    let content = builder.add_text_field("content", TEXT);
    let acl_grant = builder.add_text_field("acl_grant", STRING);
    let acl_deny = builder.add_text_field("acl_deny", STRING);
    let mut properties = Vec::with_capacity(schema.properties.len());
    for property in &schema.properties {
        let name = property.name.to_ascii_lowercase();
        let mut fields = PropertyFields {
            name: property.name.clone(),
            property_type: property.property_type,
            text: None,
            keyword: None,
            value: None,
        };
        match property.property_type.element() {
            PropertyType::String | PropertyType::Principal => {
                let tokenized = property.is_searchable
                    || (property.is_queryable && !property.is_exact_match_required);
                if tokenized {
                    fields.text = Some(builder.add_text_field(&format!("t_{name}"), TEXT));
                }
                let keyword = property.is_refinable
                    || property.is_exact_match_required
                    || (property.is_queryable && !tokenized);
                if keyword {
                    let mut options = TextOptions::default();
                    if property.is_refinable
                        || property.is_exact_match_required
                        || property.is_queryable
                    {
                        options = options.set_indexing_options(
                            TextFieldIndexing::default()
                                .set_tokenizer("raw")
                                .set_index_option(IndexRecordOption::Basic),
                        );
                    }
                    if property.is_refinable {
                        options = options.set_fast("raw");
                    }
                    fields.keyword = Some(builder.add_text_field(&format!("k_{name}"), options));
                }
            }
            element => {
                let needs_field = property.is_queryable || property.is_refinable;
                if needs_field {
                    let field_name = format!("v_{name}");
                    let stored = false;
                    // Refinable values are filtered on (aggregationFilters), so they are indexed too.
                    let indexed = property.is_queryable || property.is_refinable;
                    fields.value = Some(match element {
                        PropertyType::Int64 => builder.add_i64_field(
                            &field_name,
                            numeric_options(indexed, property.is_refinable, stored),
                        ),
                        PropertyType::Double => builder.add_f64_field(
                            &field_name,
                            numeric_options(indexed, property.is_refinable, stored),
                        ),
                        PropertyType::Boolean => builder.add_bool_field(
                            &field_name,
                            numeric_options(indexed, property.is_refinable, stored),
                        ),
                        _ => builder.add_date_field(
                            &field_name,
                            date_options(indexed, property.is_refinable, stored),
                        ),
                    });
                }
            }
        }
        properties.push(fields);
    }
    IndexMapping {
        schema: builder.build(),
        id,
        seq,
        content,
        acl_grant,
        acl_deny,
        properties,
    }
}

fn numeric_options(indexed: bool, fast: bool, stored: bool) -> NumericOptions {
    let mut options = NumericOptions::default();
    if indexed {
        options = options | INDEXED;
    }
    if fast {
        options = options | FAST;
    }
    if stored {
        options = options | STORED;
    }
    options
}

fn date_options(indexed: bool, fast: bool, stored: bool) -> DateOptions {
    let mut options = DateOptions::default();
    if indexed {
        options = options | INDEXED;
    }
    if fast {
        options = options | FAST;
    }
    if stored {
        options = options | STORED;
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schema::Property;

    fn property(
        name: &str,
        property_type: PropertyType,
        set: impl FnOnce(&mut Property),
    ) -> Property {
        let mut property = Property::new(name, property_type);
        set(&mut property);
        property
    }

    #[test]
    fn search_attributes_decide_the_field_options() {
        let schema = Schema {
            properties: vec![
                property("title", PropertyType::String, |p| {
                    p.is_searchable = true;
                    p.is_retrievable = true;
                }),
                property("status", PropertyType::String, |p| {
                    p.is_queryable = true;
                    p.is_refinable = true;
                }),
                property("ticketId", PropertyType::String, |p| {
                    p.is_queryable = true;
                    p.is_exact_match_required = true;
                }),
                property("priority", PropertyType::Int64, |p| {
                    p.is_queryable = true;
                    p.is_refinable = true;
                    p.is_retrievable = true;
                }),
                property("hidden", PropertyType::Double, |_| {}),
            ],
        };
        let mapping = map(&schema);
        let tantivy = &mapping.schema;
        let title = mapping.property("title").unwrap();
        let title_entry = tantivy.get_field_entry(title.text.unwrap());
        assert!(title_entry.is_indexed() && !title_entry.is_stored());
        let status = mapping.property("status").unwrap();
        assert!(status.text.is_some(), "queryable strings are tokenized");
        assert!(
            tantivy.get_field_entry(status.keyword.unwrap()).is_fast(),
            "refinable means fast"
        );
        let ticket = mapping.property("ticketid").unwrap();
        assert!(ticket.text.is_none(), "exact match is not tokenized");
        assert!(tantivy
            .get_field_entry(ticket.keyword.unwrap())
            .is_indexed());
        let priority =
            tantivy.get_field_entry(mapping.property("priority").unwrap().value.unwrap());
        assert!(priority.is_indexed() && priority.is_fast() && !priority.is_stored());
        let hidden = mapping.property("hidden").unwrap();
        assert_eq!(
            (hidden.text, hidden.keyword, hidden.value),
            (None, None, None),
            "no attribute, no field"
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::domain::schema::{Property, LABELS};
    use proptest::prelude::*;
    use tantivy::{doc, Index};

    fn arbitrary_property() -> impl Strategy<Value = Property> {
        (
            "[a-z][a-zA-Z0-9]{0,6}",
            proptest::sample::select(PropertyType::ALL.to_vec()),
            any::<[bool; 5]>(),
            proptest::collection::vec(proptest::sample::select(LABELS[..12].to_vec()), 0..2),
        )
            .prop_map(|(name, property_type, flags, labels)| {
                // Mostly valid by construction: the validator's refusals have their own tests.
                let is_string = property_type.is_string();
                let mut property = Property::new(&name, property_type);
                property.is_searchable = flags[0] && is_string;
                property.is_queryable = flags[1];
                property.is_refinable = flags[3]
                    && !property.is_searchable
                    && property_type.element() != PropertyType::Principal;
                property.is_exact_match_required = flags[4] && is_string && !property.is_searchable;
                property.labels = labels
                    .into_iter()
                    .filter(|label| {
                        crate::domain::schema::label_required_type(label)
                            .is_none_or(|t| t == property_type)
                    })
                    .collect();
                property.is_retrievable = flags[2] || !property.labels.is_empty();
                property
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Every schema the validator accepts maps to a tantivy schema that indexes, commits and
        /// gives each property the options its attributes ask for.
        #[test]
        fn accepted_schemas_map_to_usable_indexes(properties in proptest::collection::vec(arbitrary_property(), 1..8)) {
            let mut properties = properties;
            for (i, property) in properties.iter_mut().enumerate() {
                property.name = format!("{}{i}", property.name);
            }
            let schema = Schema { properties };
            prop_assume!(schema.validate().is_empty());
            let mapping = map(&schema);
            let index = Index::create_in_ram(mapping.schema.clone());
            let mut writer = index.writer::<tantivy::TantivyDocument>(15_000_000).unwrap();
            writer.add_document(doc!(mapping.id => "item1", mapping.content => "some text")).unwrap();
            writer.commit().unwrap();
            for property in &schema.properties {
                let fields = mapping.property(&property.name).unwrap();
                let entries: Vec<_> = [fields.text, fields.keyword, fields.value].into_iter().flatten()
                    .map(|field| mapping.schema.get_field_entry(field)).collect();
                prop_assert_eq!(entries.iter().any(|e| e.is_indexed()), property.is_searchable || property.is_queryable || property.is_refinable || property.is_exact_match_required);
                prop_assert!(!entries.iter().any(|e| e.is_stored()), "hits are read from the store");
                prop_assert_eq!(entries.iter().any(|e| e.is_fast()), property.is_refinable);
            }
        }
    }
}
