//! The caller's visibility as a cached filter: for each segment, the sorted ids of the documents
//! whose ACL grants one of the caller's principal terms and denies none, computed once per
//! (principal set, segment) and reused by every later query of anyone with that principal set.
//!
//! Segments never change once written (deletes are applied by tantivy's alive bitset when
//! collecting), so an entry stays right for the segment's life; a changed membership gives a new
//! principal set, hence a new key. Entries are bounded by bytes: when the cache is full it
//! starts afresh.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use tantivy::index::SegmentId;
use tantivy::query::{BooleanQuery, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED};

use super::mapping::IndexMapping;
use super::query::trimming;

/// Bytes of document ids the cache of one connection holds at most.
const MAX_CACHED_BYTES: usize = 64 * 1024 * 1024;

#[derive(Default)]
pub struct VisibilityCache {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    docs: HashMap<(u64, SegmentId), Arc<Vec<DocId>>>,
    bytes: usize,
}

impl VisibilityCache {
    fn get(&self, key: &(u64, SegmentId)) -> Option<Arc<Vec<DocId>>> {
        self.entries
            .lock()
            .expect("visibility cache")
            .docs
            .get(key)
            .cloned()
    }

    fn put(&self, key: (u64, SegmentId), docs: Arc<Vec<DocId>>) {
        let mut entries = self.entries.lock().expect("visibility cache");
        let size = docs.len() * std::mem::size_of::<DocId>();
        if entries.bytes + size > MAX_CACHED_BYTES {
            entries.docs.clear();
            entries.bytes = 0;
        }
        if entries.docs.insert(key, docs).is_none() {
            entries.bytes += size;
        }
    }
}

/// A filter matching the documents the holder of `principal_terms` may see (score 0).
#[derive(Clone)]
pub struct VisibleQuery {
    cache: Arc<VisibilityCache>,
    fingerprint: u64,
    terms: Arc<[String]>,
    mapping: Arc<IndexMapping>,
}

impl std::fmt::Debug for VisibleQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VisibleQuery({:016x})", self.fingerprint)
    }
}

impl VisibleQuery {
    /// `principal_terms` sorted and without duplicates, as `Principals::terms` gives them.
    pub fn new(
        cache: Arc<VisibilityCache>,
        mapping: Arc<IndexMapping>,
        principal_terms: Arc<[String]>,
    ) -> VisibleQuery {
        let mut hasher = DefaultHasher::new();
        principal_terms.hash(&mut hasher);
        VisibleQuery {
            cache,
            fingerprint: hasher.finish(),
            terms: principal_terms,
            mapping,
        }
    }
}

impl Query for VisibleQuery {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        // The trimming query's weight is built on a cache miss only: building it (an FST of
        // the principal terms) costs more than the search it serves.
        Ok(Box::new(VisibleWeight {
            cache: self.cache.clone(),
            fingerprint: self.fingerprint,
            terms: self.terms.clone(),
            mapping: self.mapping.clone(),
            schema: enable_scoring.schema().clone(),
        }))
    }
}

struct VisibleWeight {
    cache: Arc<VisibilityCache>,
    fingerprint: u64,
    terms: Arc<[String]>,
    mapping: Arc<IndexMapping>,
    schema: tantivy::schema::Schema,
}

impl VisibleWeight {
    fn visible(&self, reader: &SegmentReader) -> tantivy::Result<Arc<Vec<DocId>>> {
        let key = (self.fingerprint, reader.segment_id());
        if let Some(docs) = self.cache.get(&key) {
            return Ok(docs);
        }
        let trimming = BooleanQuery::new(trimming(&self.mapping, &self.terms));
        let weight = trimming.weight(EnableScoring::disabled_from_schema(&self.schema))?;
        let mut scorer = weight.scorer(reader, 1.0)?;
        let mut docs = Vec::new();
        let mut doc = scorer.doc();
        while doc != TERMINATED {
            docs.push(doc);
            doc = scorer.advance();
        }
        docs.shrink_to_fit();
        let docs = Arc::new(docs);
        self.cache.put(key, docs.clone());
        Ok(docs)
    }
}

impl Weight for VisibleWeight {
    fn scorer(&self, reader: &SegmentReader, _boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(SortedDocs {
            docs: self.visible(reader)?,
            cursor: 0,
        }))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let visible = self.visible(reader)?.binary_search(&doc).is_ok();
        if !visible {
            return Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} is not visible"
            )));
        }
        Ok(Explanation::new("visible", 0.0))
    }
}

/// A docset over sorted document ids shared with the cache; seeks gallop then bisect.
struct SortedDocs {
    docs: Arc<Vec<DocId>>,
    cursor: usize,
}

impl DocSet for SortedDocs {
    fn advance(&mut self) -> DocId {
        self.cursor = (self.cursor + 1).min(self.docs.len());
        self.doc()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        let docs = &self.docs[self.cursor.min(self.docs.len())..];
        if docs.first().is_none_or(|first| *first >= target) {
            return self.doc();
        }
        let mut step = 1usize;
        while step < docs.len() && docs[step] < target {
            step *= 2;
        }
        let window = &docs[step / 2..docs.len().min(step + 1)];
        let offset = window.partition_point(|doc| *doc < target);
        self.cursor += step / 2 + offset;
        self.doc()
    }

    fn doc(&self) -> DocId {
        self.docs.get(self.cursor).copied().unwrap_or(TERMINATED)
    }

    fn size_hint(&self) -> u32 {
        self.docs.len() as u32
    }
}

impl Scorer for SortedDocs {
    fn score(&mut self) -> Score {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seek_lands_on_the_first_document_at_or_after_the_target() {
        let docs: Vec<DocId> = (0..1000).map(|n| n * 3 + 1).collect();
        for start in [0usize, 5, 400] {
            for target in [0u32, 1, 2, 3, 4, 500, 1500, 2998, 2999, 3000, 5000] {
                let mut set = SortedDocs {
                    docs: Arc::new(docs.clone()),
                    cursor: start,
                };
                let expected = docs[start..]
                    .iter()
                    .copied()
                    .find(|d| *d >= target)
                    .unwrap_or(TERMINATED);
                assert_eq!(set.seek(target), expected, "from {start} to {target}");
            }
        }
        let mut empty = SortedDocs {
            docs: Arc::new(Vec::new()),
            cursor: 0,
        };
        assert_eq!(empty.doc(), TERMINATED);
        assert_eq!(empty.seek(3), TERMINATED);
        assert_eq!(empty.advance(), TERMINATED);
    }
}
