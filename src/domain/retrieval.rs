//! The Copilot Retrieval API's lexical core (spec/batch-and-retrieval.md §2): a natural-language
//! question becomes a set of words, an item's text is cut into passages, and passages are ranked
//! by BM25 over the passages of the items retrieved. The real service ranks semantically; gcemu
//! approximates relevance with words, and says so in the README.

/// The longest `queryString` the service accepts (characters).
pub const MAX_QUERY_CHARS: usize = 1_500;
/// `maximumNumberOfResults`: 1 to 25, 25 by default.
pub const MAX_RESULTS: usize = 25;
/// Words of a question used for matching; a longer question keeps its first distinct words.
pub const MAX_QUERY_WORDS: usize = 64;
/// Text of one item considered for extracts: its first 256 KiB (bounds the work per hit).
pub const MAX_TEXT_BYTES: usize = 256 * 1024;
/// A passage is cut at a sentence end once it holds this many characters, and at a word
/// boundary (or anywhere, for a run without spaces) by twice that.
pub const PASSAGE_CHARS: usize = 400;
/// Extracts returned per hit.
pub const MAX_EXTRACTS: usize = 2;

/// Words too common to tell passages apart; left out of questions.
const STOPWORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "by", "can", "could", "did", "do", "does",
    "for", "from", "had", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "me",
    "my", "no", "not", "of", "on", "or", "our", "should", "so", "than", "that", "the", "their",
    "them", "then", "there", "these", "they", "this", "to", "was", "we", "were", "what", "when",
    "where", "which", "who", "why", "will", "with", "would", "you", "your",
];

/// The words of `text` as the index tokenizes them: runs of letters and digits, lower-cased.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
}

/// The distinct words of a question that carry meaning, in order (at most `MAX_QUERY_WORDS`).
pub fn query_words(question: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    words(question)
        .filter(|word| !STOPWORDS.contains(&word.as_str()) && word.chars().count() <= 64)
        .filter(|word| seen.insert(word.clone()))
        .take(MAX_QUERY_WORDS)
        .collect()
}

