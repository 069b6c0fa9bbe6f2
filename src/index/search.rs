//! Running a search on connection indexes: the caller's visibility inside the query, one ranking
//! over every content source, aggregation counts, collapse groups and the requested page, with
//! memory that follows the page asked for rather than the number of matches.
//!
//! The rules (bucket tokens, collapse semantics, range bounds) are `domain`'s; this module knows
//! how to get values out of tantivy's columns and hands back ids, counts and buckets.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Bound;
use std::sync::Arc;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::{BooleanQuery, ExistsQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocId, Score, Searcher, SegmentOrdinal, SegmentReader, Term};

use super::query::{typed_term, Translator};
use super::visibility::VisibleQuery;
use super::ConnectionIndex;
use crate::domain::acl::Trimming;
use crate::domain::collapse::{self, CollapseLevel, Collapser, GroupKeys};
use crate::domain::kql;
use crate::domain::refiner::{
    self, Aggregation, AggregationFilter, Bucket, NumericRange, ValueRange,
};
use crate::domain::schema::PropertyType;

/// One content source: its index and the caller's principal terms for it.
pub struct Source {
    pub index: Arc<ConnectionIndex>,
    /// Sorted, without duplicates (`Principals::terms`).
    pub principal_terms: Arc<[String]>,
    /// Which side of the trimming the search runs on.
    pub trimming: Trimming,
}

/// What to find, count and return.
pub struct Plan<'a> {
    pub query: &'a kql::Query,
    pub filters: &'a [(String, AggregationFilter)],
    /// (property, descending); relevance when empty.
    pub sort: &'a [(String, bool)],
    pub aggregations: &'a [Aggregation],
    pub collapse: &'a [CollapseLevel],
    pub from: usize,
    pub size: usize,
}

