//! `POST /search/query` for external items: run the query on each content source's index with
//! the caller's visibility inside the query, merge into one ranking, aggregate, page, and load
//! the page's items from the store.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader, Term};

use super::{access, Error};
use crate::domain::acl::UserIdentity;
use crate::domain::ids::{ConnectionId, ItemId};
use crate::domain::item::ExternalItem;
use crate::domain::kql;
use crate::domain::principal::Caller;
use crate::domain::schema::{Property, PropertyType, Schema};
use crate::domain::Violation;
use crate::index::query::{trimming, typed_term, Translator};
use crate::index::ConnectionIndex;
use crate::state::AppState;
use crate::store;

pub const MAX_PAGE_SIZE: usize = 1000;
pub const DEFAULT_PAGE_SIZE: usize = 25;
pub const MAX_SORT_PROPERTIES: usize = 5;
/// External groups a user may be in for a query (spec/limits.md); `access::principals` enforces it.
pub use crate::domain::acl::MAX_EXTERNAL_GROUPS_PER_QUERY;

#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub connection_ids: Vec<ConnectionId>,
    pub query_string: String,
    pub query_template: Option<String>,
    pub from: usize,
    pub size: usize,
    pub fields: Option<Vec<String>>,
    pub aggregations: Vec<AggregationRequest>,
    pub aggregation_filters: Vec<String>,
    /// (property, descending)
    pub sort: Vec<(String, bool)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketSort {
    Count,
    KeyAsString,
    KeyAsNumber,
}

