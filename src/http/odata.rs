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
    /// `$skiptoken`: where the page starts (see `paging`).
    pub skiptoken: Option<String>,
    /// Whether `$skip` was sent (directory collections refuse it, as Graph does).
    pub skip: bool,
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
                            "Invalid value '{}' for $top; it must be a non-negative integer.",
                            quote_prefix(&value)
                        ))
                    })?;
                    options.top = Some(top);
                }
                "$filter" | "filter" => options.filter = parse_filter(&value)?,
                "$skiptoken" | "skiptoken" => options.skiptoken = Some(value),
                "$skip" | "skip" => options.skip = true,
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

/// How many characters of a refused option value an error message quotes.
const QUOTED_CHARS: usize = 100;

/// Parses `name eq value (and name eq value)*`, where a value is a quoted string (`''` escapes a
/// quote), a number, `true` or `false`; names, `eq` and `and` are separated by whitespace, the
/// keywords in any case. One left-to-right pass over the characters, so any input, however long
/// or whatever its characters, is either parsed or refused in linear time, never sliced inside
/// a character.
fn parse_filter(raw: &str) -> Result<Vec<(String, String)>, ApiError> {
    FilterParser {
        chars: raw.chars().peekable(),
    }
    .conditions()
    .ok_or_else(|| {
        ApiError::invalid(format!(
            "Invalid filter clause '{}': gcemu supports property eq 'value' conditions joined by 'and'.",
            quote_prefix(raw)
        ))
    })
}

/// The start of a refused option value for an error message, whole characters only.
fn quote_prefix(raw: &str) -> String {
    let mut quoted: String = raw.chars().take(QUOTED_CHARS).collect();
    if quoted.len() < raw.len() {
        quoted.push('…');
    }
    quoted
}

struct FilterParser<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

impl FilterParser<'_> {
    fn conditions(mut self) -> Option<Vec<(String, String)>> {
        let mut conditions = Vec::new();
        self.skip_whitespace();
        loop {
            let name = self.word();
            if name.is_empty() || !self.skip_whitespace() {
                return None;
            }
            if !self.word().eq_ignore_ascii_case("eq") || !self.skip_whitespace() {
                return None;
            }
            conditions.push((name, self.literal()?));
            let separated = self.skip_whitespace();
            if self.chars.peek().is_none() {
                return Some(conditions);
            }
            if !separated || !self.word().eq_ignore_ascii_case("and") || !self.skip_whitespace() {
                return None;
            }
        }
    }

    /// Skips whitespace; tells whether there was any.
    fn skip_whitespace(&mut self) -> bool {
        let mut skipped = false;
        while self.chars.next_if(|c| c.is_whitespace()).is_some() {
            skipped = true;
        }
        skipped
    }

    /// A run of characters up to whitespace, a quote or the end.
    fn word(&mut self) -> String {
        let mut word = String::new();
        while let Some(c) = self.chars.next_if(|c| !c.is_whitespace() && *c != '\'') {
            word.push(c);
        }
        word
    }

    fn literal(&mut self) -> Option<String> {
        if self.chars.next_if_eq(&'\'').is_none() {
            let value = self.word();
            let valid = value.parse::<f64>().is_ok() || value == "true" || value == "false";
            return valid.then_some(value);
        }
        let mut value = String::new();
        loop {
            match self.chars.next()? {
                '\'' if self.chars.next_if_eq(&'\'').is_some() => value.push('\''),
                '\'' => return Some(value),
                c => value.push(c),
            }
        }
    }
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

    #[test]
    fn filter_keywords_take_any_case_and_any_whitespace_and_literals_are_typed() {
        assert_eq!(
            parse_filter("  name  EQ 'é ''x'''\tAnd count eq 5 and on eq true ").unwrap(),
            vec![
                ("name".to_string(), "é 'x'".to_string()),
                ("count".to_string(), "5".to_string()),
                ("on".to_string(), "true".to_string()),
            ]
        );
        for malformed in [
            "",
            " ",
            "é",
            "é eq",
            "name eq",
            "name eq x",
            "name eq 'x",
            "name eq 'x'and b eq 'y'",
            "name eq 'x' and",
            "name eq 'x' or b eq 'y'",
            "name eq 'x''",
            "name eq 5'",
            "'name' eq 'x'",
            "naïve eq 'x' ünd b eq 'y'",
        ] {
            assert!(
                parse_filter(malformed).is_err(),
                "{malformed:?} should be refused"
            );
        }
    }

    #[test]
    fn a_megabyte_filter_is_answered_at_once_quoting_only_its_start() {
        // Bytes of ASCII outside quotes: the former splitter lowercased the rest at each of them.
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let word = "x".repeat(1024 * 1024);
            let spaced = "x eq 'y' an ".repeat(100_000);
            sender.send((parse_filter(&word).is_err(), parse_filter(&spaced).is_err()))
        });
        let refused = receiver
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("a megabyte filter is answered within 30 s");
        assert_eq!(refused, (true, true));
        let raw = "é and ".repeat(200_000);
        let error = parse_filter(&raw).unwrap_err();
        assert!(
            error
                .message
                .starts_with("Invalid filter clause 'é and é and"),
            "{}",
            error.message
        );
        assert!(
            error.message.len() < 400,
            "the message quotes only the start"
        );
        let inside_quotes = "é and ".repeat(200_000);
        let filter = format!("name eq '{inside_quotes}'");
        assert_eq!(parse_filter(&filter).unwrap()[0].1, inside_quotes);
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics_on_any_query(query in "\\PC*", filter in "[a-zé日'\\- %+&=]*") {
            let _ = QueryOptions::parse(Some(&query));
            let _ = QueryOptions::parse(Some(&format!("$filter={filter}")));
            let _ = parse_filter(&filter);
        }
    }
}