/// A result of the page.
#[derive(Debug, Clone, PartialEq)]
pub struct PageEntry {
    /// Position of its source in the `sources` given.
    pub source: usize,
    /// Empty when the caller said it knows this version.
    pub id: String,
    /// The write sequence number of the indexed version.
    pub seq: u64,
    /// With collapse: whether results sharing its collapse values were left out.
    pub is_collapsed: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    /// Every visible match (collapse does not change it).
    pub total: usize,
    pub page: Vec<PageEntry>,
    /// Whether results follow the page.
    pub more: bool,
    /// Per aggregation, in request order: the field and its buckets.
    pub aggregations: Vec<(String, Vec<Bucket>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The request cannot run on these indexes (a value of the wrong type, say).
    #[error("{0}")]
    Invalid(String),
    #[error("tantivy: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
}

/// Runs `plan` on `sources`. `known(source, seq)` tells whether the caller already holds that
/// item version (then the page entry's `id` is left empty: reading ids from the index costs).
pub fn search(
    sources: &[Source],
    plan: &Plan,
    known: &dyn Fn(usize, u64) -> bool,
) -> Result<Outcome, SearchError> {
    let collapsing = !plan.collapse.is_empty();
    // With collapse, one more than the page tells whether results follow it.
    let keep = plan
        .from
        .saturating_add(plan.size)
        .saturating_add(usize::from(collapsing));
    let order = Arc::new(Order {
        by_score: plan.sort.is_empty(),
        descending: plan
            .sort
            .iter()
            .map(|(_, descending)| *descending)
            .collect(),
        keep,
        collapse: plan.collapse.to_vec(),
    });
    let mut total = 0usize;
    let mut best = Best::new();
    let mut value_counts: Vec<HashMap<String, u64>> = vec![HashMap::new(); plan.aggregations.len()];
    let mut range_counts: Vec<Vec<u64>> = plan
        .aggregations
        .iter()
        .map(|a| vec![0; a.ranges.len()])
        .collect();
    let mut group_sizes: Vec<HashMap<u64, u64>> = vec![HashMap::new(); plan.collapse.len()];
    let mut searchers: Vec<Searcher> = Vec::with_capacity(sources.len());
    for (position, source) in sources.iter().enumerate() {
        let connection_index = &source.index;
        let translator = Translator {
            index: &connection_index.index,
            mapping: &connection_index.mapping,
            schema: &connection_index.schema,
        };
        let main = translator
            .translate(plan.query)
            .map_err(|e| SearchError::Invalid(e.0))?;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, main)];
        for (field, filter) in plan.filters {
            clauses.push((Occur::Must, filter_query(connection_index, field, filter)?));
        }
        clauses.push((
            match source.trimming {
                Trimming::Visible => Occur::Must,
                Trimming::Hidden => Occur::MustNot,
            },
            Box::new(VisibleQuery::new(
                connection_index.visibility.clone(),
                connection_index.mapping.clone(),
                source.principal_terms.clone(),
            )),
        ));
        let query = BooleanQuery::new(clauses);
        let searcher = connection_index.reader.searcher();
        let collector = RankingCollector {
            source: position,
            connection_index: connection_index.clone(),
            sort_fields: plan.sort.iter().map(|(name, _)| name.clone()).collect(),
            aggregations: plan
                .aggregations
                .iter()
                .map(|a| AggregationSpec::of(connection_index, a))
                .collect(),
            collapse_fields: plan
                .collapse
                .iter()
                .map(|level| level.fields.clone())
                .collect(),
            order: order.clone(),
        };
        let found = searcher.search(&query, &collector)?;
        total += found.total;
        best.extend(found.best, &order);
        for (counts, totals) in found.value_counts.into_iter().zip(value_counts.iter_mut()) {
            for (key, count) in counts {
                *totals.entry(key).or_default() += count;
            }
        }
        for (counts, totals) in found.range_counts.into_iter().zip(range_counts.iter_mut()) {
            for (count, total) in counts.into_iter().zip(totals.iter_mut()) {
                *total += count;
            }
        }
        for (sizes, totals) in found.group_sizes.into_iter().zip(group_sizes.iter_mut()) {
            for (key, size) in sizes {
                *totals.entry(key).or_default() += size;
            }
        }
        searchers.push(searcher);
    }
    let mut matches = best.matches;
    matches.sort_by(|a, b| order.compare(a, b));
    let (page, more): (Vec<Match>, bool) = if collapsing {
        let mut collapser = Collapser::new(plan.collapse);
        let mut kept = matches
            .into_iter()
            .filter(|m| collapser.admit(&m.collapse_keys))
            .skip(plan.from);
        let page: Vec<Match> = kept.by_ref().take(plan.size).collect();
        let more = kept.next().is_some();
        (page, more)
    } else {
        let page: Vec<Match> = matches
            .into_iter()
            .skip(plan.from)
            .take(plan.size)
            .collect();
        let more = plan.from.saturating_add(page.len()) < total;
        (page, more)
    };
    // Columns opened once per segment of the page, not once per hit.
    let mut columns: HashMap<(usize, u32), PageColumns> = HashMap::new();
    let page = page
        .into_iter()
        .map(|matched| {
            let address = matched.address;
            let segment_columns = columns
                .entry((matched.source, address.segment_ord))
                .or_insert_with(|| {
                    let fast = searchers[matched.source]
                        .segment_reader(address.segment_ord)
                        .fast_fields();
                    PageColumns {
                        id: fast.str("id").ok().flatten(),
                        seq: fast.u64("seq").ok(),
                    }
                });
            let seq = segment_columns
                .seq
                .as_ref()
                .and_then(|column| column.first(address.doc_id))
                .unwrap_or(0);
            let mut id = String::new();
            if !known(matched.source, seq) {
                if let Some(column) = &segment_columns.id {
                    if let Some(ord) = column.term_ords(address.doc_id).next() {
                        let _ = column.ord_to_str(ord, &mut id);
                    }
                }
            }
            let is_collapsed = collapsing.then(|| {
                plan.collapse
                    .iter()
                    .zip(&matched.collapse_keys)
                    .zip(&group_sizes)
                    .any(|((level, key), sizes)| {
                        key.is_some_and(|key| {
                            sizes.get(&key).copied().unwrap_or(0) > level.limit as u64
                        })
                    })
            });
            PageEntry {
                source: matched.source,
                id,
                seq,
                is_collapsed,
            }
        })
        .collect();
    let aggregations = plan
        .aggregations
        .iter()
        .zip(value_counts)
        .zip(range_counts)
        .map(|((aggregation, values), ranges)| {
            let buckets = if aggregation.ranges.is_empty() {
                refiner::value_buckets(aggregation, values)
            } else {
                let dates = sources.iter().any(|source| {
                    source
                        .index
                        .schema
                        .property_by_name_or_alias(&aggregation.field)
                        .is_some_and(|p| p.property_type.element() == PropertyType::DateTime)
                });
                refiner::range_buckets(aggregation, &ranges, dates)
            };
            (aggregation.field.clone(), buckets)
        })
        .collect();
    Ok(Outcome {
        total,
        page,
        more,
        aggregations,
    })
}

