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
        .map(|c| c.searchable_text().into_owned())
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
/// `<ddd/>`. One pass over the words up to the window's end, without allocating per word.
pub fn summarize(text: &str, search_terms: &[String]) -> String {
    const WINDOW: usize = 30;
    const BEFORE: usize = 5;
    let mut words = text.split_whitespace();
    let mut recent: std::collections::VecDeque<&str> = std::collections::VecDeque::new();
    let mut first_words: Vec<&str> = Vec::new();
    let mut skipped = 0usize;
    let mut found = false;
    for word in words.by_ref() {
        if first_words.len() < WINDOW {
            first_words.push(word);
        }
        recent.push_back(word);
        if word_matches(word, search_terms) {
            found = true;
            break;
        }
        if recent.len() > BEFORE {
            recent.pop_front();
            skipped += 1;
        }
    }
    let (start, window, more) = if found {
        let mut window: Vec<&str> = recent.into_iter().collect();
        window.extend(words.by_ref().take(WINDOW - window.len()));
        (skipped, window, words.next().is_some())
    } else {
        let total = skipped + recent.len();
        (0, first_words, total > WINDOW)
    };
    let mut snippet = String::new();
    if start > 0 {
        snippet.push_str("<ddd/>");
    }
    for (position, word) in window.iter().enumerate() {
        if position > 0 {
            snippet.push(' ');
        }
        if word_matches(word, search_terms) {
            snippet.push_str("<c0>");
            snippet.push_str(word);
            snippet.push_str("</c0>");
        } else {
            snippet.push_str(word);
        }
    }
    if more {
        snippet.push_str("<ddd/>");
    }
    snippet
}

/// Whether the word's letters and digits, lowercased, start with one of the (lowercase) terms.
fn word_matches(word: &str, search_terms: &[String]) -> bool {
    if word.is_ascii() {
        // The common case, byte by byte: ASCII letters lowercase to one byte.
        let letters = || {
            word.bytes()
                .filter(u8::is_ascii_alphanumeric)
                .map(|b| b.to_ascii_lowercase())
        };
        if letters().next().is_none() {
            return false;
        }
        return search_terms.iter().any(|term| {
            let mut word_letters = letters();
            term.bytes().all(|t| word_letters.next() == Some(t))
        });
    }
    let normalized = || {
        word.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
    };
    if normalized().next().is_none() {
        return false;
    }
    search_terms.iter().any(|term| {
        let mut letters = normalized();
        term.chars().all(|t| letters.next() == Some(t))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The former implementation, for comparison.
    fn reference(text: &str, search_terms: &[String]) -> String {
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
                    .any(|t| normalized.starts_with(t.as_str()))
        };
        let first = words.iter().position(|w| matches(w)).unwrap_or(0);
        let start = first.saturating_sub(5);
        let end = (start + 30).min(words.len());
        let mut snippet = String::new();
        if start > 0 {
            snippet.push_str("<ddd/>");
        }
        let rendered: Vec<String> = words[start..end]
            .iter()
            .map(|w| {
                if matches(w) {
                    format!("<c0>{w}</c0>")
                } else {
                    w.to_string()
                }
            })
            .collect();
        snippet.push_str(&rendered.join(" "));
        if end < words.len() {
            snippet.push_str("<ddd/>");
        }
        snippet
    }

    #[test]
    fn summaries_match_the_former_implementation() {
        let terms = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let long: String = (0..100).map(|n| format!("w{n} ")).collect();
        for (text, searched) in [
            ("", terms(&["x"])),
            ("Printer on floor 3 jams", terms(&["printer"])),
            ("a b c d e f g h i j printer k", terms(&["print"])),
            (long.as_str(), terms(&["w50"])),
            (long.as_str(), terms(&["w2"])),
            (long.as_str(), terms(&["nothing"])),
            (long.as_str(), terms(&[])),
            ("Ünïcode ÉTÉ été — !!! été", terms(&["été"])),
            ("x ! , y", terms(&[""])),
            ("İstanbul ǅemal", terms(&["i̇st", "ǆ"])),
        ] {
            assert_eq!(
                summarize(text, &searched),
                reference(text, &searched),
                "{text:?} {searched:?}"
            );
        }
    }
}
