//! Which permission each Graph endpoint requires (spec/permissions.md), for strict mode.
//!
//! An endpoint is classified from its method and path (the segments after the version); its
//! requirement lists the delegated and the application permissions that allow it, least
//! privileged first. An `OwnedBy` permission allows it only on connections the app owns.

use super::principal::ConnectionScope;

/// What a Graph request does, as far as permissions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    CreateConnection,
    ListConnections,
    ReadConnection,
    WriteConnection,
    ReadSchema,
    WriteSchema,
    ReadOperation,
    ReadQuota,
    ReadItem,
    WriteItem,
    AddActivities,
    ReadExternalGroup,
    WriteExternalGroup,
    Search,
    Retrieval,
    ReadUsers,
    WriteUsers,
    ReadDirectoryGroups,
    WriteDirectoryGroups,
}

const CONNECTION_OWNED: &str = "ExternalConnection.ReadWrite.OwnedBy";
const CONNECTION_READ: &str = "ExternalConnection.Read.All";
const CONNECTION_ALL: &str = "ExternalConnection.ReadWrite.All";
const ITEM_OWNED: &str = "ExternalItem.ReadWrite.OwnedBy";
const ITEM_READ: &str = "ExternalItem.Read.All";
const ITEM_ALL: &str = "ExternalItem.ReadWrite.All";

/// The permissions that allow an operation. An empty list: that kind of token is not supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    pub delegated: &'static [&'static str],
    pub application: &'static [&'static str],
}

impl Operation {
    /// The operation of `method` on `segments` (the path after `/v1.0` or `/beta`), or `None`
    /// for a path no permission guards (`$batch`, whose parts are checked one by one) or that
    /// gcemu does not serve (answered 404 by the router).
    pub fn classify(method: &str, segments: &[&str]) -> Option<Operation> {
        let read = method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD");
        let is = |index: usize, name: &str| {
            segments
                .get(index)
                .is_some_and(|segment| segment.eq_ignore_ascii_case(name))
        };
        use Operation::*;
        if is(0, "external") && is(1, "connections") {
            return Some(match (segments.len(), segments.get(3)) {
                (2, _) if read => ListConnections,
                (2, _) => CreateConnection,
                (3, _) if read => ReadConnection,
                (3, _) => WriteConnection,
                (_, Some(sub)) if sub.eq_ignore_ascii_case("schema") => {
                    if read {
                        ReadSchema
                    } else {
                        WriteSchema
                    }
                }
                (_, Some(sub)) if sub.eq_ignore_ascii_case("operations") => ReadOperation,
                (_, Some(sub)) if sub.eq_ignore_ascii_case("quota") => ReadQuota,
                (_, Some(sub)) if sub.eq_ignore_ascii_case("items") => {
                    let activities = segments.get(5).is_some_and(|action| {
                        action.to_ascii_lowercase().ends_with("addactivities")
                    });
                    if activities {
                        AddActivities
                    } else if read {
                        ReadItem
                    } else {
                        WriteItem
                    }
                }
                (_, Some(sub)) if sub.eq_ignore_ascii_case("groups") => {
                    if read {
                        ReadExternalGroup
                    } else {
                        WriteExternalGroup
                    }
                }
                _ => return None,
            });
        }
        if is(0, "search") && is(1, "query") {
            return Some(Search);
        }
        if is(0, "copilot") && is(1, "retrieval") {
            return Some(Retrieval);
        }
        if is(0, "users") {
            return Some(if read { ReadUsers } else { WriteUsers });
        }
        if is(0, "groups") {
            return Some(if read {
                ReadDirectoryGroups
            } else {
                WriteDirectoryGroups
            });
        }
        None
    }

    /// The permissions spec/permissions.md names (higher ones also allow; Graph's directory
    /// permissions for the emulated directory).
    pub fn requirement(self) -> Requirement {
        use Operation::*;
        const CONNECTION_WRITE: &[&str] = &[CONNECTION_OWNED, CONNECTION_ALL];
        const CONNECTION_READS: &[&str] = &[CONNECTION_OWNED, CONNECTION_READ, CONNECTION_ALL];
        const ITEM_WRITE: &[&str] = &[ITEM_OWNED, ITEM_ALL];
        const ITEM_READS: &[&str] = &[ITEM_OWNED, ITEM_READ, ITEM_ALL];
        const SEARCH: &[&str] = &[ITEM_READ, ITEM_ALL];
        const USERS_READ: &[&str] = &[
            "User.Read.All",
            "User.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ];
        const USERS_WRITE: &[&str] = &["User.ReadWrite.All", "Directory.ReadWrite.All"];
        const GROUPS_READ: &[&str] = &[
            "GroupMember.Read.All",
            "Group.Read.All",
            "Group.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ];
        const GROUPS_WRITE: &[&str] = &[
            "GroupMember.ReadWrite.All",
            "Group.ReadWrite.All",
            "Directory.ReadWrite.All",
        ];
        let both = |list: &'static [&'static str]| Requirement {
            delegated: list,
            application: list,
        };
        match self {
            CreateConnection | WriteConnection | WriteSchema => both(CONNECTION_WRITE),
            ListConnections | ReadConnection | ReadSchema | ReadOperation => both(CONNECTION_READS),
            ReadQuota => Requirement {
                delegated: &[],
                application: CONNECTION_READS,
            },
            ReadItem | ReadExternalGroup => both(ITEM_READS),
            WriteItem | WriteExternalGroup => both(ITEM_WRITE),
            AddActivities => Requirement {
                delegated: &[],
                application: ITEM_WRITE,
            },
            // Application permissions are documented for SharePoint content only (evidence 4.1).
            Search | Retrieval => Requirement {
                delegated: SEARCH,
                application: &[],
            },
            ReadUsers => both(USERS_READ),
            WriteUsers => both(USERS_WRITE),
            ReadDirectoryGroups => both(GROUPS_READ),
            WriteDirectoryGroups => both(GROUPS_WRITE),
        }
    }

    /// Whether the operation acts on one existing connection (named in the path).
    pub fn targets_a_connection(self) -> bool {
        use Operation::*;
        !matches!(
            self,
            CreateConnection
                | ListConnections
                | Search
                | Retrieval
                | ReadUsers
                | WriteUsers
                | ReadDirectoryGroups
                | WriteDirectoryGroups
        )
    }
}

/// The outcome of checking a token's permissions against a requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed(ConnectionScope),
    /// The token holds none of the permissions; the message says which would do.
    Denied(String),
}

