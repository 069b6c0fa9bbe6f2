//! From a parsed KQL query to a tantivy query over one connection's index, and the ACL
//! trimming clauses that make visibility part of the query (so totals, paging and aggregation
//! counts only ever count what the user may see).

use std::ops::Bound;

use tantivy::query::{
    AllQuery, BooleanQuery, Occur, PhraseQuery, Query, RangeQuery, RegexQuery, TermQuery,
    TermSetQuery,
};
use tantivy::schema::{Field, FieldType, IndexRecordOption};
use tantivy::{Index, Term};

use super::mapping::{IndexMapping, PropertyFields};
use crate::domain::item::parse_date_time;
use crate::domain::kql::{Comparison, Query as Kql};
use crate::domain::schema::{PropertyType, Schema};

/// A query that cannot run, and why (answered as `400`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError(pub String);

pub struct Translator<'a> {
    pub index: &'a Index,
    pub mapping: &'a IndexMapping,
    pub schema: &'a Schema,
}

impl Translator<'_> {
    pub fn translate(&self, query: &Kql) -> Result<Box<dyn Query>, QueryError> {
        Ok(match query {
            Kql::All => Box::new(AllQuery),
            Kql::Term(word) => self.free_text(word, false)?,
            Kql::Phrase(phrase) => self.free_text(phrase, false)?,
            Kql::Prefix(prefix) => self.free_text(prefix, true)?,
            Kql::And(parts) => Box::new(BooleanQuery::new(
                parts
                    .iter()
                    .map(|part| self.clause(part, Occur::Must))
                    .collect::<Result<_, _>>()?,
            )),
            Kql::Or(parts) => Box::new(BooleanQuery::new(
                parts
                    .iter()
                    .map(|part| self.clause(part, Occur::Should))
                    .collect::<Result<_, _>>()?,
            )),
            Kql::Not(inner) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, Box::new(AllQuery) as Box<dyn Query>),
                (Occur::MustNot, self.translate(inner)?),
            ])),
            Kql::Property { name, comparison } => self.property(name, comparison)?,
        })
    }

    fn clause(&self, query: &Kql, occur: Occur) -> Result<(Occur, Box<dyn Query>), QueryError> {
        Ok((occur, self.translate(query)?))
    }

    /// Free text: searchable properties and the content.
    fn free_text(&self, text: &str, prefix: bool) -> Result<Box<dyn Query>, QueryError> {
        let mut fields = vec![self.mapping.content];
        for property in &self.schema.properties {
            if property.is_searchable {
                if let Some(field) = self.mapping.property(&property.name).and_then(|f| f.text) {
                    fields.push(field);
                }
            }
        }
        let clauses: Vec<(Occur, Box<dyn Query>)> = fields
            .into_iter()
            .filter_map(|field| self.text_match(field, text, prefix))
            .map(|query| (Occur::Should, query))
            .collect();
        Ok(Box::new(BooleanQuery::new(clauses)))
    }

    /// Matches `text` in one tokenized field: a term, a phrase, or a prefix of the last word.
    fn text_match(&self, field: Field, text: &str, prefix: bool) -> Option<Box<dyn Query>> {
        let mut tokenizer = self.index.tokenizer_for_field(field).ok()?;
        let mut stream = tokenizer.token_stream(text);
        let mut words = Vec::new();
        while let Some(token) = stream.next() {
            words.push(token.text.clone());
        }
        if words.is_empty() {
            return None;
        }
        if prefix {
            let last = words.pop()?;
            let pattern = format!("{}.*", regex::escape(&last));
            let regex: Box<dyn Query> = Box::new(RegexQuery::from_pattern(&pattern, field).ok()?);
            if words.is_empty() {
                return Some(regex);
            }
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = words
                .into_iter()
                .map(|w| {
                    (
                        Occur::Must,
                        Box::new(TermQuery::new(
                            Term::from_field_text(field, &w),
                            IndexRecordOption::WithFreqs,
                        )) as Box<dyn Query>,
                    )
                })
                .collect();
            clauses.push((Occur::Must, regex));
            return Some(Box::new(BooleanQuery::new(clauses)));
        }
        if words.len() == 1 {
            return Some(Box::new(TermQuery::new(
                Term::from_field_text(field, &words[0]),
                IndexRecordOption::WithFreqs,
            )));
        }
        let terms: Vec<Term> = words
            .iter()
            .map(|w| Term::from_field_text(field, w))
            .collect();
        Some(Box::new(PhraseQuery::new(terms)))
    }

    /// `property:value` and comparisons; only queryable properties (or their aliases) take part.
    fn property(&self, name: &str, comparison: &Comparison) -> Result<Box<dyn Query>, QueryError> {
        let property = self.schema.property_by_name_or_alias(name).ok_or_else(|| {
            QueryError(format!(
                "'{name}' is not a property (or alias) of the connection's schema"
            ))
        })?;
        if !property.is_queryable {
            return Err(QueryError(format!(
                "property '{}' is not queryable, so '{name}:' restrictions cannot use it",
                property.name
            )));
        }
        let fields = self
            .mapping
            .property(&property.name)
            .cloned()
            .ok_or_else(|| QueryError(format!("property '{name}' is not indexed")))?;
        match property.property_type.element() {
            PropertyType::String | PropertyType::Principal => {
                self.string_restriction(&fields, property.is_exact_match_required, name, comparison)
            }
            element => {
                let field = fields
                    .value
                    .ok_or_else(|| QueryError(format!("property '{name}' is not indexed")))?;
                self.value_restriction(field, element, name, comparison)
            }
        }
    }

    fn string_restriction(
        &self,
        fields: &PropertyFields,
        exact: bool,
        name: &str,
        comparison: &Comparison,
    ) -> Result<Box<dyn Query>, QueryError> {
        let (value, prefix) = match comparison {
            Comparison::Matches { value, prefix, .. } => (value, *prefix),
            Comparison::Equals(value) => (value, false),
            _ => {
                return Err(QueryError(format!(
                    "'{name}' is a text property: comparisons and ranges need a number or a date"
                )))
            }
        };
        if exact || fields.text.is_none() {
            let field = fields
                .keyword
                .ok_or_else(|| QueryError(format!("property '{name}' is not indexed")))?;
            if prefix {
                let pattern = format!("{}.*", regex::escape(value));
                return RegexQuery::from_pattern(&pattern, field)
                    .map(|q| Box::new(q) as Box<dyn Query>)
                    .map_err(|e| QueryError(e.to_string()));
            }
            return Ok(Box::new(TermQuery::new(
                Term::from_field_text(field, value),
                IndexRecordOption::Basic,
            )));
        }
        let field = fields.text.expect("checked above");
        Ok(self
            .text_match(field, value, prefix)
            .unwrap_or_else(|| Box::new(BooleanQuery::new(Vec::new()))))
    }

    fn value_restriction(
        &self,
        field: Field,
        element: PropertyType,
        name: &str,
        comparison: &Comparison,
    ) -> Result<Box<dyn Query>, QueryError> {
        let term = |raw: &str| {
            typed_term(field, element, raw).ok_or_else(|| {
                QueryError(format!(
                    "'{raw}' is not a valid {} value for '{name}'",
                    element.as_str()
                ))
            })
        };
        // Every comparison bounds at least one side, as `RangeQuery` requires.
        let range = |lower: Bound<Term>, upper: Bound<Term>| -> Box<dyn Query> {
            Box::new(RangeQuery::new(lower, upper))
        };
        Ok(match comparison {
            Comparison::Matches {
                value,
                prefix: false,
                ..
            }
            | Comparison::Equals(value) => {
                if element == PropertyType::DateTime && value.len() == 10 {
                    // A bare date matches the whole day.
                    let start = term(&format!("{value}T00:00:00Z"))?;
                    let end = term(&format!("{value}T23:59:59.999999Z"))?;
                    range(Bound::Included(start), Bound::Included(end))
                } else {
                    Box::new(TermQuery::new(term(value)?, IndexRecordOption::Basic))
                }
            }
            Comparison::Matches { prefix: true, .. } => {
                return Err(QueryError(format!(
                    "'{name}' is not a text property: '*' prefixes need text"
                )))
            }
            Comparison::LessThan(value) => range(Bound::Unbounded, Bound::Excluded(term(value)?)),
            Comparison::LessOrEqual(value) => {
                range(Bound::Unbounded, Bound::Included(term(value)?))
            }
            Comparison::GreaterThan(value) => {
                range(Bound::Excluded(term(value)?), Bound::Unbounded)
            }
            Comparison::GreaterOrEqual(value) => {
                range(Bound::Included(term(value)?), Bound::Unbounded)
            }
            Comparison::Range(low, high) => {
                range(Bound::Included(term(low)?), Bound::Included(term(high)?))
            }
        })
    }
}

