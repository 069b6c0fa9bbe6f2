//! From a stored external item to a tantivy document under a connection's mapping.

use serde_json::Value;
use tantivy::TantivyDocument;

use super::mapping::IndexMapping;
use crate::domain::acl::AccessType;
use crate::domain::item::{parse_date_time, ExternalItem};
use crate::domain::schema::PropertyType;

pub fn build(mapping: &IndexMapping, item: &ExternalItem, seq: u64) -> TantivyDocument {
    let mut document = TantivyDocument::default();
    document.add_text(mapping.id, item.id.as_str());
    document.add_u64(mapping.seq, seq);
    if let Some(content) = &item.content {
        document.add_text(mapping.content, content.searchable_text());
    }
    let mut term = String::new();
    for entry in &item.acl {
        let field = match entry.access_type {
            AccessType::Grant => mapping.acl_grant,
            AccessType::Deny => mapping.acl_deny,
        };
        term.clear();
        entry.principal().write_term(&mut term);
        document.add_text(field, &term);
    }
    for (name, value) in &item.properties {
        if name.contains('@') {
            continue;
        }
        let Some(fields) = mapping.property(name) else {
            continue;
        };
        for element in elements(fields.property_type, value) {
            add_value(&mut document, fields, element);
        }
    }
    document
}

/// The single values of a property: the value itself, or each element of a collection.
fn elements(property_type: PropertyType, value: &Value) -> Vec<&Value> {
    match value {
        Value::Null => Vec::new(),
        Value::Array(elements) => elements.iter().collect(),
        Value::Object(object) if property_type == PropertyType::PrincipalCollection => object
            .get("principals")
            .and_then(Value::as_array)
            .map(|p| p.iter().collect())
            .unwrap_or_default(),
        single => vec![single],
    }
}

fn add_value(
    document: &mut TantivyDocument,
    fields: &super::mapping::PropertyFields,
    value: &Value,
) {
    match fields.property_type.element() {
        PropertyType::String => {
            let text = value.as_str().unwrap_or_default();
            if let Some(field) = fields.text {
                document.add_text(field, text);
            }
            if let Some(field) = fields.keyword {
                document.add_text(field, text);
            }
        }
        PropertyType::Principal => {
            let text: Vec<&str> = value
                .as_object()
                .map(|o| o.values().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(field) = fields.text {
                document.add_text(field, text.join(" "));
            }
            if let Some(field) = fields.keyword {
                for part in text {
                    document.add_text(field, part);
                }
            }
        }
        PropertyType::Int64 => {
            if let (Some(field), Some(number)) = (fields.value, value.as_i64()) {
                document.add_i64(field, number);
            }
        }
        PropertyType::Double => {
            if let (Some(field), Some(number)) = (fields.value, value.as_f64()) {
                document.add_f64(field, number);
            }
        }
        PropertyType::Boolean => {
            if let (Some(field), Some(flag)) = (fields.value, value.as_bool()) {
                document.add_bool(field, flag);
            }
        }
        PropertyType::DateTime => {
            if let (Some(field), Some(instant)) =
                (fields.value, value.as_str().and_then(parse_date_time))
            {
                document.add_date(
                    field,
                    tantivy::DateTime::from_timestamp_micros(instant.timestamp_micros()),
                );
            }
        }
        _ => {}
    }
}
