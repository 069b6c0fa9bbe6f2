//! Refiners of a search (spec/search.md §2, §4.5): bucket keys and the `aggregationFilterToken`s
//! handed out for them, range buckets, and the `aggregationFilters` that send tokens back.
//!
//! Value buckets get Graph's FQL token `"ǂǂ<hex of the UTF-8 value>"` (quotes included, evidence
//! 4.4). Range buckets follow search-concept-aggregation: keys `Less than 100`, `100 up to 1000`,
//! `1000 and up` (dates: `Before X`, `From X up to Y`, `X or later`) and tokens `range(min, 100)`,
//! `range(100, 1000)`, `range(1000, max, to="le")`. A range holds `from` and excludes `to`.

use std::collections::HashMap;

use super::item::parse_date_time;
use super::schema::PropertyType;
use super::Violation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketSort {
    Count,
    KeyAsString,
    KeyAsNumber,
}

/// Ranges per aggregation at most (Graph documents none; gcemu's bound).
pub const MAX_RANGES: usize = 25;
/// Values in one `or(...)` filter at most (gcemu's bound).
pub const MAX_FILTER_VALUES: usize = 100;

#[derive(Debug, Clone)]
pub struct Aggregation {
    pub field: String,
    pub size: usize,
    pub sort_by: BucketSort,
    pub descending: bool,
    pub minimum_count: u64,
    pub prefix_filter: Option<String>,
    /// `bucketDefinition.ranges`: range buckets instead of value buckets.
    pub ranges: Vec<BucketRange>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub key: String,
    pub count: u64,
    pub token: String,
}

/// A `bucketAggregationRange`: `from` and `to` as sent (one may be absent: open-ended).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketRange {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Inclusive or exclusive bounds as numbers: int64 and double values, dates as microseconds
/// since the epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumericRange {
    pub lower: Option<(f64, bool)>,
    pub upper: Option<(f64, bool)>,
}

impl NumericRange {
    pub fn contains(&self, value: f64) -> bool {
        self.lower
            .is_none_or(|(low, inclusive)| if inclusive { value >= low } else { value > low })
            && self.upper.is_none_or(|(high, inclusive)| {
                if inclusive {
                    value <= high
                } else {
                    value < high
                }
            })
    }
}

/// A range in text, as a filter token carries it: bounds with their inclusiveness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueRange {
    pub lower: Option<(String, bool)>,
    pub upper: Option<(String, bool)>,
}

/// Whether ranges can refine a property of this type (numbers and dates, single or collections).
pub fn ranges_apply_to(property_type: PropertyType) -> bool {
    matches!(
        property_type.element(),
        PropertyType::Int64 | PropertyType::Double | PropertyType::DateTime
    )
}

/// A bound as a number for a property of type `element`.
pub fn numeric_bound(element: PropertyType, raw: &str) -> Option<f64> {
    match element {
        PropertyType::Int64 => raw.trim().parse::<i64>().ok().map(|n| n as f64),
        PropertyType::Double => raw.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        // Whole seconds, as the index keeps dates (a bucket then counts what its filter finds);
        // a bare date is its midnight, as in filters.
        PropertyType::DateTime => parse_date_time(raw.trim())
            .or_else(|| parse_date_time(&format!("{}T00:00:00Z", raw.trim())))
            .map(|instant| (instant.timestamp() as f64) * 1_000_000.0),
        _ => None,
    }
}

