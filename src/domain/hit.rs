//! What a search hit shows of an item: the retrievable properties asked for, and a summary
//! with the search terms highlighted (spec/search.md §3).

use serde_json::{Map, Value};

use super::item::ExternalItem;
use super::schema::{Property, Schema};

/// The retrievable properties asked for (all retrievable ones when `fields` is absent);
/// `label_<label>` names the property carrying that label; other names are ignored.
pub fn selected_properties(
    item: &ExternalItem,
    schema: &Schema,
    fields: Option<&[String]>,
) -> Map<String, Value> {
    let wanted: Vec<&Property> = match fields {
        None => schema
            .properties
            .iter()
            .filter(|p| p.is_retrievable)
            .collect(),
        Some(fields) => fields
            .iter()
            .filter_map(|field| match field.strip_prefix("label_") {
                Some(label) => schema
                    .properties
                    .iter()
                    .find(|p| p.labels.iter().any(|l| l.eq_ignore_ascii_case(label))),
                None => schema.property_by_name_or_alias(field),
            })
            .filter(|p| p.is_retrievable)
            .collect(),
    };
    let mut properties = Map::new();
    for property in wanted {
        if let Some((name, value)) = item
            .properties
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&property.name))
        {
            properties.insert(name.clone(), value.clone());
        }
    }
    properties
}

/// A snippet of the content (or of the searchable properties) around the first search term,
/// with matches in `<c0>` and elisions as `<ddd/>`.
pub fn summary(item: &ExternalItem, schema: &Schema, search_terms: &[String]) -> String {
    summarize(&summary_text(item, schema), search_terms)
}

/// The text a summary is cut from: the content without markup, or else the searchable
/// properties' text.
pub fn summary_text(item: &ExternalItem, schema: &Schema) -> String {
    let mut text = item
        .content
        .as_ref()
        .map(|c| c.searchable_text())
        .unwrap_or_default();
    if text.trim().is_empty() {
        text = schema
            .properties
            .iter()
            .filter(|p| p.is_searchable)
            .filter_map(|p| {
                item.properties
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(&p.name))
                    .map(|(_, v)| v)
            })
            .map(|value| match value {
                Value::String(s) => s.clone(),
                other => other
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default(),
            })
            .collect::<Vec<_>>()
            .join(" ");
    }
    text
}

/// A window of `text` around the first search term, with matches in `<c0>` and elisions as
/// `<ddd/>`.
pub fn summarize(text: &str, search_terms: &[String]) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return String::new();
    }
    let matches = |word: &str| {
        let normalized: String = word
            .chars()
            .filter(|c| c.is_alphanumeric())
            .collect::<String>()
            .to_lowercase();
        !normalized.is_empty()
            && search_terms
                .iter()
                .any(|term| normalized.starts_with(term.as_str()))
    };
    const WINDOW: usize = 30;
    let first = words.iter().position(|w| matches(w)).unwrap_or(0);
    let start = first.saturating_sub(5);
    let end = (start + WINDOW).min(words.len());
    let mut snippet = String::new();
    if start > 0 {
        snippet.push_str("<ddd/>");
    }
    let rendered: Vec<String> = words[start..end]
        .iter()
        .map(|word| {
            if matches(word) {
                format!("<c0>{word}</c0>")
            } else {
                word.to_string()
            }
        })
        .collect();
    snippet.push_str(&rendered.join(" "));
    if end < words.len() {
        snippet.push_str("<ddd/>");
    }
    snippet
}
