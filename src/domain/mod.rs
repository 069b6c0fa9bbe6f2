//! Pure types and rules of the connectors API: ids, connections, schemas, operations, callers,
//! directory objects and ACLs.
//!
//! Nothing here does IO, knows HTTP, or derives Graph's wire format.
//! Every function is deterministic and cannot fail for environmental reasons,
//! so the rules are unit- and property-tested directly.

pub mod acl;
pub mod application;
pub mod collapse;
pub mod connection;
pub mod directory;
pub mod group_graph;
pub mod hit;
pub mod ids;
pub mod item;
pub mod kql;
pub mod operation;
pub mod permissions;
pub mod principal;
pub mod refiner;
pub mod result_template;
pub mod retrieval;
pub mod schema;

/// A rule violation found while validating client input.
///
/// `target` names the offending member (for example `properties[3].name`)
/// and `message` says what is wrong with it in words a connector developer can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub target: String,
    pub message: String,
}

impl Violation {
    pub fn new(target: impl Into<String>, message: impl Into<String>) -> Violation {
        Violation {
            target: target.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// At most `max_chars` characters of `text` (cut at a character boundary, with `…` when cut):
/// how client text is quoted back in messages, so an error never echoes megabytes.
pub fn excerpt(text: &str, max_chars: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        None => std::borrow::Cow::Borrowed(text),
        Some((cut, _)) => std::borrow::Cow::Owned(format!("{}…", &text[..cut])),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn excerpts_cut_at_character_boundaries() {
        assert_eq!(super::excerpt("short", 10), "short");
        assert_eq!(super::excerpt("ééééé", 2), "éé…");
    }
}