impl BucketRange {
    /// Checks the range against the property's type; `target` names it in messages.
    pub fn check(&self, element: PropertyType, target: &str) -> Result<NumericRange, Violation> {
        let bound = |name: &str, raw: &Option<String>| -> Result<Option<f64>, Violation> {
            raw.as_ref()
                .map(|raw| {
                    numeric_bound(element, raw).ok_or_else(|| {
                        Violation::new(
                            format!("{target}.{name}"),
                            format!(
                                "{target}.{name} '{}' is not a {} value",
                                super::excerpt(raw, 60),
                                element.as_str()
                            ),
                        )
                    })
                })
                .transpose()
        };
        let (from, to) = (bound("from", &self.from)?, bound("to", &self.to)?);
        if from.is_none() && to.is_none() {
            return Err(Violation::new(
                target,
                format!("{target} needs 'from', 'to' or both"),
            ));
        }
        if let (Some(from), Some(to)) = (from, to) {
            if from > to {
                return Err(Violation::new(
                    format!("{target}.from"),
                    format!(
                        "{target}.from ({}) is greater than {target}.to ({})",
                        self.from.as_deref().unwrap_or_default(),
                        self.to.as_deref().unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(NumericRange {
            lower: from.map(|f| (f, true)),
            upper: to.map(|t| (t, false)),
        })
    }

    /// The bucket's `key`, worded as the service words it.
    pub fn key(&self, dates: bool) -> String {
        match (&self.from, &self.to, dates) {
            (None, Some(to), false) => format!("Less than {to}"),
            (Some(from), Some(to), false) => format!("{from} up to {to}"),
            (Some(from), None, false) => format!("{from} and up"),
            (None, Some(to), true) => format!("Before {to}"),
            (Some(from), Some(to), true) => format!("From {from} up to {to}"),
            (Some(from), None, true) => format!("{from} or later"),
            (None, None, _) => String::new(),
        }
    }

    /// The bucket's `aggregationFilterToken`.
    pub fn token(&self) -> String {
        match (&self.from, &self.to) {
            (Some(from), None) => format!("range({from}, max, to=\"le\")"),
            (from, to) => format!(
                "range({}, {})",
                from.as_deref().unwrap_or("min"),
                to.as_deref().unwrap_or("max")
            ),
        }
    }
}

/// The token of a value bucket: `"ǂǂ<hex of UTF-8>"`, quotes included.
pub fn value_token(key: &str) -> String {
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    format!("\"ǂǂ{hex}\"")
}

/// Orders, filters and cuts value buckets as the aggregation asks.
pub fn value_buckets(aggregation: &Aggregation, counts: HashMap<String, u64>) -> Vec<Bucket> {
    let mut buckets: Vec<Bucket> = counts
        .into_iter()
        .filter(|(key, count)| {
            *count >= aggregation.minimum_count
                && aggregation
                    .prefix_filter
                    .as_ref()
                    .is_none_or(|prefix| key.starts_with(prefix.as_str()))
        })
        .map(|(key, count)| Bucket {
            token: value_token(&key),
            key,
            count,
        })
        .collect();
    buckets.sort_by(|a, b| {
        let ordering = match aggregation.sort_by {
            BucketSort::Count => a.count.cmp(&b.count).then_with(|| b.key.cmp(&a.key)),
            BucketSort::KeyAsString => a.key.cmp(&b.key),
            BucketSort::KeyAsNumber => {
                let number = |key: &str| key.parse::<f64>().unwrap_or(f64::NAN);
                number(&a.key).total_cmp(&number(&b.key))
            }
        };
        if aggregation.descending {
            ordering.reverse()
        } else {
            ordering
        }
    });
    buckets.truncate(aggregation.size);
    buckets
}

/// Range buckets in the order the ranges were asked for (gcemu's choice: `sortBy` and `size`
/// apply to value buckets), empty ones included unless `minimumCount` says otherwise.
pub fn range_buckets(aggregation: &Aggregation, counts: &[u64], dates: bool) -> Vec<Bucket> {
    aggregation
        .ranges
        .iter()
        .zip(counts)
        .filter(|(_, count)| **count >= aggregation.minimum_count)
        .map(|(range, count)| Bucket {
            key: range.key(dates),
            count: *count,
            token: range.token(),
        })
        .collect()
}

/// One entry of `aggregationFilters`: the field and what its values must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AggregationFilter {
    /// One of these values (from `"ǂǂ<hex>"` tokens or plain quoted values).
    Values(Vec<String>),
    Range(ValueRange),
}

/// Parses `field:"token"`, `field:or("t1","t2")` and `field:range(from, to[, from="ge"][, to="lt"])`.
pub fn parse_aggregation_filter(
    filter: &str,
    target: &str,
) -> Result<(String, AggregationFilter), Violation> {
    let shown = super::excerpt(filter, 200);
    let invalid = |why: &str| Violation::new(target, format!("{target} '{shown}' {why}"));
    let (field, rest) = filter
        .split_once(':')
        .ok_or_else(|| invalid("must look like field:\"token\" or field:range(from, to)"))?;
    let field = field.trim().to_string();
    let rest = rest.trim();
    if let Some(inner) = strip_call(rest, "range") {
        let range = parse_range(inner).ok_or_else(|| {
            invalid("has a range that is not range(from, to) with min, max or values and optional from=\"ge\"|\"gt\", to=\"lt\"|\"le\"")
        })?;
        return Ok((field, AggregationFilter::Range(range)));
    }
    let tokens: Vec<&str> = match strip_call(rest, "or") {
        Some(inner) => inner.split(',').map(str::trim).collect(),
        None => vec![rest],
    };
    if tokens.len() > MAX_FILTER_VALUES {
        return Err(invalid(&format!(
            "holds more than {MAX_FILTER_VALUES} values"
        )));
    }
    let values = tokens
        .into_iter()
        .map(|token| {
            let unquoted = token.trim_matches('"');
            match unquoted.strip_prefix("ǂǂ") {
                Some(hex) => {
                    decode_hex(hex).ok_or_else(|| invalid("holds a token that is not valid"))
                }
                None => Ok(unquoted.to_string()),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((field, AggregationFilter::Values(values)))
}

fn strip_call<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    // `get` refuses a cut inside a character; a match means the cut is after ASCII.
    let head = text.get(..name.len())?;
    if !head.eq_ignore_ascii_case(name) {
        return None;
    }
    text[name.len()..].strip_prefix('(')?.strip_suffix(')')
}

fn parse_range(inner: &str) -> Option<ValueRange> {
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    if parts.len() < 2 || parts.len() > 4 {
        return None;
    }
    let (mut lower_inclusive, mut upper_inclusive) = (true, false);
    for option in &parts[2..] {
        let (name, value) = option.split_once('=')?;
        let value = value.trim().trim_matches('"').to_ascii_lowercase();
        match (name.trim().to_ascii_lowercase().as_str(), value.as_str()) {
            ("from", "ge") => lower_inclusive = true,
            ("from", "gt") => lower_inclusive = false,
            ("to", "lt") => upper_inclusive = false,
            ("to", "le") => upper_inclusive = true,
            _ => return None,
        }
    }
    let bound = |raw: &str, open: &str, inclusive: bool| -> Option<Option<(String, bool)>> {
        let raw = raw.trim_matches('"');
        if raw.is_empty() {
            return None;
        }
        Some((!raw.eq_ignore_ascii_case(open)).then(|| (raw.to_string(), inclusive)))
    };
    Some(ValueRange {
        lower: bound(parts[0], "min", lower_inclusive)?,
        upper: bound(parts[1], "max", upper_inclusive)?,
    })
}

fn decode_hex(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(from: Option<&str>, to: Option<&str>) -> BucketRange {
        BucketRange {
            from: from.map(str::to_string),
            to: to.map(str::to_string),
        }
    }

    #[test]
    fn range_keys_and_tokens_as_the_service_words_them() {
        assert_eq!(range(None, Some("100")).key(false), "Less than 100");
        assert_eq!(
            range(Some("100"), Some("1000")).key(false),
            "100 up to 1000"
        );
        assert_eq!(range(Some("1000"), None).key(false), "1000 and up");
        assert_eq!(
            range(None, Some("2021-09-01T00:00:00Z")).key(true),
            "Before 2021-09-01T00:00:00Z"
        );
        assert_eq!(range(Some("a"), Some("b")).key(true), "From a up to b");
        assert_eq!(range(Some("a"), None).key(true), "a or later");
        assert_eq!(range(None, Some("100")).token(), "range(min, 100)");
        assert_eq!(range(Some("100"), Some("1000")).token(), "range(100, 1000)");
        assert_eq!(
            range(Some("1000"), None).token(),
            "range(1000, max, to=\"le\")"
        );
    }

    #[test]
    fn tokens_come_back_as_filters() {
        for bucket in [
            range(None, Some("100")),
            range(Some("100"), Some("1000")),
            range(Some("1000"), None),
        ] {
            let (field, filter) =
                parse_aggregation_filter(&format!("size:{}", bucket.token()), "f").unwrap();
            assert_eq!(field, "size");
            let AggregationFilter::Range(parsed) = filter else {
                panic!("not a range")
            };
            assert_eq!(parsed.lower.map(|(v, _)| v), bucket.from);
            assert_eq!(parsed.upper.map(|(v, _)| v), bucket.to);
        }
        let (_, filter) =
            parse_aggregation_filter("size:range(1, 5, from=\"gt\", to=\"le\")", "f").unwrap();
        assert_eq!(
            filter,
            AggregationFilter::Range(ValueRange {
                lower: Some(("1".into(), false)),
                upper: Some(("5".into(), true))
            })
        );
        let (_, filter) =
            parse_aggregation_filter(&format!("status:{}", value_token("open é")), "f").unwrap();
        assert_eq!(filter, AggregationFilter::Values(vec!["open é".into()]));
        // Not ranges (so plain values), and no cut inside a character on the way.
        for odd in ["x:rangé(1, 2)", "x:ranǂ(1, 2)", "x:ǂ"] {
            assert!(matches!(
                parse_aggregation_filter(odd, "f"),
                Ok((_, AggregationFilter::Values(_)))
            ));
        }
        for bad in [
            "nocolon",
            "size:range(1)",
            "size:range(1, 2, to=\"ne\")",
            "size:range(, 2)",
            "s:\"ǂǂzz\"",
        ] {
            assert!(parse_aggregation_filter(bad, "f").is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_are_checked_against_the_type() {
        let checked = range(Some("10"), Some("20"))
            .check(PropertyType::Int64, "r")
            .unwrap();
        assert!(checked.contains(10.0) && checked.contains(19.0) && !checked.contains(20.0));
        assert_eq!(
            range(Some("20"), Some("10"))
                .check(PropertyType::Int64, "r")
                .unwrap_err()
                .target,
            "r.from"
        );
        assert_eq!(
            range(None, None)
                .check(PropertyType::Int64, "r")
                .unwrap_err()
                .target,
            "r"
        );
        assert_eq!(
            range(Some("x"), None)
                .check(PropertyType::Double, "r")
                .unwrap_err()
                .target,
            "r.from"
        );
        let dates = range(Some("2024-01-01T00:00:00Z"), None)
            .check(PropertyType::DateTime, "r")
            .unwrap();
        assert!(
            dates.contains(numeric_bound(PropertyType::DateTime, "2024-06-01T00:00:00Z").unwrap())
        );
        assert!(
            !dates.contains(numeric_bound(PropertyType::DateTime, "2023-06-01T00:00:00Z").unwrap())
        );
    }
}