#[derive(Debug, Clone)]
pub struct AggregationRequest {
    pub field: String,
    pub size: usize,
    pub sort_by: BucketSort,
    pub descending: bool,
    pub minimum_count: u64,
    pub prefix_filter: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SearchHit {
    pub item_id: String,
    pub connection_id: ConnectionId,
    pub rank: usize,
    pub summary: String,
    pub properties: Map<String, Value>,
    /// The item as stored.
    pub item: ExternalItem,
}

#[derive(Debug, Clone)]
pub struct Bucket {
    pub key: String,
    pub count: u64,
    pub token: String,
}

#[derive(Debug, Clone)]
pub struct SearchResult {
    pub search_terms: Vec<String>,
    pub total: usize,
    pub more_results_available: bool,
    pub hits: Vec<SearchHit>,
    pub aggregations: Vec<(String, Vec<Bucket>)>,
}

fn invalid(message: String) -> Error {
    Error::Invalid(Violation::new("requests", message))
}

/// Runs one search request for the caller.
pub async fn search(
    state: &AppState,
    caller: &Caller,
    request: SearchRequest,
) -> Result<SearchResult, Error> {
    let Some(user) = caller.user.clone() else {
        return Err(Error::Forbidden(
            "searching externalItem needs a delegated (user) token; application permissions are not supported for external items".into(),
        ));
    };
    if request.size > MAX_PAGE_SIZE {
        return Err(invalid(format!(
            "size must be at most {MAX_PAGE_SIZE}, it is {}",
            request.size
        )));
    }
    if request.sort.len() > MAX_SORT_PROPERTIES {
        return Err(invalid(format!(
            "at most {MAX_SORT_PROPERTIES} sortProperties are allowed, {} were sent",
            request.sort.len()
        )));
    }
    let query_text = match &request.query_template {
        Some(template) => kql::expand_template(template, &request.query_string)
            .map_err(|e| invalid(format!("query.queryTemplate is not valid: {}", e.message)))?,
        None => request.query_string.clone(),
    };
    let parsed = kql::parse(&query_text).map_err(|e| {
        invalid(format!(
            "the query string '{}' is not valid: {}",
            crate::domain::excerpt(&query_text, 200),
            e.message
        ))
    })?;
    run(state, caller, &user, request, parsed).await
}

/// Runs a parsed query for the caller's `user` (also the Copilot Retrieval API's ranking step).
pub(crate) async fn run(
    state: &AppState,
    caller: &Caller,
    user: &str,
    request: SearchRequest,
    parsed: kql::Query,
) -> Result<SearchResult, Error> {
    let user = user.to_string();
    let identity = match access::find_user(state, &caller.tenant, &user).await? {
        Some(directory_user) => access::identity_of(&directory_user),
        None => UserIdentity {
            id: user.clone(),
            user_principal_name: user.contains('@').then(|| user.clone()),
            is_guest: false,
        },
    };
    state.index.wait_for_acknowledged_writes().await?;

    let mut sources = Vec::new();
    for connection_id in &request.connection_ids {
        let (tenant, lookup) = (caller.tenant.clone(), connection_id.clone());
        let exists = state
            .store
            .read(move |db| Ok(store::connections::state(db, &tenant, &lookup)?.is_some()))
            .await?;
        if !exists {
            return Err(invalid(format!(
                "the content source '/external/connections/{connection_id}' does not exist"
            )));
        }
        let principals =
            access::principals(state, &caller.tenant, identity.clone(), connection_id).await?;
        if let Some(reason) = state.index.failure(&caller.tenant, connection_id) {
            return Err(Error::Unavailable(format!(
                "the index of connection '{connection_id}' failed and is being rebuilt from the store ({reason}); retry shortly"
            )));
        }
        if let Some(index) = state.index.get(&caller.tenant, connection_id) {
            sources.push((connection_id.clone(), index, principals.terms()));
        }
    }
    check_fields_refinable(
        &sources,
        request.sort.iter().map(|(name, _)| name),
        "sort on",
    )?;
    check_fields_refinable(
        &sources,
        request.aggregations.iter().map(|a| &a.field),
        "aggregate on",
    )?;
    let filters = parse_aggregation_filters(&request.aggregation_filters)?;
    check_fields_refinable(&sources, filters.iter().map(|(name, _)| name), "filter on")?;

    let index_results = tokio::task::spawn_blocking({
        let request = request.clone();
        move || {
            run_on_indexes(&sources, &parsed, &request, &filters)
                .map(|matches| (matches, sources, parsed))
        }
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))??;
    let (ranked, sources, parsed) = index_results;

    let total = ranked.total;
    let page: Vec<&Match> = ranked.page.iter().collect();
    let search_terms = kql::search_terms(&parsed);
    let mut hits = Vec::with_capacity(page.len());
    let mut items_by_source: HashMap<usize, HashMap<String, ExternalItem>> = HashMap::new();
    for (source_index, ids) in group_ids(&page) {
        let (tenant, connection_id) = (caller.tenant.clone(), sources[source_index].0.clone());
        let items = state
            .store
            .read(move |db| {
                let mut found = HashMap::new();
                for id in ids {
                    if let Ok(item_id) = ItemId::parse(&id) {
                        if let Some(item) =
                            store::items::get(db, &tenant, &connection_id, &item_id)?
                        {
                            found.insert(id, item);
                        }
                    }
                }
                Ok(found)
            })
            .await?;
        items_by_source.insert(source_index, items);
    }
    for (position, matched) in page.iter().enumerate() {
        let (connection_id, index, _) = &sources[matched.source];
        let Some(item) = items_by_source
            .get_mut(&matched.source)
            .and_then(|items| items.remove(&matched.id))
        else {
            continue;
        };
        hits.push(SearchHit {
            item_id: matched.id.clone(),
            connection_id: connection_id.clone(),
            rank: request.from + position + 1,
            summary: summary(&item, &index.schema, &search_terms),
            properties: selected_properties(&item, &index.schema, request.fields.as_deref()),
            item,
        });
    }
    Ok(SearchResult {
        search_terms,
        total,
        more_results_available: request.from + hits.len() < total,
        hits,
        aggregations: ranked.aggregations,
    })
}

type Source = (ConnectionId, Arc<ConnectionIndex>, Vec<String>);

fn check_fields_refinable<'a>(
    sources: &[Source],
    names: impl Iterator<Item = &'a String>,
    what: &str,
) -> Result<(), Error> {
    for name in names {
        let refinable = sources.iter().any(|(_, index, _)| {
            index
                .schema
                .property_by_name_or_alias(name)
                .is_some_and(|p| p.is_refinable)
        });
        if !refinable && !sources.is_empty() {
            return Err(invalid(format!(
                "cannot {what} '{name}': only refinable properties can be used"
            )));
        }
    }
    Ok(())
}