/// The columns a page entry is read from, per segment.
struct PageColumns {
    id: Option<tantivy::columnar::StrColumn>,
    seq: Option<tantivy::columnar::Column<u64>>,
}

struct Match {
    source: usize,
    score: Score,
    address: DocAddress,
    sort_keys: Vec<SortKey>,
    collapse_keys: GroupKeys,
}

#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum SortKey {
    Missing,
    Number(f64),
    Text(Arc<str>),
}

/// The order of results: relevance, or the requested sort properties; ties by index position.
struct Order {
    by_score: bool,
    /// Per sort property: descending.
    descending: Vec<bool>,
    /// How many kept results can be asked for.
    keep: usize,
    collapse: Vec<CollapseLevel>,
}

impl Order {
    fn compare(&self, a: &Match, b: &Match) -> std::cmp::Ordering {
        let by_address = (a.source, a.address).cmp(&(b.source, b.address));
        if self.by_score {
            return b.score.total_cmp(&a.score).then(by_address);
        }
        for (position, descending) in self.descending.iter().enumerate() {
            let ordering = compare_keys(&a.sort_keys[position], &b.sort_keys[position]);
            let ordering = if *descending {
                ordering.reverse()
            } else {
                ordering
            };
            if ordering != std::cmp::Ordering::Equal {
                return ordering;
            }
        }
        by_address
    }
}

/// The best matches so far: cut back to what can still reach the page whenever the list has
/// doubled since the last cut, so the work is n log k and memory follows the page.
struct Best {
    matches: Vec<Match>,
    cut_at: usize,
}

impl Best {
    fn new() -> Best {
        Best {
            matches: Vec::new(),
            cut_at: 1024,
        }
    }

    fn push(&mut self, matched: Match, order: &Order) {
        self.matches.push(matched);
        if self.matches.len() >= self.cut_at {
            self.cut(order);
        }
    }

    fn extend(&mut self, matches: Vec<Match>, order: &Order) {
        self.matches.extend(matches);
        if self.matches.len() >= self.cut_at {
            self.cut(order);
        }
    }

    fn cut(&mut self, order: &Order) {
        self.matches.sort_by(|a, b| order.compare(a, b));
        if order.collapse.is_empty() {
            self.matches.truncate(order.keep);
        } else {
            let keys: Vec<&[Option<u64>]> = self
                .matches
                .iter()
                .map(|m| m.collapse_keys.as_slice())
                .collect();
            let needed = collapse::still_needed(&order.collapse, &keys, order.keep);
            let mut needed = needed.into_iter().peekable();
            let mut position = 0usize;
            self.matches.retain(|_| {
                let keep = needed.next_if_eq(&position).is_some();
                position += 1;
                keep
            });
        }
        self.cut_at = self
            .matches
            .len()
            .saturating_mul(2)
            .max(order.keep.saturating_mul(2))
            .max(1024);
    }
}

fn compare_keys(a: &SortKey, b: &SortKey) -> std::cmp::Ordering {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match (a, b) {
        (SortKey::Number(x), SortKey::Number(y)) => x.total_cmp(y),
        (SortKey::Text(x), SortKey::Text(y)) => x.cmp(y),
        (SortKey::Missing, SortKey::Missing) => Equal,
        (SortKey::Missing, _) => Greater,
        (_, SortKey::Missing) => Less,
        (SortKey::Number(_), SortKey::Text(_)) => Less,
        (SortKey::Text(_), SortKey::Number(_)) => Greater,
    }
}

/// An aggregation as one source counts it: value buckets, or ranges in this source's types.
#[derive(Clone)]
enum AggregationSpec {
    Values(String),
    /// The field and, per requested range, its bounds (`None`: the range does not fit this
    /// source's type, nothing counts).
    Ranges(String, Vec<Option<NumericRange>>),
}

impl AggregationSpec {
    fn of(connection_index: &ConnectionIndex, aggregation: &Aggregation) -> AggregationSpec {
        if aggregation.ranges.is_empty() {
            return AggregationSpec::Values(aggregation.field.clone());
        }
        let element = connection_index
            .schema
            .property_by_name_or_alias(&aggregation.field)
            .map(|p| p.property_type.element());
        let ranges = aggregation
            .ranges
            .iter()
            .map(|range| element.and_then(|element| range.check(element, "range").ok()))
            .collect();
        AggregationSpec::Ranges(aggregation.field.clone(), ranges)
    }
}

