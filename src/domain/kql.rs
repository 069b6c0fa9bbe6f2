//! The KQL subset `POST /search/query` understands (spec/search.md section 4):
//! terms (implicit AND), quoted phrases, `AND` / `OR` / `NOT` (and a leading `-`), parentheses,
//! `property:value` (also quoted, or `value*` as a prefix), comparisons `property>=value`
//! (`=`, `<`, `<=`, `>`, `>=`), ranges `property:a..b`, prefix `term*`, and `*` alone.
//! The parser never panics: bad syntax is an error that says where.

#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// `*`: everything.
    All,
    /// A free-text word (matched in searchable properties and content).
    Term(String),
    /// A free-text word prefix (`print*`).
    Prefix(String),
    /// A free-text quoted phrase.
    Phrase(String),
    Property {
        name: String,
        comparison: Comparison,
    },
    And(Vec<Query>),
    Or(Vec<Query>),
    Not(Box<Query>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Comparison {
    /// `name:value` (`quoted` for `name:"value"`, `prefix` for `name:value*`).
    Matches {
        value: String,
        quoted: bool,
        prefix: bool,
    },
    /// `name=value`.
    Equals(String),
    LessThan(String),
    LessOrEqual(String),
    GreaterThan(String),
    GreaterOrEqual(String),
    /// `name:low..high`, both ends included.
    Range(String, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Parses a query string; an empty string is an error (Graph requires a query).
pub fn parse(text: &str) -> Result<Query, ParseError> {
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Err(error("the query string is empty"));
    }
    let mut parser = Parser {
        tokens,
        position: 0,
        depth: 0,
    };
    let query = parser.or_expression()?;
    if let Some(token) = parser.tokens.get(parser.position) {
        return Err(error(&format!(
            "unexpected {} in the query",
            token.describe()
        )));
    }
    Ok(query)
}

/// Expands a `queryTemplate`: each `{searchTerms}` becomes `query_string`. The size of the
/// result is computed before it is built, so a template that would expand past the query length
/// cap is refused without allocating it.
pub fn expand_template(template: &str, query_string: &str) -> Result<String, ParseError> {
    const PLACEHOLDER: &str = "{searchTerms}";
    let too_long = || {
        error(&format!(
            "the query template expands to more than {MAX_QUERY_CHARS} characters"
        ))
    };
    let template_chars = template.chars().count();
    if template_chars > MAX_QUERY_CHARS.saturating_mul(PLACEHOLDER.len()) {
        return Err(too_long());
    }
    let placeholders = template.matches(PLACEHOLDER).count();
    let expanded_chars = placeholders
        .checked_mul(query_string.chars().count())
        .and_then(|inserted| inserted.checked_add(template_chars))
        .map(|total| total - placeholders * PLACEHOLDER.len());
    match expanded_chars {
        Some(chars) if chars <= MAX_QUERY_CHARS => Ok(template.replace(PLACEHOLDER, query_string)),
        _ => Err(too_long()),
    }
}

/// The free-text words of a query (Graph's `searchTerms`), lowercased, in order.
pub fn search_terms(query: &Query) -> Vec<String> {
    let mut terms = Vec::new();
    collect_terms(query, &mut terms);
    terms
}

fn collect_terms(query: &Query, terms: &mut Vec<String>) {
    match query {
        Query::Term(word) | Query::Prefix(word) => terms.push(word.to_lowercase()),
        Query::Phrase(phrase) => terms.extend(phrase.split_whitespace().map(str::to_lowercase)),
        Query::And(parts) | Query::Or(parts) => {
            parts.iter().for_each(|part| collect_terms(part, terms))
        }
        Query::All | Query::Property { .. } | Query::Not(_) => {}
    }
}

fn error(message: &str) -> ParseError {
    ParseError {
        message: message.to_string(),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
    /// A property restriction already split: name, operator, raw value, value quoted.
    Restriction(String, String, String, bool),
    Minus,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Word(word) => format!("'{word}'"),
            Token::Quoted(text) => format!("\"{text}\""),
            Token::Open => "'('".into(),
            Token::Close => "')'".into(),
            Token::Restriction(name, operator, value, _) => format!("'{name}{operator}{value}'"),
            Token::Minus => "'-'".into(),
        }
    }
}

const MAX_QUERY_CHARS: usize = 4096;
/// How deeply parentheses and negations may nest in all. Every recursive walk of the tree
/// (translation, term collection, tantivy's own query execution) stays within it.
pub const MAX_DEPTH: usize = 32;

fn tokenize(text: &str) -> Result<Vec<Token>, ParseError> {
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(error(&format!(
            "the query string is longer than {MAX_QUERY_CHARS} characters"
        )));
    }
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        if c.is_whitespace() {
            index += 1;
            continue;
        }
        match c {
            '(' => {
                tokens.push(Token::Open);
                index += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                index += 1;
            }
            '"' => {
                let (text, next) = read_quoted(&chars, index)?;
                tokens.push(Token::Quoted(text));
                index = next;
            }
            '-' if chars
                .get(index + 1)
                .is_some_and(|n| !n.is_whitespace() && *n != '-') =>
            {
                tokens.push(Token::Minus);
                index += 1;
            }
            _ => {
                let start = index;
                let mut read_restriction = false;
                while index < chars.len()
                    && !chars[index].is_whitespace()
                    && !matches!(chars[index], '(' | ')' | '"')
                {
                    if let Some(operator) = operator_at(&chars, index) {
                        let name: String = chars[start..index].iter().collect();
                        if !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_')
                        {
                            index += operator.chars().count();
                            let (value, quoted, next) = if chars.get(index) == Some(&'"') {
                                let (value, next) = read_quoted(&chars, index)?;
                                (value, true, next)
                            } else {
                                let value_start = index;
                                while index < chars.len()
                                    && !chars[index].is_whitespace()
                                    && !matches!(chars[index], '(' | ')')
                                {
                                    index += 1;
                                }
                                (chars[value_start..index].iter().collect(), false, index)
                            };
                            if value.is_empty() {
                                return Err(error(&format!(
                                    "the restriction on '{name}' has no value"
                                )));
                            }
                            tokens.push(Token::Restriction(
                                name,
                                operator.to_string(),
                                value,
                                quoted,
                            ));
                            index = next;
                            read_restriction = true;
                            break;
                        }
                    }
                    index += 1;
                }
                if !read_restriction && index > start {
                    let word: String = chars[start..index].iter().collect();
                    if !word.is_empty() {
                        tokens.push(Token::Word(word));
                    }
                }
            }
        }
    }
    Ok(tokens)
}

