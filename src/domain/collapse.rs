//! `collapseProperties` of a search request (spec/search.md §2): results that share the values
//! of the collapse fields are cut to each level's `limit`, in rank order.
//!
//! Levels nest: level `i` groups by the fields of levels `0..=i` together, and a result is left
//! out when `limit` results of its group at some level come before it. A result without a value
//! for a level's fields is never collapsed at that level or the deeper ones. Which index values a result has is
//! the caller's business: here a result is its list of group keys, one per level.

use std::collections::HashMap;

use super::Violation;

/// `collapseProperty.limit` is an Int16 from 1 (search-concept-collapse).
pub const MAX_COLLAPSE_LIMIT: i64 = i16::MAX as i64;
/// Levels and fields per level at most (Graph documents none; gcemu's bound).
pub const MAX_COLLAPSE_LEVELS: usize = 5;
pub const MAX_COLLAPSE_FIELDS: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollapseLevel {
    pub fields: Vec<String>,
    pub limit: usize,
}

/// A result's group key at each level (`None`: no value, never collapsed at that level).
pub type GroupKeys = Vec<Option<u64>>;

/// Checks the levels' shape: fields given, limits within 1..=32767 and never larger than the
/// level above. (Whether the fields are queryable and refinable depends on the schema.)
pub fn check_levels(levels: &[CollapseLevel], target: &str) -> Result<(), Violation> {
    if levels.len() > MAX_COLLAPSE_LEVELS {
        return Err(Violation::new(
            target,
            format!(
                "{target} holds {} levels; gcemu accepts at most {MAX_COLLAPSE_LEVELS}",
                levels.len()
            ),
        ));
    }
    for (index, level) in levels.iter().enumerate() {
        if level.fields.is_empty() || level.fields.len() > MAX_COLLAPSE_FIELDS {
            return Err(Violation::new(
                format!("{target}[{index}].fields"),
                format!("{target}[{index}].fields must name 1 to {MAX_COLLAPSE_FIELDS} properties"),
            ));
        }
        if level.limit == 0 || level.limit as i64 > MAX_COLLAPSE_LIMIT {
            return Err(Violation::new(
                format!("{target}[{index}].limit"),
                format!(
                    "{target}[{index}].limit must be an integer from 1 to {MAX_COLLAPSE_LIMIT}"
                ),
            ));
        }
        if let Some(previous) = index.checked_sub(1).map(|i| &levels[i]) {
            if level.limit > previous.limit {
                return Err(Violation::new(
                    format!("{target}[{index}].limit"),
                    format!(
                        "{target}[{index}].limit is {}, more than the {} of the level above; each level's limit must be at most the previous one",
                        level.limit, previous.limit
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Decides, result by result in rank order, which results are kept.
#[derive(Debug)]
pub struct Collapser<'a> {
    levels: &'a [CollapseLevel],
    kept: Vec<HashMap<u64, usize>>,
}

impl<'a> Collapser<'a> {
    pub fn new(levels: &'a [CollapseLevel]) -> Collapser<'a> {
        Collapser {
            levels,
            kept: vec![HashMap::new(); levels.len()],
        }
    }

    /// Whether the next result (in rank order) is kept; counts it when it is.
    pub fn admit(&mut self, keys: &[Option<u64>]) -> bool {
        let full = self
            .levels
            .iter()
            .zip(&self.kept)
            .zip(keys)
            .any(|((level, kept), key)| {
                key.is_some_and(|key| kept.get(&key).copied().unwrap_or(0) >= level.limit)
            });
        if full {
            return false;
        }
        for (kept, key) in self.kept.iter_mut().zip(keys) {
            if let Some(key) = key {
                *kept.entry(*key).or_default() += 1;
            }
        }
        true
    }
}

/// Of candidates sorted in rank order, the positions that can still be among the first `wanted`
/// kept results whatever better results are found later: the first `wanted` that the collapse
/// keeps. The levels' groups nest, so the results kept form a greedy basis of a laminar
/// matroid: adding candidates never lets a left-out result back in, and never lowers the number
/// of results kept before a position. Memory therefore follows the page, not the matches.
pub fn still_needed(
    levels: &[CollapseLevel],
    sorted: &[&[Option<u64>]],
    wanted: usize,
) -> Vec<usize> {
    let mut collapser = Collapser::new(levels);
    sorted
        .iter()
        .enumerate()
        .filter(|(_, keys)| collapser.admit(keys))
        .map(|(position, _)| position)
        .take(wanted)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(limit: usize) -> CollapseLevel {
        CollapseLevel {
            fields: vec!["f".into()],
            limit,
        }
    }

    #[test]
    fn keeps_limit_per_group_in_rank_order() {
        let levels = [level(2)];
        let mut collapser = Collapser::new(&levels);
        let keys = [
            Some(1),
            Some(1),
            Some(2),
            Some(1),
            None,
            None,
            Some(2),
            Some(2),
        ];
        let kept: Vec<bool> = keys.iter().map(|k| collapser.admit(&[*k])).collect();
        assert_eq!(kept, [true, true, true, false, true, true, true, false]);
    }

    #[test]
    fn nested_levels_cut_at_each_level() {
        let levels = [level(3), level(1)];
        let mut collapser = Collapser::new(&levels);
        // (group, subgroup) keys: level 1 keys combine both fields.
        let results = [(1, 10), (1, 10), (1, 11), (1, 12), (1, 13), (2, 20)];
        let kept: Vec<bool> = results
            .iter()
            .map(|(a, b)| collapser.admit(&[Some(*a), Some(*b)]))
            .collect();
        assert_eq!(kept, [true, false, true, true, false, true]);
    }

    #[test]
    fn limits_must_not_grow() {
        assert!(check_levels(&[level(3), level(3)], "c").is_ok());
        let violation = check_levels(&[level(2), level(3)], "collapseProperties").unwrap_err();
        assert_eq!(violation.target, "collapseProperties[1].limit");
        assert_eq!(
            check_levels(&[level(0)], "c").unwrap_err().target,
            "c[0].limit"
        );
        assert_eq!(
            check_levels(&[level(40_000)], "c").unwrap_err().target,
            "c[0].limit"
        );
        let no_fields = CollapseLevel {
            fields: vec![],
            limit: 1,
        };
        assert_eq!(
            check_levels(&[no_fields], "c").unwrap_err().target,
            "c[0].fields"
        );
    }

    #[test]
    fn pruning_never_drops_a_result_of_the_page() {
        // Exhaustive over small inputs: the first `wanted` kept results of the whole list are
        // the first `wanted` kept results of the needed candidates.
        let one = [level(2)];
        let two = [level(3), level(1)];
        let mut seed = 7u64;
        for round in 0..2000 {
            let levels: &[CollapseLevel] = if round % 2 == 0 { &one } else { &two };
            let n = (seed % 12) as usize + 1;
            let keys: Vec<Vec<Option<u64>>> = (0..n)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let first = (seed >> 60 != 0).then_some((seed >> 33) % 3);
                    let second = first
                        .filter(|_| seed >> 59 & 1 == 1)
                        .map(|f| f * 10 + (seed >> 40) % 3);
                    vec![first, second][..levels.len()].to_vec()
                })
                .collect();
            for wanted in 1..=4 {
                let all: Vec<&[Option<u64>]> = keys.iter().map(Vec::as_slice).collect();
                let mut collapser = Collapser::new(levels);
                let expected: Vec<usize> = (0..n)
                    .filter(|i| collapser.admit(all[*i]))
                    .take(wanted)
                    .collect();
                let needed = still_needed(levels, &all, wanted);
                let mut collapser = Collapser::new(levels);
                let got: Vec<usize> = needed
                    .into_iter()
                    .filter(|i| collapser.admit(all[*i]))
                    .take(wanted)
                    .collect();
                assert_eq!(got, expected, "{keys:?} wanted {wanted}");
            }
        }
    }
}