/// Cuts `text` (its first `MAX_TEXT_BYTES`) into passages of about `PASSAGE_CHARS` characters,
/// ending at sentence ends where it can; whitespace between passages is dropped. One pass.
pub fn passages(text: &str) -> Vec<&str> {
    let mut end = text.len().min(MAX_TEXT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = &text[..end];
    let mut passages = Vec::new();
    let mut start = None::<usize>;
    let mut n_chars = 0usize;
    let mut last_space = None::<usize>;
    let mut chars = text.char_indices().peekable();
    while let Some((position, c)) = chars.next() {
        let Some(first) = start else {
            if !c.is_whitespace() {
                start = Some(position);
                n_chars = 1;
                last_space = None;
            }
            continue;
        };
        n_chars += 1;
        if c.is_whitespace() {
            last_space = Some(position);
        }
        let next_is_space = chars.peek().is_none_or(|(_, next)| next.is_whitespace());
        let sentence_end = matches!(c, '.' | '!' | '?' | '\n') && next_is_space;
        let cut = if (sentence_end || c == '\n') && n_chars >= PASSAGE_CHARS {
            Some(position + c.len_utf8())
        } else if n_chars >= 2 * PASSAGE_CHARS {
            // No sentence end in reach: cut at the last space, or here.
            Some(
                last_space
                    .filter(|&space| space > first)
                    .unwrap_or(position + c.len_utf8()),
            )
        } else {
            None
        };
        if let Some(cut) = cut {
            let passage = text[first..cut].trim();
            if !passage.is_empty() {
                passages.push(passage);
            }
            // What follows the cut (after a space cut) starts the next passage.
            start = text[cut..]
                .char_indices()
                .find(|(_, c)| !c.is_whitespace())
                .map(|(offset, _)| cut + offset)
                .filter(|&next| next <= position);
            n_chars = start.map_or(0, |next| {
                text[next..position + c.len_utf8()].chars().count()
            });
            last_space = None;
        }
    }
    if let Some(first) = start {
        let passage = text[first..].trim();
        if !passage.is_empty() {
            passages.push(passage);
        }
    }
    passages
}

/// BM25 parameters (the usual ones).
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// Scores each passage for the query words with BM25, the statistics taken over `passages`
/// themselves (the passages of the retrieved items). Returns one score per passage, 0 for none.
pub fn score_passages(passages: &[&str], query: &[String]) -> Vec<f64> {
    if passages.is_empty() || query.is_empty() {
        return vec![0.0; passages.len()];
    }
    let position: std::collections::HashMap<&str, usize> = query
        .iter()
        .enumerate()
        .map(|(index, word)| (word.as_str(), index))
        .collect();
    // Per passage: its length in words and how often each query word occurs (one pass each).
    let counted: Vec<(f64, Vec<f64>)> = passages
        .iter()
        .map(|passage| {
            let mut frequencies = vec![0.0; query.len()];
            let mut length = 0usize;
            for word in words(passage) {
                length += 1;
                if let Some(&index) = position.get(word.as_str()) {
                    frequencies[index] += 1.0;
                }
            }
            (length as f64, frequencies)
        })
        .collect();
    let n = counted.len() as f64;
    let average_length = (counted.iter().map(|(length, _)| length).sum::<f64>() / n).max(1.0);
    let idf: Vec<f64> = (0..query.len())
        .map(|index| {
            let containing = counted
                .iter()
                .filter(|(_, frequencies)| frequencies[index] > 0.0)
                .count() as f64;
            (1.0 + (n - containing + 0.5) / (containing + 0.5)).ln()
        })
        .collect();
    counted
        .iter()
        .map(|(length, frequencies)| {
            frequencies
                .iter()
                .zip(&idf)
                .filter(|(frequency, _)| **frequency > 0.0)
                .map(|(frequency, idf)| {
                    idf * frequency * (K1 + 1.0)
                        / (frequency + K1 * (1.0 - B + B * length / average_length))
                })
                .sum()
        })
        .collect()
}

/// A BM25 score as a `relevanceScore` in 0..1 that keeps the order (0 stays 0).
pub fn relevance(score: f64) -> f64 {
    let relevance = score / (score + 1.0);
    (relevance * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn questions_keep_their_meaningful_words_once() {
        assert_eq!(
            query_words("How do I fix the printer jam on the Printer, floor 2?"),
            ["fix", "printer", "jam", "floor", "2"]
        );
        assert!(query_words("what is it?").is_empty());
    }

    #[test]
    fn passages_end_at_sentences_and_stay_bounded() {
        let sentence = "The printer on floor two jams on duplex jobs. ";
        let text = sentence.repeat(40);
        let cut = passages(&text);
        assert!(cut.len() > 2);
        for passage in &cut {
            assert!(passage.ends_with('.'), "{passage}");
            assert!(passage.chars().count() <= 2 * PASSAGE_CHARS + sentence.len());
        }
        assert_eq!(passages("Short text."), ["Short text."]);
        assert!(passages("   \n ").is_empty());
    }

    #[test]
    fn text_without_spaces_or_sentences_is_cut_anyway() {
        let text = "é".repeat(5 * PASSAGE_CHARS);
        let cut = passages(&text);
        assert!(cut.len() >= 2);
        assert_eq!(cut.concat(), text);
    }

    #[test]
    fn passages_with_more_query_words_score_higher() {
        let passages = [
            "Toner for the printer is in the cupboard.",
            "The printer jams: open tray two and remove the jam.",
            "Lunch is served at noon.",
        ];
        let query = query_words("printer jam");
        let scores = score_passages(&passages, &query);
        assert!(scores[1] > scores[0], "{scores:?}");
        assert!(scores[0] > 0.0);
        assert_eq!(scores[2], 0.0);
        assert!(relevance(scores[1]) < 1.0 && relevance(scores[1]) > relevance(scores[0]));
        assert_eq!(relevance(0.0), 0.0);
    }

    proptest! {
        #[test]
        fn passages_are_slices_of_the_text_in_order_and_lose_no_words(text in "[a-zé. \n!?]{0,3000}") {
            let cut = passages(&text);
            let mut position = 0;
            for passage in &cut {
                prop_assert!(!passage.is_empty());
                let found = text[position..].find(passage).map(|offset| position + offset);
                prop_assert!(found.is_some());
                position = found.unwrap() + passage.len();
                prop_assert!(passage.chars().count() <= 2 * PASSAGE_CHARS);
            }
            let all: Vec<String> = words(&text).collect();
            let kept: Vec<String> = cut.iter().flat_map(|p| words(p).collect::<Vec<_>>()).collect();
            prop_assert_eq!(all, kept);
        }
    }
}