/// Checks `held` (the token's `scp` when `delegated`, else its `roles`) against `operation`.
pub fn decide(operation: Operation, delegated: bool, held: &[String]) -> Decision {
    let requirement = operation.requirement();
    let (allowing, kind) = if delegated {
        (requirement.delegated, "delegated")
    } else {
        (requirement.application, "application")
    };
    if allowing.is_empty() {
        return Decision::Denied(format!(
            "Insufficient privileges to complete the operation. This operation does not support {kind} permissions."
        ));
    }
    let holds = |permission: &str| held.iter().any(|p| p.eq_ignore_ascii_case(permission));
    let granting: Vec<&str> = allowing.iter().copied().filter(|p| holds(p)).collect();
    if granting.iter().any(|p| !p.ends_with(".OwnedBy")) {
        return Decision::Allowed(ConnectionScope::All);
    }
    if !granting.is_empty() {
        return Decision::Allowed(ConnectionScope::OwnedBy);
    }
    Decision::Denied(format!(
        "Insufficient privileges to complete the operation. It requires one of these {kind} permissions: {}.",
        allowing.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(method: &str, path: &str) -> Option<Operation> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        Operation::classify(method, &segments)
    }

    #[test]
    fn every_connector_endpoint_is_classified() {
        use Operation::*;
        let cases = [
            ("POST", "external/connections", Some(CreateConnection)),
            ("GET", "external/connections", Some(ListConnections)),
            ("GET", "external/connections/c1", Some(ReadConnection)),
            ("PATCH", "external/connections/c1", Some(WriteConnection)),
            ("DELETE", "external/connections/c1", Some(WriteConnection)),
            ("GET", "external/connections/c1/schema", Some(ReadSchema)),
            ("PATCH", "external/connections/c1/schema", Some(WriteSchema)),
            (
                "GET",
                "external/connections/c1/operations/o1",
                Some(ReadOperation),
            ),
            ("GET", "external/connections/c1/quota", Some(ReadQuota)),
            ("PUT", "external/connections/c1/items/i1", Some(WriteItem)),
            ("GET", "external/connections/c1/items/i1", Some(ReadItem)),
            (
                "POST",
                "external/connections/c1/items/i1/microsoft.graph.externalConnectors.addActivities",
                Some(AddActivities),
            ),
            (
                "POST",
                "external/connections/c1/groups",
                Some(WriteExternalGroup),
            ),
            (
                "GET",
                "external/connections/c1/groups/g1",
                Some(ReadExternalGroup),
            ),
            (
                "DELETE",
                "external/connections/c1/groups/g1/members/m1",
                Some(WriteExternalGroup),
            ),
            ("POST", "search/query", Some(Search)),
            ("POST", "copilot/retrieval", Some(Retrieval)),
            ("GET", "users/u1", Some(ReadUsers)),
            ("POST", "groups/g1/members/$ref", Some(WriteDirectoryGroups)),
            ("POST", "$batch", None),
        ];
        for (method, path, expected) in cases {
            assert_eq!(classify(method, path), expected, "{method} {path}");
        }
    }

    #[test]
    fn owned_by_limits_to_owned_connections_and_all_wins() {
        let held = |list: &[&str]| list.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        assert_eq!(
            decide(Operation::WriteItem, false, &held(&[ITEM_OWNED])),
            Decision::Allowed(ConnectionScope::OwnedBy)
        );
        assert_eq!(
            decide(
                Operation::WriteItem,
                false,
                &held(&[ITEM_OWNED, "externalitem.readwrite.all"])
            ),
            Decision::Allowed(ConnectionScope::All)
        );
        assert!(matches!(
            decide(Operation::WriteItem, false, &held(&[ITEM_READ])),
            Decision::Denied(message) if message.contains(ITEM_ALL)
        ));
        assert!(matches!(
            decide(Operation::Search, false, &held(&[ITEM_READ])),
            Decision::Denied(message) if message.contains("application permissions")
        ));
        assert_eq!(
            decide(Operation::Search, true, &held(&[ITEM_READ])),
            Decision::Allowed(ConnectionScope::All)
        );
        assert!(matches!(
            decide(Operation::AddActivities, true, &held(&[ITEM_ALL])),
            Decision::Denied(_)
        ));
    }
}