/// The index term for a typed value given as text (numbers, dates, `true`/`false`).
pub fn typed_term(field: Field, element: PropertyType, raw: &str) -> Option<Term> {
    match element {
        PropertyType::Int64 => raw
            .parse::<i64>()
            .ok()
            .map(|n| Term::from_field_i64(field, n)),
        PropertyType::Double => raw
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(|n| Term::from_field_f64(field, n)),
        PropertyType::Boolean => match raw.to_ascii_lowercase().as_str() {
            "true" => Some(Term::from_field_bool(field, true)),
            "false" => Some(Term::from_field_bool(field, false)),
            _ => None,
        },
        PropertyType::DateTime => {
            let instant =
                parse_date_time(raw).or_else(|| parse_date_time(&format!("{raw}T00:00:00Z")))?;
            Some(Term::from_field_date(
                field,
                tantivy::DateTime::from_timestamp_micros(instant.timestamp_micros()),
            ))
        }
        _ => None,
    }
}

/// Visibility as query clauses: some grant entry names one of the user's principal terms, and
/// no deny entry does.
pub fn trimming(
    mapping: &IndexMapping,
    principal_terms: &[String],
) -> Vec<(Occur, Box<dyn Query>)> {
    let terms = |field: Field| {
        principal_terms
            .iter()
            .map(move |t| Term::from_field_text(field, t))
            .collect::<Vec<_>>()
    };
    vec![
        (
            Occur::Must,
            Box::new(TermSetQuery::new(terms(mapping.acl_grant))) as Box<dyn Query>,
        ),
        (
            Occur::MustNot,
            Box::new(TermSetQuery::new(terms(mapping.acl_deny))),
        ),
    ]
}

/// Whether a field holds text (keyword) values, for aggregations and filters.
pub fn is_text_field(index: &Index, field: Field) -> bool {
    matches!(
        index.schema().get_field_entry(field).field_type(),
        FieldType::Str(_)
    )
}
