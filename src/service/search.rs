//! `POST /search/query` for external items, as a use case: check the request against the
//! content sources, find the caller's principals, run it on the indexes (`index::search`), load
//! the page's items in one store read, and dress the hits (properties, summary, result template).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::hit_cache::CachedHit;
use super::{access, Error};
use crate::domain::acl::{evaluate, Trimming, UserIdentity};
use crate::domain::collapse::{self, CollapseLevel};
use crate::domain::hit::{selected_properties, summarize, summary_text};
use crate::domain::ids::{ConnectionId, ItemId};
use crate::domain::kql;
use crate::domain::principal::Caller;
use crate::domain::refiner::{self, Aggregation, AggregationFilter, Bucket};
use crate::domain::result_template::{self, DisplayTemplate};
use crate::domain::Violation;
use crate::index::search::{self as index_search, Plan, SearchError, Source};
use crate::state::AppState;
use crate::store;

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
    pub aggregations: Vec<Aggregation>,
    pub aggregation_filters: Vec<String>,
    /// (property, descending)
    pub sort: Vec<(String, bool)>,
    pub collapse: Vec<CollapseLevel>,
    /// `resultTemplateOptions.enableResultTemplate`.
    pub result_templates: bool,
    /// What the caller may see (the API), or what they may not (the console).
    pub trimming: Trimming,
}