/// Collects, per segment and without holding every match: the number of matches, the best
/// matches with their sort and collapse keys, aggregation counts and collapse group sizes.
struct RankingCollector {
    source: usize,
    connection_index: Arc<ConnectionIndex>,
    sort_fields: Vec<String>,
    aggregations: Vec<AggregationSpec>,
    collapse_fields: Vec<Vec<String>>,
    order: Arc<Order>,
}

struct Collected {
    total: usize,
    best: Vec<Match>,
    /// Per aggregation: counts per bucket key (value aggregations).
    value_counts: Vec<HashMap<String, u64>>,
    /// Per aggregation: counts per range (range aggregations).
    range_counts: Vec<Vec<u64>>,
    /// Per collapse level: matches per group key.
    group_sizes: Vec<HashMap<u64, u64>>,
}

struct RankingSegmentCollector {
    source: usize,
    segment: SegmentOrdinal,
    columns: SegmentColumns,
    order: Arc<Order>,
    total: usize,
    best: Best,
    range_counts: Vec<Vec<u64>>,
    group_sizes: Vec<HashMap<u64, u64>>,
}

struct SegmentColumns {
    sort: Vec<ValueColumn>,
    /// Per aggregation: its column, and the counts per value in this segment (value buckets)
    /// or the ranges (range buckets).
    aggregations: Vec<(ValueColumn, SegmentAggregation)>,
    /// Per collapse level: the columns of that level's fields.
    collapse: Vec<Vec<ValueColumn>>,
    /// Text sort keys already resolved from term ordinals.
    text_cache: HashMap<u64, Arc<str>>,
    /// Hashes of text values already resolved, per collapse column (level, field).
    hash_cache: HashMap<(usize, usize, u64), u64>,
}

enum SegmentAggregation {
    Values(HashMap<CountedValue, u64>),
    Ranges(Vec<Option<NumericRange>>),
}

/// A value counted in one segment: a text term ordinal (resolved later) or a rendered key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CountedValue {
    Ordinal(u64),
    Key(String),
}

