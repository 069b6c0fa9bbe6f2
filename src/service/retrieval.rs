//! The Copilot Retrieval API over external items (spec/batch-and-retrieval.md §2): the question's
//! words find and rank items through the search path (so hits are trimmed by ACLs exactly as
//! search is, and read their own writes), then each hit's text is cut into passages and the
//! passages that best match the question become its extracts.

use serde_json::{Map, Value};

use super::search::{self, SearchRequest};
use super::Error;
use crate::domain::ids::ConnectionId;
use crate::domain::item::{strip_html, ContentType, ExternalItem};
use crate::domain::kql;
use crate::domain::principal::Caller;
use crate::domain::retrieval::{self, MAX_EXTRACTS};
use crate::domain::schema::Schema;
use crate::state::AppState;
use crate::store;

#[derive(Debug, Clone)]
pub struct RetrievalRequest {
    pub query_string: String,
    /// `dataSourceConfiguration.externalItem.connections`; every connection of the tenant when `None`.
    pub connection_ids: Option<Vec<ConnectionId>>,
    pub filter_expression: Option<String>,
    pub resource_metadata: Vec<String>,
    pub maximum_number_of_results: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Extract {
    pub text: String,
    pub relevance_score: f64,
}

#[derive(Debug, Clone)]
pub struct RetrievalHit {
    pub connection_id: ConnectionId,
    pub item_id: String,
    /// The value of the `url`-labelled property.
    pub web_url: Option<String>,
    pub extracts: Vec<Extract>,
    pub resource_metadata: Map<String, Value>,
    pub sensitivity_label_id: Option<String>,
}

pub async fn retrieve(
    state: &AppState,
    caller: &Caller,
    request: RetrievalRequest,
) -> Result<Vec<RetrievalHit>, Error> {
    let Some(user) = caller.user.clone() else {
        return Err(Error::Forbidden(
            "the Copilot Retrieval API needs a delegated (user) token; application permissions are not supported".into(),
        ));
    };
    let connection_ids = match request.connection_ids.clone() {
        Some(ids) => ids,
        None => {
            let tenant = caller.tenant.clone();
            state
                .store
                .read(move |db| store::connections::list(db, &tenant))
                .await?
                .into_iter()
                .map(|connection| connection.id)
                .collect()
        }
    };
    let words = retrieval::query_words(&request.query_string);
    let question = if words.is_empty() {
        kql::Query::All
    } else {
        kql::Query::Or(words.iter().cloned().map(kql::Query::Term).collect())
    };
    let filter = request
        .filter_expression
        .as_deref()
        .filter(|filter| !filter.trim().is_empty())
        .and_then(|filter| match kql::parse(filter) {
            Ok(parsed) => Some(parsed),
            Err(error) => {
                tracing::info!(
                    filter = %crate::domain::excerpt(filter, 200),
                    reason = %error.message,
                    "retrieval runs without its filterExpression, which is not valid KQL"
                );
                None
            }
        });
    let search_request = SearchRequest {
        size: request.maximum_number_of_results,
        fields: Some(request.resource_metadata.clone()),
        ..SearchRequest::new(connection_ids, request.query_string.clone())
    };
    let found = match filter {
        Some(filter) => {
            let filtered = kql::Query::And(vec![question.clone(), filter]);
            match search::run(state, caller, &user, search_request.clone(), filtered).await {
                // A filter over properties the schema does not let one query: as invalid KQL,
                // the question runs without it.
                Err(Error::Invalid(violation)) => {
                    tracing::info!(
                        reason = %violation.message,
                        "retrieval runs without its filterExpression"
                    );
                    search::run(state, caller, &user, search_request, question).await?
                }
                other => other?,
            }
        }
        None => search::run(state, caller, &user, search_request, question).await?,
    };
    let mut hits = Vec::with_capacity(found.hits.len());
    let mut sources = Vec::with_capacity(found.hits.len());
    for hit in found.hits {
        let schema = state
            .index
            .effective_schema(&caller.tenant, &hit.connection_id);
        hits.push(RetrievalHit {
            web_url: schema
                .as_deref()
                .and_then(|schema| web_url(&hit.item.item, schema)),
            connection_id: hit.connection_id,
            item_id: hit.item_id,
            extracts: Vec::new(),
            resource_metadata: hit.properties,
            sensitivity_label_id: hit.item.item.sensitivity_label_id.clone(),
        });
        sources.push((hit.item, schema));
    }
    // Stripping HTML and cutting passages is CPU work on up to 25 items: off the async workers.
    let extracts = tokio::task::spawn_blocking(move || {
        let texts: Vec<String> = sources
            .iter()
            .map(|(item, schema)| {
                schema
                    .as_deref()
                    .map(|schema| item_text(&item.item, schema))
                    .unwrap_or_default()
            })
            .collect();
        extracts(&texts, &words)
    })
    .await
    .map_err(|error| Error::Internal(error.to_string()))?;
    for (hit, extracts) in hits.iter_mut().zip(extracts) {
        hit.extracts = extracts;
    }
    Ok(hits)
}

/// The passages of each text that best match `words` (BM25 over all the texts' passages), best
/// first; a text with no matching passage yields its first passage with a score of 0.
pub fn extracts(texts: &[String], words: &[String]) -> Vec<Vec<Extract>> {
    let cut: Vec<Vec<&str>> = texts.iter().map(|text| retrieval::passages(text)).collect();
    let all: Vec<&str> = cut.iter().flatten().copied().collect();
    let scores = retrieval::score_passages(&all, words);
    let mut offset = 0;
    cut.iter()
        .map(|passages| {
            let mut scored: Vec<(usize, f64)> = (0..passages.len())
                .map(|index| (index, scores[offset + index]))
                .collect();
            offset += passages.len();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut best: Vec<Extract> = scored
                .iter()
                .filter(|(_, score)| *score > 0.0)
                .take(MAX_EXTRACTS)
                .map(|(index, score)| Extract {
                    text: passages[*index].to_string(),
                    relevance_score: retrieval::relevance(*score),
                })
                .collect();
            if best.is_empty() {
                best.extend(passages.first().map(|passage| Extract {
                    text: passage.to_string(),
                    relevance_score: 0.0,
                }));
            }
            best
        })
        .collect()
}

/// What retrieval reads of an item: its searchable properties' text, then its content.
pub fn item_text(item: &ExternalItem, schema: &Schema) -> String {
    let mut text = String::new();
    for property in schema.properties.iter().filter(|p| p.is_searchable) {
        let Some((_, value)) = item
            .properties
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&property.name))
        else {
            continue;
        };
        let values: Vec<&str> = match value {
            Value::String(text) => vec![text.as_str()],
            Value::Array(values) => values.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for value in values {
            if text.len() >= retrieval::MAX_TEXT_BYTES {
                break;
            }
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            text.push_str(value);
            // A property value ends a sentence, so it can end a passage.
            if !value.ends_with(['.', '!', '?']) {
                text.push('.');
            }
            text.push('\n');
        }
    }
    if let Some(content) = &item.content {
        // Only the start of the content can reach the passages: strip no more than that.
        let mut end = content.value.len().min(4 * retrieval::MAX_TEXT_BYTES);
        while !content.value.is_char_boundary(end) {
            end -= 1;
        }
        let start = &content.value[..end];
        match content.content_type {
            ContentType::Text => text.push_str(start),
            ContentType::Html => text.push_str(&strip_html(start)),
        }
    }
    text
}

/// The value of the property labelled `url`.
fn web_url(item: &ExternalItem, schema: &Schema) -> Option<String> {
    let property = schema.properties.iter().find(|p| {
        p.labels
            .iter()
            .any(|label| label.eq_ignore_ascii_case("url"))
    })?;
    item.properties
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(&property.name))
        .and_then(|(_, value)| value.as_str())
        .map(str::to_string)
}