/// `field:"token"` or `field:or("t1","t2")`; tokens are `ǂǂ<hex of UTF-8>` or plain values.
fn parse_aggregation_filters(filters: &[String]) -> Result<Vec<(String, Vec<String>)>, Error> {
    filters
        .iter()
        .map(|filter| {
            let (field, rest) = filter.split_once(':').ok_or_else(|| {
                invalid(format!(
                    "the aggregation filter '{filter}' must look like field:\"token\""
                ))
            })?;
            let rest = rest.trim();
            let tokens: Vec<&str> = match rest.strip_prefix("or(").and_then(|r| r.strip_suffix(')'))
            {
                Some(inner) => inner.split(',').map(str::trim).collect(),
                None => vec![rest],
            };
            let values = tokens
                .into_iter()
                .map(|token| {
                    let unquoted = token.trim_matches('"');
                    match unquoted.strip_prefix("ǂǂ") {
                        Some(hex) => decode_hex(hex).ok_or_else(|| {
                            invalid(format!(
                                "the aggregation filter token '{token}' is not valid"
                            ))
                        }),
                        None => Ok(unquoted.to_string()),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((field.trim().to_string(), values))
        })
        .collect()
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

/// The refinement token Graph hands out for a bucket: `"ǂǂ<hex of UTF-8>"`, quotes included.
pub fn bucket_token(key: &str) -> String {
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    format!("\"ǂǂ{hex}\"")
}

struct Match {
    source: usize,
    score: Score,
    address: DocAddress,
    /// Resolved only for the returned page (resolving costs a dictionary lookup).
    id: String,
    sort_keys: Vec<SortKey>,
}

#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum SortKey {
    Missing,
    Number(f64),
    Text(Arc<str>),
}

struct Ranked {
    total: usize,
    /// The matches of the requested page, ids resolved.
    page: Vec<Match>,
    aggregations: Vec<(String, Vec<Bucket>)>,
}

fn run_on_indexes(
    sources: &[Source],
    parsed: &kql::Query,
    request: &SearchRequest,
    filters: &[(String, Vec<String>)],
) -> Result<Ranked, Error> {
    // Only the best `keep` matches can reach the page: each collector cuts its list back to them
    // whenever it doubles, so memory follows the page asked for, not the number of matches.
    let keep = request.from.saturating_add(request.size);
    let order = Arc::new(Order {
        by_score: request.sort.is_empty(),
        descending: request
            .sort
            .iter()
            .map(|(_, descending)| *descending)
            .collect(),
        keep,
    });
    let mut total = 0usize;
    let mut matches = Vec::new();
    let mut bucket_counts: Vec<HashMap<String, u64>> =
        vec![HashMap::new(); request.aggregations.len()];
    let mut searchers = Vec::with_capacity(sources.len());
    for (source_index, (_, connection_index, terms)) in sources.iter().enumerate() {
        let translator = Translator {
            index: &connection_index.index,
            mapping: &connection_index.mapping,
            schema: &connection_index.schema,
        };
        let main = translator.translate(parsed).map_err(|e| invalid(e.0))?;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, main)];
        for (field, values) in filters {
            clauses.push((Occur::Must, filter_query(connection_index, field, values)?));
        }
        clauses.extend(trimming(&connection_index.mapping, terms));
        let query = BooleanQuery::new(clauses);
        let searcher = connection_index.reader.searcher();
        let collector = RankingCollector {
            source: source_index,
            connection_index: connection_index.clone(),
            sort_fields: request.sort.iter().map(|(name, _)| name.clone()).collect(),
            aggregation_fields: request
                .aggregations
                .iter()
                .map(|a| a.field.clone())
                .collect(),
            order: order.clone(),
        };
        let found = searcher
            .search(&query, &collector)
            .map_err(|e| Error::Internal(e.to_string()))?;
        total += found.total;
        matches.extend(found.best);
        order.cut(&mut matches);
        for (counts, totals) in found.counts.into_iter().zip(bucket_counts.iter_mut()) {
            for (key, count) in counts {
                *totals.entry(key).or_default() += count;
            }
        }
        searchers.push(searcher);
    }
    matches.sort_by(|a, b| order.compare(a, b));
    let mut page: Vec<Match> = matches
        .into_iter()
        .skip(request.from)
        .take(request.size)
        .collect();
    for matched in &mut page {
        let segment = searchers[matched.source].segment_reader(matched.address.segment_ord);
        if let Ok(Some(column)) = segment.fast_fields().str("id") {
            if let Some(ord) = column.term_ords(matched.address.doc_id).next() {
                let _ = column.ord_to_str(ord, &mut matched.id);
            }
        }
    }
    let aggregations = request
        .aggregations
        .iter()
        .zip(bucket_counts)
        .map(|(aggregation, counts)| (aggregation.field.clone(), buckets(aggregation, counts)))
        .collect();
    Ok(Ranked {
        total,
        page,
        aggregations,
    })
}

/// The order of results: relevance, or the requested sort properties; ties by index position.
struct Order {
    by_score: bool,
    /// Per sort property: descending.
    descending: Vec<bool>,
    /// How many of the best matches can reach the page.
    keep: usize,
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

    /// Keeps the best `keep` matches once the list has grown to twice that (amortized n log k).
    fn cut(&self, matches: &mut Vec<Match>) {
        if matches.len() >= self.keep.saturating_mul(2).max(1024) {
            matches.sort_by(|a, b| self.compare(a, b));
            matches.truncate(self.keep);
        }
    }
}

/// Collects, per segment and without holding every match: the number of matches, the best
/// matches with their sort keys, and the aggregation counts.
struct RankingCollector {
    source: usize,
    connection_index: Arc<ConnectionIndex>,
    sort_fields: Vec<String>,
    aggregation_fields: Vec<String>,
    order: Arc<Order>,
}

struct Collected {
    total: usize,
    best: Vec<Match>,
    /// Per aggregation: counts per bucket key.
    counts: Vec<HashMap<String, u64>>,
}

struct RankingSegmentCollector {
    source: usize,
    segment: SegmentOrdinal,
    columns: SegmentColumns,
    order: Arc<Order>,
    total: usize,
    best: Vec<Match>,
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
        let columns = SegmentColumns {
            sort: self
                .sort_fields
                .iter()
                .map(|name| open_column(&self.connection_index, reader, name))
                .collect(),
            aggregations: self
                .aggregation_fields
                .iter()
                .map(|name| {
                    (
                        open_column(&self.connection_index, reader, name),
                        HashMap::new(),
                    )
                })
                .collect(),
            text_cache: HashMap::new(),
        };
        Ok(RankingSegmentCollector {
            source: self.source,
            segment,
            columns,
            order: self.order.clone(),
            total: 0,
            best: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.order.by_score
    }

    fn merge_fruits(&self, fruits: Vec<Collected>) -> tantivy::Result<Collected> {
        let mut merged = Collected {
            total: 0,
            best: Vec::new(),
            counts: vec![HashMap::new(); self.aggregation_fields.len()],
        };
        for fruit in fruits {
            merged.total += fruit.total;
            merged.best.extend(fruit.best);
            self.order.cut(&mut merged.best);
            for (counts, totals) in fruit.counts.into_iter().zip(merged.counts.iter_mut()) {
                for (key, count) in counts {
                    *totals.entry(key).or_default() += count;
                }
            }
        }
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
            text_cache,
        } = &mut self.columns;
        for (column, counts) in aggregations.iter_mut() {
            column.count(doc, counts);
        }
        let sort_keys = sort
            .iter()
            .map(|column| column.sort_key(doc, text_cache))
            .collect();
        self.best.push(Match {
            source: self.source,
            score,
            address: DocAddress::new(self.segment, doc),
            id: String::new(),
            sort_keys,
        });
        self.order.cut(&mut self.best);
    }

    fn harvest(self) -> Collected {
        let counts = self
            .columns
            .aggregations
            .into_iter()
            .map(|(column, counts)| {
                let mut keyed: HashMap<String, u64> = HashMap::new();
                for (value, count) in counts {
                    *keyed.entry(column.key_of(value)).or_default() += count;
                }
                keyed
            })
            .collect();
        Collected {
            total: self.total,
            best: self.best,
            counts,
        }
    }
}

fn compare_keys(a: &SortKey, b: &SortKey) -> std::cmp::Ordering {
    match (a, b) {
        (SortKey::Number(x), SortKey::Number(y)) => x.total_cmp(y),
        (SortKey::Text(x), SortKey::Text(y)) => x.cmp(y),
        (SortKey::Missing, SortKey::Missing) => std::cmp::Ordering::Equal,
        (SortKey::Missing, _) => std::cmp::Ordering::Greater,
        (_, SortKey::Missing) => std::cmp::Ordering::Less,
        (SortKey::Number(_), SortKey::Text(_)) => std::cmp::Ordering::Less,
        (SortKey::Text(_), SortKey::Number(_)) => std::cmp::Ordering::Greater,
    }
}

struct SegmentColumns {
    sort: Vec<ValueColumn>,
    /// Per aggregation: its column and the counts per value in this segment.
    aggregations: Vec<(ValueColumn, HashMap<CountedValue, u64>)>,
    /// Text sort keys already resolved from term ordinals.
    text_cache: HashMap<u64, Arc<str>>,
}

/// A value counted in one segment: a text term ordinal (resolved later) or a rendered key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum CountedValue {
    Ordinal(u64),
    Key(String),
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

fn filter_query(
    connection_index: &ConnectionIndex,
    field: &str,
    values: &[String],
) -> Result<Box<dyn Query>, Error> {
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
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for value in values {
        let term = match property.property_type.element() {
            PropertyType::String | PropertyType::Principal => {
                fields.keyword.map(|f| Term::from_field_text(f, value))
            }
            PropertyType::Boolean => fields
                .value
                .and_then(|f| typed_term(f, PropertyType::Boolean, value)),
            element => fields.value.and_then(|f| typed_term(f, element, value)),
        };
        let term =
            term.ok_or_else(|| invalid(format!("'{value}' is not a valid value for '{field}'")))?;
        clauses.push((
            Occur::Should,
            Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
        ));
    }
    Ok(Box::new(BooleanQuery::new(clauses)))
}

fn buckets(aggregation: &AggregationRequest, counts: HashMap<String, u64>) -> Vec<Bucket> {
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
            token: bucket_token(&key),
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

fn group_ids(page: &[&Match]) -> Vec<(usize, Vec<String>)> {
    let mut groups: Vec<(usize, Vec<String>)> = Vec::new();
    for matched in page {
        match groups
            .iter_mut()
            .find(|(source, _)| *source == matched.source)
        {
            Some((_, ids)) => ids.push(matched.id.clone()),
            None => groups.push((matched.source, vec![matched.id.clone()])),
        }
    }
    groups
}

/// The retrievable properties asked for (all retrievable ones when `fields` is absent);
/// `label_<label>` names the property carrying that label; other names are ignored.
fn selected_properties(
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
fn summary(item: &ExternalItem, schema: &Schema, search_terms: &[String]) -> String {
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