impl Collector for RankingCollector {
    type Fruit = Collected;
    type Child = RankingSegmentCollector;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<RankingSegmentCollector> {
        // Columns are opened once per segment; text values are counted by term ordinal and
        // resolved to strings once per distinct ordinal, at harvest.
        let open = |name: &str| open_column(&self.connection_index, reader, name);
        let columns = SegmentColumns {
            sort: self.sort_fields.iter().map(|name| open(name)).collect(),
            aggregations: self
                .aggregations
                .iter()
                .map(|spec| match spec {
                    AggregationSpec::Values(field) => {
                        (open(field), SegmentAggregation::Values(HashMap::new()))
                    }
                    AggregationSpec::Ranges(field, ranges) => {
                        (open(field), SegmentAggregation::Ranges(ranges.clone()))
                    }
                })
                .collect(),
            collapse: self
                .collapse_fields
                .iter()
                .map(|fields| fields.iter().map(|name| open(name)).collect())
                .collect(),
            text_cache: HashMap::new(),
            hash_cache: HashMap::new(),
        };
        Ok(RankingSegmentCollector {
            source: self.source,
            segment,
            range_counts: self
                .aggregations
                .iter()
                .map(|spec| match spec {
                    AggregationSpec::Values(_) => Vec::new(),
                    AggregationSpec::Ranges(_, ranges) => vec![0; ranges.len()],
                })
                .collect(),
            group_sizes: vec![HashMap::new(); self.collapse_fields.len()],
            columns,
            order: self.order.clone(),
            total: 0,
            best: Best::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.order.by_score
    }

    fn merge_fruits(&self, fruits: Vec<Collected>) -> tantivy::Result<Collected> {
        let mut merged = Collected {
            total: 0,
            best: Vec::new(),
            value_counts: vec![HashMap::new(); self.aggregations.len()],
            range_counts: self
                .aggregations
                .iter()
                .map(|spec| match spec {
                    AggregationSpec::Values(_) => Vec::new(),
                    AggregationSpec::Ranges(_, ranges) => vec![0; ranges.len()],
                })
                .collect(),
            group_sizes: vec![HashMap::new(); self.collapse_fields.len()],
        };
        let mut best = Best::new();
        for fruit in fruits {
            merged.total += fruit.total;
            best.extend(fruit.best, &self.order);
            for (counts, totals) in fruit
                .value_counts
                .into_iter()
                .zip(merged.value_counts.iter_mut())
            {
                for (key, count) in counts {
                    *totals.entry(key).or_default() += count;
                }
            }
            for (counts, totals) in fruit
                .range_counts
                .into_iter()
                .zip(merged.range_counts.iter_mut())
            {
                for (count, total) in counts.into_iter().zip(totals.iter_mut()) {
                    *total += count;
                }
            }
            for (sizes, totals) in fruit
                .group_sizes
                .into_iter()
                .zip(merged.group_sizes.iter_mut())
            {
                for (key, size) in sizes {
                    *totals.entry(key).or_default() += size;
                }
            }
        }
        merged.best = best.matches;
        Ok(merged)
    }
}

impl SegmentCollector for RankingSegmentCollector {
    type Fruit = Collected;

    fn collect(&mut self, doc: DocId, score: Score) {
        self.total += 1;
        let SegmentColumns {
            sort,
            aggregations,
            collapse,
            text_cache,
            hash_cache,
        } = &mut self.columns;
        for ((column, aggregation), range_counts) in
            aggregations.iter_mut().zip(self.range_counts.iter_mut())
        {
            match aggregation {
                SegmentAggregation::Values(counts) => column.count(doc, counts),
                SegmentAggregation::Ranges(ranges) => {
                    let values = column.numbers(doc);
                    for (range, count) in ranges.iter().zip(range_counts.iter_mut()) {
                        if range.is_some_and(|range| values.iter().any(|v| range.contains(*v))) {
                            *count += 1;
                        }
                    }
                }
            }
        }
        let sort_keys = sort
            .iter()
            .map(|column| column.sort_key(doc, text_cache))
            .collect();
        let mut collapse_keys = Vec::with_capacity(collapse.len());
        let mut parent: Option<u64> = Some(0);
        for (level, columns) in collapse.iter().enumerate() {
            let key = parent.and_then(|parent| {
                let mut hasher = DefaultHasher::new();
                parent.hash(&mut hasher);
                for (field, column) in columns.iter().enumerate() {
                    column
                        .value_hash(doc, |ord, column| {
                            *hash_cache
                                .entry((level, field, ord))
                                .or_insert_with(|| text_hash(column, ord))
                        })?
                        .hash(&mut hasher);
                }
                Some(hasher.finish())
            });
            if let Some(key) = key {
                *self.group_sizes[level].entry(key).or_default() += 1;
            }
            collapse_keys.push(key);
            parent = key;
        }
        self.best.push(
            Match {
                source: self.source,
                score,
                address: DocAddress::new(self.segment, doc),
                sort_keys,
                collapse_keys,
            },
            &self.order,
        );
    }

    fn harvest(self) -> Collected {
        let value_counts = self
            .columns
            .aggregations
            .into_iter()
            .map(|(column, aggregation)| {
                let mut keyed: HashMap<String, u64> = HashMap::new();
                if let SegmentAggregation::Values(counts) = aggregation {
                    for (value, count) in counts {
                        *keyed.entry(column.key_of(value)).or_default() += count;
                    }
                }
                keyed
            })
            .collect();
        Collected {
            total: self.total,
            best: self.best.matches,
            value_counts,
            range_counts: self.range_counts,
            group_sizes: self.group_sizes,
        }
    }
}

/// A property's fast column in one segment.
enum ValueColumn {
    Text(tantivy::columnar::StrColumn),
    Int64(tantivy::columnar::Column<i64>),
    Double(tantivy::columnar::Column<f64>),
    Boolean(tantivy::columnar::Column<bool>),
    Date(tantivy::columnar::Column<tantivy::DateTime>),
    Absent,
}

fn open_column(
    connection_index: &ConnectionIndex,
    segment: &SegmentReader,
    name: &str,
) -> ValueColumn {
    let Some(property) = connection_index.schema.property_by_name_or_alias(name) else {
        return ValueColumn::Absent;
    };
    let Some(fields) = connection_index.mapping.property(&property.name) else {
        return ValueColumn::Absent;
    };
    let fast = segment.fast_fields();
    let schema = connection_index.index.schema();
    let column = match property.property_type.element() {
        PropertyType::String | PropertyType::Principal => fields
            .keyword
            .and_then(|field| fast.str(schema.get_field_name(field)).ok().flatten())
            .map(ValueColumn::Text),
        element => fields.value.and_then(|field| {
            let name = schema.get_field_name(field);
            match element {
                PropertyType::Int64 => fast.i64(name).ok().map(ValueColumn::Int64),
                PropertyType::Double => fast.f64(name).ok().map(ValueColumn::Double),
                PropertyType::Boolean => fast.bool(name).ok().map(ValueColumn::Boolean),
                _ => fast.date(name).ok().map(ValueColumn::Date),
            }
        }),
    };
    column.unwrap_or(ValueColumn::Absent)
}

impl ValueColumn {
    /// The document's first value as a sort key.
    fn sort_key(&self, doc: DocId, text_cache: &mut HashMap<u64, Arc<str>>) -> SortKey {
        match self {
            ValueColumn::Text(column) => match column.term_ords(doc).next() {
                Some(ord) => {
                    // Lowercased once per distinct value and shared, so sorting compares
                    // without allocating.
                    let text = text_cache.entry(ord).or_insert_with(|| {
                        let mut text = String::new();
                        let _ = column.ord_to_str(ord, &mut text);
                        Arc::from(text.to_lowercase())
                    });
                    SortKey::Text(text.clone())
                }
                None => SortKey::Missing,
            },
            ValueColumn::Int64(column) => column
                .first(doc)
                .map(|v| SortKey::Number(v as f64))
                .unwrap_or(SortKey::Missing),
            ValueColumn::Double(column) => column
                .first(doc)
                .map(SortKey::Number)
                .unwrap_or(SortKey::Missing),
            ValueColumn::Boolean(column) => column
                .first(doc)
                .map(|v| SortKey::Number(v as u8 as f64))
                .unwrap_or(SortKey::Missing),
            ValueColumn::Date(column) => column
                .first(doc)
                .map(|v| SortKey::Number(v.into_timestamp_micros() as f64))
                .unwrap_or(SortKey::Missing),
            ValueColumn::Absent => SortKey::Missing,
        }
    }

    /// A hash of the document's smallest value (its only one unless a collection), the same
    /// in every segment and index; `None` when it has none. Text goes through `text_hash`
    /// once per ordinal (ordinals follow text order, so the smallest ordinal is the smallest text).
    fn value_hash(
        &self,
        doc: DocId,
        mut text: impl FnMut(u64, &tantivy::columnar::StrColumn) -> u64,
    ) -> Option<u64> {
        let hash = |tag: u8, bits: u64| {
            let mut hasher = DefaultHasher::new();
            (tag, bits).hash(&mut hasher);
            hasher.finish()
        };
        match self {
            ValueColumn::Text(column) => column.term_ords(doc).min().map(|ord| text(ord, column)),
            ValueColumn::Int64(column) => {
                column.values_for_doc(doc).min().map(|v| hash(1, v as u64))
            }
            ValueColumn::Double(column) => column
                .values_for_doc(doc)
                .min_by(|a, b| a.total_cmp(b))
                .map(|v| hash(2, v.to_bits())),
            ValueColumn::Boolean(column) => {
                column.values_for_doc(doc).min().map(|v| hash(3, v as u64))
            }
            ValueColumn::Date(column) => column
                .values_for_doc(doc)
                .map(|v| v.into_timestamp_micros())
                .min()
                .map(|v| hash(4, v as u64)),
            ValueColumn::Absent => None,
        }
    }

    /// The document's numbers (dates as microseconds), for range buckets.
    fn numbers(&self, doc: DocId) -> Vec<f64> {
        match self {
            ValueColumn::Int64(column) => column.values_for_doc(doc).map(|v| v as f64).collect(),
            ValueColumn::Double(column) => column.values_for_doc(doc).collect(),
            ValueColumn::Date(column) => column
                .values_for_doc(doc)
                .map(|v| v.into_timestamp_micros() as f64)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Counts each of the document's values (every element of a collection).
    fn count(&self, doc: DocId, counts: &mut HashMap<CountedValue, u64>) {
        let mut add = |value: CountedValue| *counts.entry(value).or_default() += 1;
        match self {
            ValueColumn::Text(column) => column
                .term_ords(doc)
                .for_each(|ord| add(CountedValue::Ordinal(ord))),
            ValueColumn::Int64(column) => column
                .values_for_doc(doc)
                .for_each(|v| add(CountedValue::Key(v.to_string()))),
            ValueColumn::Double(column) => column
                .values_for_doc(doc)
                .for_each(|v| add(CountedValue::Key(v.to_string()))),
            ValueColumn::Boolean(column) => column.values_for_doc(doc).for_each(|v| {
                add(CountedValue::Key(
                    if v { "True" } else { "False" }.to_string(),
                ))
            }),
            ValueColumn::Date(column) => column.values_for_doc(doc).for_each(|v| {
                let key = chrono::DateTime::from_timestamp_micros(v.into_timestamp_micros())
                    .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default();
                add(CountedValue::Key(key))
            }),
            ValueColumn::Absent => {}
        }
    }

    /// The bucket key of a counted value.
    fn key_of(&self, value: CountedValue) -> String {
        match (self, value) {
            (ValueColumn::Text(column), CountedValue::Ordinal(ord)) => {
                let mut text = String::new();
                let _ = column.ord_to_str(ord, &mut text);
                text
            }
            (_, CountedValue::Key(key)) => key,
            (_, CountedValue::Ordinal(ord)) => ord.to_string(),
        }
    }
}

fn text_hash(column: &tantivy::columnar::StrColumn, ord: u64) -> u64 {
    let mut text = String::new();
    let _ = column.ord_to_str(ord, &mut text);
    let mut hasher = DefaultHasher::new();
    (0u8, text).hash(&mut hasher);
    hasher.finish()
}

fn filter_query(
    connection_index: &ConnectionIndex,
    field: &str,
    filter: &AggregationFilter,
) -> Result<Box<dyn Query>, SearchError> {
    let invalid = |message: String| SearchError::Invalid(message);
    let Some(property) = connection_index
        .schema
        .property_by_name_or_alias(field)
        .filter(|p| p.is_refinable)
    else {
        // The property is refinable in another content source only: nothing here matches.
        return Ok(Box::new(BooleanQuery::new(Vec::new())));
    };
    let fields = connection_index
        .mapping
        .property(&property.name)
        .ok_or_else(|| invalid(format!("'{field}' is not indexed")))?;
    let element = property.property_type.element();
    match filter {
        AggregationFilter::Values(values) => {
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for value in values {
                let term = match element {
                    PropertyType::String | PropertyType::Principal => {
                        fields.keyword.map(|f| Term::from_field_text(f, value))
                    }
                    element => fields.value.and_then(|f| typed_term(f, element, value)),
                };
                let term = term.ok_or_else(|| {
                    invalid(format!(
                        "'{}' is not a valid value for '{field}'",
                        crate::domain::excerpt(value, 100)
                    ))
                })?;
                clauses.push((
                    Occur::Should,
                    Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
                ));
            }
            Ok(Box::new(BooleanQuery::new(clauses)))
        }
        AggregationFilter::Range(range) => {
            if !matches!(
                element,
                PropertyType::Int64 | PropertyType::Double | PropertyType::DateTime
            ) {
                return Err(invalid(format!(
                    "'{field}' is a {} property; range filters need numbers or dates",
                    property.property_type.as_str()
                )));
            }
            let Some(value_field) = fields.value else {
                return Err(invalid(format!("'{field}' is not indexed")));
            };
            let term = |raw: &str| {
                typed_term(value_field, element, raw).ok_or_else(|| {
                    invalid(format!(
                        "'{}' in the range filter is not a {} value for '{field}'",
                        crate::domain::excerpt(raw, 100),
                        element.as_str()
                    ))
                })
            };
            let bound = |bound: &Option<(String, bool)>| -> Result<Bound<Term>, SearchError> {
                Ok(match bound {
                    None => Bound::Unbounded,
                    Some((raw, true)) => Bound::Included(term(raw)?),
                    Some((raw, false)) => Bound::Excluded(term(raw)?),
                })
            };
            let ValueRange { lower, upper } = range;
            let field_name = connection_index
                .index
                .schema()
                .get_field_name(value_field)
                .to_string();
            Ok(match (bound(lower)?, bound(upper)?) {
                // `range(min, max)`: any value at all.
                (Bound::Unbounded, Bound::Unbounded) => {
                    Box::new(ExistsQuery::new(field_name, false))
                }
                (lower, upper) => Box::new(RangeQuery::new(lower, upper)),
            })
        }
    }
}
