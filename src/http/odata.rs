//! OData system query options gcemu honours on collections and entities:
//! `$select`, `$top` and a `$filter` subset (`prop eq 'value'`, joined by `and`).
//! Option names arrive literal (`$top`) or percent-encoded (`%24top`).

use serde_json::{Map, Value};

use super::error::ApiError;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct QueryOptions {
    pub select: Option<Vec<String>>,
    pub top: Option<usize>,
    /// Equality conditions that must all hold (`$filter=name eq 'x' and state eq 'ready'`).
    pub filter: Vec<(String, String)>,
}

impl QueryOptions {
    pub fn parse(query: Option<&str>) -> Result<QueryOptions, ApiError> {
        let mut options = QueryOptions::default();
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
        {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(raw_key);
            let value = decode(raw_value);
            match key.to_ascii_lowercase().as_str() {
                "$select" | "select" => {
                    options.select = Some(
                        value
                            .split(',')
                            .map(|name| name.trim().to_string())
                            .filter(|n| !n.is_empty())
                            .collect(),
                    );
                }
                "$top" | "top" => {
                    let top = value.trim().parse::<usize>().map_err(|_| {
                        ApiError::invalid(format!(
                            "Invalid value '{value}' for $top; it must be a non-negative integer."
                        ))
                    })?;
                    options.top = Some(top);
                }
                "$filter" | "filter" => options.filter = parse_filter(&value)?,
                _ => {}
            }
        }
        Ok(options)
    }

    /// Checks that every `$select` and `$filter` name is a property of the entity.
    pub fn check_properties(&self, declared: &[&str], type_name: &str) -> Result<(), ApiError> {
        let names = self
            .select
            .iter()
            .flatten()
            .chain(self.filter.iter().map(|(name, _)| name));
        for name in names {
            if name != "*" && !declared.contains(&name.as_str()) {
                return Err(ApiError::invalid(format!(
                    "Could not find a property named '{name}' on type '{type_name}'."
                )));
            }
        }
        Ok(())
    }

    pub fn matches(&self, entity: &Map<String, Value>) -> bool {
        self.filter
            .iter()
            .all(|(name, expected)| match entity.get(name) {
                Some(Value::String(actual)) => actual.eq_ignore_ascii_case(expected),
                Some(Value::Number(actual)) => actual.to_string() == *expected,
                Some(Value::Bool(actual)) => actual.to_string() == *expected,
                _ => false,
            })
    }

    /// Keeps only the selected members (and annotations) of an entity.
    pub fn project(&self, entity: Map<String, Value>) -> Map<String, Value> {
        let Some(select) = &self.select else {
            return entity;
        };
        if select.iter().any(|name| name == "*") {
            return entity;
        }
        entity
            .into_iter()
            .filter(|(name, _)| {
                name.starts_with('@') || select.iter().any(|selected| selected == name)
            })
            .collect()
    }
}

fn decode(raw: &str) -> String {
    percent_encoding::percent_decode_str(&raw.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn parse_filter(raw: &str) -> Result<Vec<(String, String)>, ApiError> {
    let invalid = || {
        ApiError::invalid(format!(
            "Invalid filter clause '{raw}': gcemu supports property eq 'value' conditions joined by 'and'."
        ))
    };
    let mut conditions = Vec::new();
    for clause in split_outside_quotes(raw, " and ") {
        let clause = clause.trim();
        let mut parts = clause.splitn(3, ' ');
        let (Some(name), Some(operator), Some(value)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        if !operator.eq_ignore_ascii_case("eq") {
            return Err(invalid());
        }
        let value = value.trim();
        let literal =
            if let Some(quoted) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
                quoted.replace("''", "'")
            } else if value.parse::<f64>().is_ok() || value == "true" || value == "false" {
                value.to_string()
            } else {
                return Err(invalid());
            };
        conditions.push((name.to_string(), literal));
    }
    Ok(conditions)
}

fn split_outside_quotes<'a>(text: &'a str, separator: &str) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < text.len() {
        if bytes[index] == b'\'' {
            in_quotes = !in_quotes;
        } else if !in_quotes && text[index..].to_ascii_lowercase().starts_with(separator) {
            parts.push(&text[start..index]);
            index += separator.len();
            start = index;
            continue;
        }
        index += 1;
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_and_encoded_option_names_are_read() {
        let options = QueryOptions::parse(Some("$top=2&%24select=id,name")).unwrap();
        assert_eq!(options.top, Some(2));
        assert_eq!(
            options.select,
            Some(vec!["id".to_string(), "name".to_string()])
        );
    }

    #[test]
    fn a_bad_top_is_refused() {
        assert!(QueryOptions::parse(Some("$top=-1")).is_err());
        assert!(QueryOptions::parse(Some("$top=abc")).is_err());
    }

    #[test]
    fn filter_supports_eq_joined_by_and() {
        let options = QueryOptions::parse(Some(
            "$filter=name%20eq%20'Help and ''desk'''%20and%20state eq 'draft'",
        ))
        .unwrap();
        assert_eq!(
            options.filter,
            vec![
                ("name".to_string(), "Help and 'desk'".to_string()),
                ("state".to_string(), "draft".to_string())
            ]
        );
        assert!(QueryOptions::parse(Some("$filter=startswith(name,'x')")).is_err());
        assert!(QueryOptions::parse(Some("$filter=name ne 'x'")).is_err());
    }
}