fn operator_at(chars: &[char], index: usize) -> Option<&'static str> {
    let next = chars.get(index + 1).copied();
    match (chars[index], next) {
        (':', _) => Some(":"),
        ('<', Some('=')) => Some("<="),
        ('>', Some('=')) => Some(">="),
        ('<', _) => Some("<"),
        ('>', _) => Some(">"),
        ('=', _) => Some("="),
        _ => None,
    }
}

fn read_quoted(chars: &[char], start: usize) -> Result<(String, usize), ParseError> {
    let mut index = start + 1;
    let mut text = String::new();
    while index < chars.len() {
        if chars[index] == '"' {
            return Ok((text, index + 1));
        }
        text.push(chars[index]);
        index += 1;
    }
    Err(error("a quoted phrase is not closed (missing '\"')"))
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(word)) if word == keyword)
    }

    fn or_expression(&mut self) -> Result<Query, ParseError> {
        let mut parts = vec![self.and_expression()?];
        while self.is_keyword("OR") {
            self.position += 1;
            parts.push(self.and_expression()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Query::Or(parts)
        })
    }

    fn and_expression(&mut self) -> Result<Query, ParseError> {
        let mut parts = vec![self.unary()?];
        loop {
            match self.peek() {
                None | Some(Token::Close) => break,
                Some(Token::Word(word)) if word == "OR" => break,
                Some(Token::Word(word)) if word == "AND" => {
                    self.position += 1;
                    parts.push(self.unary()?);
                }
                Some(_) => parts.push(self.unary()?),
            }
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Query::And(parts)
        })
    }

    /// A chain of `NOT` / `-` is read in a loop, not by recursion, and folded by parity
    /// (`NOT NOT x` is `x`), so no length of chain can deepen the tree or the stack.
    fn unary(&mut self) -> Result<Query, ParseError> {
        let mut negations = 0usize;
        while self.is_keyword("NOT") || matches!(self.peek(), Some(Token::Minus)) {
            self.position += 1;
            negations += 1;
        }
        if negations.is_multiple_of(2) {
            return self.primary();
        }
        // A negation nests the tree one level, like a parenthesis: it shares the depth budget.
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(error("the query nests parentheses and NOTs too deeply"));
        }
        let operand = self.primary()?;
        self.depth -= 1;
        Ok(Query::Not(Box::new(operand)))
    }

    fn primary(&mut self) -> Result<Query, ParseError> {
        let Some(token) = self.peek().cloned() else {
            return Err(error("the query ends where a term was expected"));
        };
        self.position += 1;
        match token {
            Token::Open => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(error("the query nests parentheses and NOTs too deeply"));
                }
                let inner = self.or_expression()?;
                self.depth -= 1;
                match self.peek() {
                    Some(Token::Close) => {
                        self.position += 1;
                        Ok(inner)
                    }
                    _ => Err(error("a '(' is not closed")),
                }
            }
            Token::Close => Err(error("a ')' has no matching '('")),
            Token::Minus => Err(error("'-' must precede a term")),
            Token::Quoted(text) => {
                if text.trim().is_empty() {
                    return Err(error("a quoted phrase is empty"));
                }
                Ok(Query::Phrase(text))
            }
            Token::Word(word) => match word.as_str() {
                "AND" | "OR" | "NOT" => Err(error(&format!("'{word}' needs a term on each side"))),
                "*" => Ok(Query::All),
                _ => match word.strip_suffix('*') {
                    Some(prefix) if !prefix.is_empty() && !prefix.contains('*') => {
                        Ok(Query::Prefix(prefix.to_string()))
                    }
                    Some(_) => Err(error(&format!(
                        "'{word}': only a trailing '*' (prefix) is supported"
                    ))),
                    None if word.contains('*') => Err(error(&format!(
                        "'{word}': only a trailing '*' (prefix) is supported"
                    ))),
                    None => Ok(Query::Term(word)),
                },
            },
            Token::Restriction(name, operator, value, quoted) => {
                let comparison = match operator.as_str() {
                    ":" => match (quoted, value.split_once("..")) {
                        (false, Some((low, high))) if !low.is_empty() && !high.is_empty() => {
                            Comparison::Range(low.into(), high.into())
                        }
                        (false, Some(_)) => {
                            return Err(error(&format!(
                                "the range '{value}' on '{name}' needs both ends"
                            )))
                        }
                        _ => {
                            let prefix = !quoted && value.ends_with('*') && value.len() > 1;
                            let value = if prefix {
                                value.trim_end_matches('*').to_string()
                            } else {
                                value
                            };
                            Comparison::Matches {
                                value,
                                quoted,
                                prefix,
                            }
                        }
                    },
                    "=" => Comparison::Equals(value),
                    "<" => Comparison::LessThan(value),
                    "<=" => Comparison::LessOrEqual(value),
                    ">" => Comparison::GreaterThan(value),
                    _ => Comparison::GreaterOrEqual(value),
                };
                Ok(Query::Property { name, comparison })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn term(word: &str) -> Query {
        Query::Term(word.into())
    }

    #[test]
    fn terms_are_anded_implicitly() {
        assert_eq!(
            parse("printer jam").unwrap(),
            Query::And(vec![term("printer"), term("jam")])
        );
    }

    #[test]
    fn boolean_operators_and_parentheses_have_precedence() {
        assert_eq!(
            parse("a OR b c").unwrap(),
            Query::Or(vec![term("a"), Query::And(vec![term("b"), term("c")])])
        );
        assert_eq!(
            parse("(a OR b) AND NOT c").unwrap(),
            Query::And(vec![
                Query::Or(vec![term("a"), term("b")]),
                Query::Not(Box::new(term("c")))
            ])
        );
        assert_eq!(
            parse("a -b").unwrap(),
            Query::And(vec![term("a"), Query::Not(Box::new(term("b")))])
        );
        assert_eq!(
            parse("a or b").unwrap(),
            Query::And(vec![term("a"), term("or"), term("b")]),
            "operators are upper case"
        );
    }

    #[test]
    fn phrases_prefixes_and_all() {
        assert_eq!(
            parse("\"floor 3\"").unwrap(),
            Query::Phrase("floor 3".into())
        );
        assert_eq!(parse("print*").unwrap(), Query::Prefix("print".into()));
        assert_eq!(parse("*").unwrap(), Query::All);
        assert!(parse("*print").is_err());
        assert!(parse("pr*nt").is_err());
    }

    #[test]
    fn property_restrictions_comparisons_and_ranges() {
        let property = |name: &str, comparison: Comparison| Query::Property {
            name: name.into(),
            comparison,
        };
        assert_eq!(
            parse("status:open").unwrap(),
            property(
                "status",
                Comparison::Matches {
                    value: "open".into(),
                    quoted: false,
                    prefix: false
                }
            )
        );
        assert_eq!(
            parse("title:\"printer jam\"").unwrap(),
            property(
                "title",
                Comparison::Matches {
                    value: "printer jam".into(),
                    quoted: true,
                    prefix: false
                }
            )
        );
        assert_eq!(
            parse("ticketId:CTS-ce913b61").unwrap(),
            property(
                "ticketId",
                Comparison::Matches {
                    value: "CTS-ce913b61".into(),
                    quoted: false,
                    prefix: false
                }
            )
        );
        assert_eq!(
            parse("priority>=2").unwrap(),
            property("priority", Comparison::GreaterOrEqual("2".into()))
        );
        assert_eq!(
            parse("priority<3").unwrap(),
            property("priority", Comparison::LessThan("3".into()))
        );
        assert_eq!(
            parse("created>=2024-01-01T00:00:00.000Z").unwrap(),
            property(
                "created",
                Comparison::GreaterOrEqual("2024-01-01T00:00:00.000Z".into())
            )
        );
        assert_eq!(
            parse("created:2024-01-01T00:00:00Z..2024-02-01T00:00:00Z").unwrap(),
            property(
                "created",
                Comparison::Range("2024-01-01T00:00:00Z".into(), "2024-02-01T00:00:00Z".into())
            )
        );
        assert_eq!(
            parse("(status:\"open\" OR status:\"new\") printer").unwrap(),
            Query::And(vec![
                Query::Or(vec![
                    property(
                        "status",
                        Comparison::Matches {
                            value: "open".into(),
                            quoted: true,
                            prefix: false
                        }
                    ),
                    property(
                        "status",
                        Comparison::Matches {
                            value: "new".into(),
                            quoted: true,
                            prefix: false
                        }
                    ),
                ]),
                term("printer"),
            ])
        );
    }

    #[test]
    fn long_not_chains_fold_by_parity_and_deep_nesting_is_refused() {
        let chain = |n: usize| format!("{}printer", "NOT ".repeat(n));
        assert_eq!(parse(&chain(200)).unwrap(), term("printer"));
        assert_eq!(
            parse(&chain(201)).unwrap(),
            Query::Not(Box::new(term("printer")))
        );
        assert_eq!(
            parse(&format!("{}-a", "NOT ".repeat(1000))).unwrap(),
            Query::Not(Box::new(term("a")))
        );
        let nested = |n: usize| format!("{}a{}", "NOT (".repeat(n), ")".repeat(n));
        assert!(parse(&nested(MAX_DEPTH / 2)).is_ok());
        let refused = parse(&nested(MAX_DEPTH)).unwrap_err();
        assert!(
            refused.message.contains("too deeply"),
            "{}",
            refused.message
        );
        assert!(depth(&parse(&nested(MAX_DEPTH / 2)).unwrap()) <= MAX_DEPTH + 1);
    }

    fn depth(query: &Query) -> usize {
        match query {
            Query::And(parts) | Query::Or(parts) => 1 + parts.iter().map(depth).max().unwrap_or(0),
            Query::Not(inner) => 1 + depth(inner),
            _ => 1,
        }
    }

    proptest::proptest! {
        #[test]
        fn no_query_under_the_length_cap_builds_a_tree_deeper_than_the_limit(
            text in "(NOT |-|\\(|\\)|a |OR |AND ){0,400}",
        ) {
            if let Ok(query) = parse(&text) {
                proptest::prop_assert!(depth(&query) <= 2 * MAX_DEPTH + 2);
            }
        }
    }

    #[test]
    fn templates_expand_within_the_length_cap_or_are_refused_before_allocating() {
        assert_eq!(
            expand_template("{searchTerms} AND kind:doc", "printer").unwrap(),
            "printer AND kind:doc"
        );
        // 1,000,000 placeholders times a 4,000-character query would be 4 GB.
        let template = "{searchTerms}".repeat(1_000_000);
        let refused = expand_template(&template, &"a".repeat(4000)).unwrap_err();
        assert!(refused.message.contains("expands to more than"));
        assert!(expand_template(&"{searchTerms}".repeat(300), &"a".repeat(13)).is_ok());
        assert!(expand_template(&"{searchTerms}".repeat(400), &"a".repeat(13)).is_err());
    }

    #[test]
    fn bad_syntax_is_an_error_that_says_what() {
        for (query, expected) in [
            ("", "empty"),
            ("   ", "empty"),
            ("(printer", "not closed"),
            ("printer)", "unexpected"),
            ("\"open", "not closed"),
            ("a AND", "ends"),
            ("OR b", "each side"),
            ("status:", "no value"),
            ("created:..2024", "both ends"),
        ] {
            let message = parse(query).unwrap_err().message;
            assert!(message.contains(expected), "{query:?}: {message}");
        }
    }

    #[test]
    fn search_terms_are_the_free_text_words() {
        assert_eq!(
            search_terms(&parse("Printer status:open \"floor 3\" print*").unwrap()),
            vec!["printer", "floor", "3", "print"]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn arbitrary_strings_never_panic_the_parser(text in ".{0,80}") {
            let _ = parse(&text);
        }

        #[test]
        fn query_like_strings_never_panic_the_parser(text in "[a-z()\":<>=*. -]{0,40}|(AND|OR|NOT|[a-z]+|\\(|\\)|:|\"| )*") {
            let _ = parse(&text);
        }
    }
}