impl SearchRequest {
    /// A request for `query_string` on `connection_ids` with every option at its default.
    pub fn new(connection_ids: Vec<ConnectionId>, query_string: String) -> SearchRequest {
        SearchRequest {
            connection_ids,
            query_string,
            query_template: None,
            from: 0,
            size: DEFAULT_PAGE_SIZE,
            fields: None,
            aggregations: Vec::new(),
            aggregation_filters: Vec::new(),
            sort: Vec::new(),
            collapse: Vec::new(),
            result_templates: false,
            trimming: Trimming::Visible,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SearchHit {
    pub item_id: String,
    pub connection_id: ConnectionId,
    pub rank: usize,
    pub summary: String,
    pub properties: Map<String, Value>,
    /// With result templates asked for: the key of the item's template in `result_templates`.
    pub result_template_id: Option<String>,
    /// With collapse: whether results sharing this hit's collapse values were left out.
    pub is_collapsed: Option<bool>,
    /// The item version the hit shows, as stored.
    pub item: Arc<CachedHit>,
}

#[derive(Debug, Clone)]
pub struct SearchResult {
    pub search_terms: Vec<String>,
    pub total: usize,
    pub more_results_available: bool,
    pub hits: Vec<SearchHit>,
    pub aggregations: Vec<(String, Vec<Bucket>)>,
    /// With result templates asked for: (key, displayName, layout) of each template a hit uses.
    pub result_templates: Option<Vec<(String, String, Value)>>,
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
    let max_size = state.config.search_max_size;
    if request.size > max_size {
        return Err(invalid(format!(
            "size must be at most {max_size}, it is {}",
            request.size
        )));
    }
    if request.sort.len() > MAX_SORT_PROPERTIES {
        return Err(invalid(format!(
            "at most {MAX_SORT_PROPERTIES} sortProperties are allowed, {} were sent",
            request.sort.len()
        )));
    }
    collapse::check_levels(&request.collapse, "collapseProperties").map_err(Error::Invalid)?;
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

/// An item the query matches that the user may not see, and why.
#[derive(Debug, Clone)]
pub struct HiddenItem {
    pub connection_id: ConnectionId,
    pub item_id: String,
    /// The value of the property labelled `title`, if it has one.
    pub title: Option<String>,
    pub reason: String,
}

/// What `query_string` matches in the tenant's connections (`connection_ids`, all when empty)
/// that `user` may not see: the number of such items and the first `size`, each with the reason
/// (the console's "hidden from this person" list).
pub async fn hidden(
    state: &AppState,
    tenant: &crate::domain::ids::TenantId,
    user: &str,
    query_string: &str,
    connection_ids: Vec<ConnectionId>,
    size: usize,
) -> Result<(usize, Vec<HiddenItem>), Error> {
    let Some(directory_user) = access::find_user(state, tenant, user).await? else {
        return Err(Error::NotFound {
            kind: super::ResourceKind::User,
            id: user.to_string(),
        });
    };
    let connection_ids = if connection_ids.is_empty() {
        let lookup = tenant.clone();
        state
            .store
            .read(move |db| store::connections::list(db, &lookup))
            .await?
            .into_iter()
            .map(|connection| connection.id)
            .collect()
    } else {
        connection_ids
    };
    if connection_ids.is_empty() {
        return Ok((0, Vec::new()));
    }
    let caller = Caller {
        tenant: tenant.clone(),
        user: Some(directory_user.id.as_str().to_string()),
        ..Caller::default_app()
    };
    let request = SearchRequest {
        size: size.min(state.config.search_max_size),
        trimming: Trimming::Hidden,
        ..SearchRequest::new(connection_ids, query_string.to_string())
    };
    let result = search(state, &caller, request).await?;
    let identity = access::identity_of(&directory_user);
    let mut hidden = Vec::with_capacity(result.hits.len());
    for hit in &result.hits {
        let principals =
            access::principals(state, tenant, identity.clone(), &hit.connection_id).await?;
        let title = state
            .index
            .effective_schema(tenant, &hit.connection_id)
            .and_then(|schema| {
                let property = schema
                    .properties
                    .iter()
                    .find(|p| p.labels.contains(&"title"))?;
                hit.item
                    .item
                    .properties
                    .get(&property.name)?
                    .as_str()
                    .map(str::to_string)
            });
        hidden.push(HiddenItem {
            connection_id: hit.connection_id.clone(),
            item_id: hit.item_id.clone(),
            title,
            reason: evaluate(&hit.item.item.acl, &principals).reason,
        });
    }
    Ok((result.total, hidden))
}

/// A content source as the use case sees it.
struct Searched {
    connection_id: ConnectionId,
    templates: Vec<DisplayTemplate>,
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

    // One store read at most for the content sources: whether those without an index exist,
    // and the result templates when asked for. A connection with an index exists (deleting a
    // connection drops its index before the answer).
    let indexes: Vec<_> = request
        .connection_ids
        .iter()
        .map(|id| state.index.get(&caller.tenant, id))
        .collect();
    let needs_store = request.result_templates || indexes.iter().any(Option::is_none);
    let settings: Vec<Option<Option<Value>>> = if needs_store {
        let (tenant, lookups) = (caller.tenant.clone(), request.connection_ids.clone());
        state
            .store
            .read(move |db| {
                lookups
                    .iter()
                    .map(|id| store::connections::search_settings(db, &tenant, id))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?
    } else {
        indexes.iter().map(|_| Some(None)).collect()
    };
    let mut searched = Vec::new();
    let mut sources = Vec::new();
    for ((connection_id, settings), index) in
        request.connection_ids.iter().zip(settings).zip(indexes)
    {
        let Some(settings) = settings else {
            return Err(invalid(format!(
                "the content source '/external/connections/{connection_id}' does not exist"
            )));
        };
        let principals =
            access::principals(state, &caller.tenant, identity.clone(), connection_id).await?;
        if let Some(reason) = state.index.failure(&caller.tenant, connection_id) {
            return Err(Error::Unavailable(format!(
                "the index of connection '{connection_id}' failed and is being rebuilt from the store ({reason}); retry shortly"
            )));
        }
        if let Some(index) = index {
            searched.push(Searched {
                connection_id: connection_id.clone(),
                templates: if request.result_templates {
                    result_template::search_result_templates(settings.as_ref())
                } else {
                    Vec::new()
                },
            });
            sources.push(Source {
                index,
                principal_terms: principals.terms(),
                trimming: request.trimming,
            });
        }
    }
    check_request(&sources, &request)?;
    let filters = request
        .aggregation_filters
        .iter()
        .enumerate()
        .map(|(position, filter)| {
            refiner::parse_aggregation_filter(filter, &format!("aggregationFilters[{position}]"))
        })
        .collect::<Result<Vec<(String, AggregationFilter)>, _>>()
        .map_err(Error::Invalid)?;
    check_refinable(&sources, filters.iter().map(|(name, _)| name), "filter on")?;

    let searched = Arc::new(searched);
    let sources = Arc::new(sources);
    let request = Arc::new(request);
    let parsed = Arc::new(parsed);
    // On a blocking thread: the index, and the hits too when every page item's version is in
    // the hit cache (the usual case once a tenant has been searched).
    let first = tokio::task::spawn_blocking({
        let (searched, sources, request, parsed) = (
            searched.clone(),
            sources.clone(),
            request.clone(),
            parsed.clone(),
        );
        let (hits, tenant) = (state.hits.clone(), caller.tenant.clone());
        move || -> Result<Stage, Error> {
            let plan = Plan {
                query: &parsed,
                filters: &filters,
                sort: &request.sort,
                aggregations: &request.aggregations,
                collapse: &request.collapse,
                from: request.from,
                size: request.size,
            };
            // Versions found in the hit cache are kept here, so that they stay at hand even if
            // the cache starts afresh meanwhile.
            let cached: std::cell::RefCell<HashMap<(usize, u64), Arc<CachedHit>>> =
                Default::default();
            let known = |source: usize, seq: u64| match hits.get(
                &tenant,
                &searched[source].connection_id,
                seq,
            ) {
                Some(hit) => {
                    cached.borrow_mut().insert((source, seq), hit);
                    true
                }
                None => false,
            };
            let outcome =
                index_search::search(&sources, &plan, &known).map_err(|error| match error {
                    SearchError::Invalid(message) => invalid(message),
                    SearchError::Tantivy(error) => Error::Internal(error.to_string()),
                })?;
            let cached = cached.into_inner();
            let items: HashMap<usize, Arc<CachedHit>> = outcome
                .page
                .iter()
                .enumerate()
                .filter_map(|(position, entry)| {
                    cached
                        .get(&(entry.source, entry.seq))
                        .map(|hit| (position, hit.clone()))
                })
                .collect();
            if items.len() == outcome.page.len() {
                return Ok(Stage::Done(dress(
                    &searched, &sources, &request, &parsed, outcome, items,
                )));
            }
            Ok(Stage::NeedItems(outcome, items))
        }
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))??;
    let (outcome, mut items) = match first {
        Stage::Done(result) => return Ok(result),
        Stage::NeedItems(outcome, items) => (outcome, items),
    };

    // The versions not cached, in one store read whatever their sources (then cached).
    let wanted: Vec<(usize, ConnectionId, String)> = outcome
        .page
        .iter()
        .enumerate()
        .filter(|(position, _)| !items.contains_key(position))
        .map(|(position, entry)| {
            (
                position,
                searched[entry.source].connection_id.clone(),
                entry.id.clone(),
            )
        })
        .collect();
    let tenant = caller.tenant.clone();
    let read = state
        .store
        .read(move |db| {
            let mut found = Vec::new();
            for (position, connection_id, id) in wanted {
                if let Ok(item_id) = ItemId::parse(&id) {
                    if let Some((item, seq)) =
                        store::items::get_versioned(db, &tenant, &connection_id, &item_id)?
                    {
                        found.push((position, connection_id, item, seq));
                    }
                }
            }
            Ok(found)
        })
        .await?;
    let hit_cache = state.hits.clone();
    let tenant = caller.tenant.clone();
    tokio::task::spawn_blocking(move || {
        // Markup is stripped once per version.
        for (position, connection_id, item, seq) in read {
            let schema = &sources[outcome.page[position].source].index.schema;
            let summary_text = summary_text(&item, schema);
            let hit = Arc::new(CachedHit {
                seq,
                item,
                summary_text,
            });
            hit_cache.put(&tenant, &connection_id, hit.clone());
            items.insert(position, hit);
        }
        dress(&searched, &sources, &request, &parsed, outcome, items)
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))
}

enum Stage {
    Done(SearchResult),
    NeedItems(index_search::Outcome, HashMap<usize, Arc<CachedHit>>),
}

/// The hits of the page from their items: properties, summary and result template.
fn dress(
    searched: &[Searched],
    sources: &[Source],
    request: &SearchRequest,
    parsed: &kql::Query,
    outcome: index_search::Outcome,
    mut items: HashMap<usize, Arc<CachedHit>>,
) -> SearchResult {
    let search_terms = kql::search_terms(parsed);
    let mut used_templates: Vec<(usize, &DisplayTemplate)> = Vec::new();
    let mut hits = Vec::with_capacity(outcome.page.len());
    for (position, entry) in outcome.page.iter().enumerate() {
        let source = &searched[entry.source];
        let schema = &sources[entry.source].index.schema;
        // An item deleted between the index and the store read is left out.
        let Some(hit) = items.remove(&position) else {
            continue;
        };
        let item = &hit.item;
        let template = result_template::choose(&source.templates, schema, &item.properties);
        if let Some(template) = template {
            if !used_templates
                .iter()
                .any(|(s, t)| *s == entry.source && t.id == template.id)
            {
                used_templates.push((entry.source, template));
            }
        }
        hits.push(SearchHit {
            item_id: item.id.as_str().to_string(),
            connection_id: source.connection_id.clone(),
            rank: request.from + position + 1,
            summary: summarize(&hit.summary_text, &search_terms),
            properties: selected_properties(item, schema, request.fields.as_deref()),
            result_template_id: template.map(|t| t.id.clone()),
            is_collapsed: entry.is_collapsed,
            item: hit.clone(),
        });
    }
    let result_templates = request.result_templates.then(|| {
        template_keys(searched, &used_templates, &mut hits, |hit| {
            searched
                .iter()
                .position(|s| s.connection_id == hit.connection_id)
        })
    });
    SearchResult {
        search_terms,
        total: outcome.total,
        more_results_available: outcome.more,
        hits,
        aggregations: outcome.aggregations,
        result_templates,
    }
}

/// The `resultTemplates` entries and each hit's `resultTemplateId`: a template's own id, or
/// `{connectionId}_{id}` when two searched connections use the same id (gcemu's choice).
fn template_keys(
    searched: &[Searched],
    used: &[(usize, &DisplayTemplate)],
    hits: &mut [SearchHit],
    source_of: impl Fn(&SearchHit) -> Option<usize>,
) -> Vec<(String, String, Value)> {
    // Shared ids are judged over every searched connection, not the page, so that a template's
    // key is the same on every page.
    let key_of = |source: usize, id: &str| {
        let shared = searched.iter().enumerate().any(|(other, s)| {
            other != source && s.templates.iter().any(|t| t.id.eq_ignore_ascii_case(id))
        });
        if shared {
            format!("{}_{id}", searched[source].connection_id)
        } else {
            id.to_string()
        }
    };
    for hit in hits.iter_mut() {
        if let (Some(id), Some(source)) = (hit.result_template_id.clone(), source_of(hit)) {
            hit.result_template_id = Some(key_of(source, &id));
        }
    }
    used.iter()
        .map(|(source, template)| {
            (
                key_of(*source, &template.id),
                template.id.clone(),
                template.layout.clone(),
            )
        })
        .collect()
}

/// Sort, aggregation and collapse fields against the sources' schemas.
fn check_request(sources: &[Source], request: &SearchRequest) -> Result<(), Error> {
    check_refinable(
        sources,
        request.sort.iter().map(|(name, _)| name),
        "sort on",
    )?;
    check_refinable(
        sources,
        request.aggregations.iter().map(|a| &a.field),
        "aggregate on",
    )?;
    for (position, aggregation) in request.aggregations.iter().enumerate() {
        for (index, range) in aggregation.ranges.iter().enumerate() {
            let target = format!("aggregations[{position}].bucketDefinition.ranges[{index}]");
            for source in sources {
                let Some(property) = source
                    .index
                    .schema
                    .property_by_name_or_alias(&aggregation.field)
                else {
                    continue;
                };
                if !refiner::ranges_apply_to(property.property_type) {
                    return Err(Error::Invalid(Violation::new(
                        format!("aggregations[{position}].bucketDefinition.ranges"),
                        format!(
                            "aggregations[{position}].bucketDefinition.ranges: '{}' is a {} property; ranges refine numbers and dates only",
                            aggregation.field,
                            property.property_type.as_str()
                        ),
                    )));
                }
                range
                    .check(property.property_type.element(), &target)
                    .map_err(Error::Invalid)?;
            }
        }
    }
    for (position, level) in request.collapse.iter().enumerate() {
        for name in &level.fields {
            let usable = sources.iter().any(|source| {
                source
                    .index
                    .schema
                    .property_by_name_or_alias(name)
                    .is_some_and(|p| p.is_queryable && p.is_refinable)
            });
            if !usable && !sources.is_empty() {
                return Err(Error::Invalid(Violation::new(
                    format!("collapseProperties[{position}].fields"),
                    format!(
                        "collapseProperties[{position}].fields: cannot collapse on '{}': only queryable and refinable properties can be used",
                        crate::domain::excerpt(name, 80)
                    ),
                )));
            }
        }
    }
    Ok(())
}

fn check_refinable<'a>(
    sources: &[Source],
    names: impl Iterator<Item = &'a String>,
    what: &str,
) -> Result<(), Error> {
    for name in names {
        let refinable = sources.iter().any(|source| {
            source
                .index
                .schema
                .property_by_name_or_alias(name)
                .is_some_and(|p| p.is_refinable)
        });
        if !refinable && !sources.is_empty() {
            return Err(invalid(format!(
                "cannot {what} '{}': only refinable properties can be used",
                crate::domain::excerpt(name, 80)
            )));
        }
    }
    Ok(())
}
