//! ACL entries of external items (spec/groups-and-acl.md section 1).

use super::Violation;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AclType {
    User,
    Group,
    Everyone,
    EveryoneExceptGuests,
    ExternalGroup,
}

impl AclType {
    pub const ALL: [AclType; 5] = [
        AclType::User,
        AclType::Group,
        AclType::Everyone,
        AclType::EveryoneExceptGuests,
        AclType::ExternalGroup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AclType::User => "user",
            AclType::Group => "group",
            AclType::Everyone => "everyone",
            AclType::EveryoneExceptGuests => "everyoneExceptGuests",
            AclType::ExternalGroup => "externalGroup",
        }
    }

    pub fn parse(raw: &str) -> Option<AclType> {
        AclType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(raw))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessType {
    Grant,
    Deny,
}

impl AccessType {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessType::Grant => "grant",
            AccessType::Deny => "deny",
        }
    }

    pub fn parse(raw: &str) -> Option<AccessType> {
        [AccessType::Grant, AccessType::Deny]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(raw))
    }
}

/// Beta `identitySource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentitySource {
    AzureActiveDirectory,
    External,
}

impl IdentitySource {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentitySource::AzureActiveDirectory => "azureActiveDirectory",
            IdentitySource::External => "external",
        }
    }

    pub fn parse(raw: &str) -> Option<IdentitySource> {
        [
            IdentitySource::AzureActiveDirectory,
            IdentitySource::External,
        ]
        .into_iter()
        .find(|t| t.as_str().eq_ignore_ascii_case(raw))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AclEntry {
    pub acl_type: AclType,
    pub value: String,
    pub access_type: AccessType,
    pub identity_source: Option<IdentitySource>,
}

/// What an entry refers to once the beta legacy form is translated:
/// `{"type":"group","identitySource":"external"}` means an external group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AclPrincipal {
    User(String),
    Group(String),
    ExternalGroup(String),
    Everyone,
    EveryoneExceptGuests,
}

impl AclEntry {
    pub fn principal(&self) -> AclPrincipal {
        match (self.acl_type, self.identity_source) {
            (AclType::Group, Some(IdentitySource::External)) | (AclType::ExternalGroup, _) => {
                AclPrincipal::ExternalGroup(self.value.clone())
            }
            (AclType::Group, _) => AclPrincipal::Group(self.value.to_ascii_lowercase()),
            (AclType::User, _) => AclPrincipal::User(self.value.to_ascii_lowercase()),
            (AclType::Everyone, _) => AclPrincipal::Everyone,
            (AclType::EveryoneExceptGuests, _) => AclPrincipal::EveryoneExceptGuests,
        }
    }

    pub fn validate(&self, index: usize) -> Result<(), Violation> {
        if self.value.trim().is_empty() {
            return Err(Violation::new(
                format!("acl[{index}].value"),
                format!("acl[{index}] needs a non-empty value"),
            ));
        }
        if self.identity_source == Some(IdentitySource::External) && self.acl_type == AclType::User
        {
            return Err(Violation::new(
                format!("acl[{index}].identitySource"),
                format!("acl[{index}]: a user entry cannot have identitySource 'external'; non-Entra users must be mapped to Entra users or put in external groups"),
            ));
        }
        Ok(())
    }
}

impl AclPrincipal {
    /// The index term for this principal: `u:<id>`, `g:<id>`, `x:<id>`, `everyone`, `everyoneExceptGuests`.
    pub fn term(&self) -> String {
        let mut term = String::new();
        self.write_term(&mut term);
        term
    }

    /// `term`, appended to `out` (the indexer reuses one buffer for every entry).
    pub fn write_term(&self, out: &mut String) {
        let (prefix, id) = match self {
            AclPrincipal::User(id) => ("u:", id.as_str()),
            AclPrincipal::Group(id) => ("g:", id.as_str()),
            AclPrincipal::ExternalGroup(id) => ("x:", id.as_str()),
            AclPrincipal::Everyone => ("everyone", ""),
            AclPrincipal::EveryoneExceptGuests => ("everyoneExceptGuests", ""),
        };
        out.push_str(prefix);
        out.push_str(id);
    }
}

/// A node of the membership graph: a user, an Entra group, or an external group of one connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Member {
    User(String),
    Group(String),
    ExternalGroup(String),
}

impl Member {
    pub fn describe(&self) -> String {
        match self {
            Member::User(id) => format!("user:{id}"),
            Member::Group(id) => format!("group:{id}"),
            Member::ExternalGroup(id) => format!("externalGroup:{id}"),
        }
    }
}

/// Who contains whom: for each member, the groups (Entra or external) it is a direct member of.
/// Entra user and group ids are compared in lowercase; external group ids as they are.
#[derive(Debug, Clone, Default)]
pub struct MembershipGraph {
    parents: std::collections::HashMap<Member, Vec<Member>>,
}

impl MembershipGraph {
    /// Records that `member` is a direct member of `group` (an Entra or an external group).
    pub fn add(&mut self, group: Member, member: Member) {
        self.parents
            .entry(normalize(member))
            .or_default()
            .push(normalize(group));
    }

    fn parents_of(&self, member: &Member) -> &[Member] {
        self.parents.get(member).map(Vec::as_slice).unwrap_or(&[])
    }
}

fn normalize(member: Member) -> Member {
    match member {
        Member::User(id) => Member::User(id.to_ascii_lowercase()),
        Member::Group(id) => Member::Group(id.to_ascii_lowercase()),
        external => external,
    }
}

/// The user a decision is made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentity {
    pub id: String,
    pub user_principal_name: Option<String>,
    pub is_guest: bool,
}

/// External groups a user may be in for a query (spec/limits.md: a query by a user in more is refused).
pub const MAX_EXTERNAL_GROUPS_PER_QUERY: usize = 10_000;

/// The expansion stopped: the user is in more external groups than `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyExternalGroups {
    pub limit: usize,
}

/// Everything a user counts as: themselves and every group reached through memberships.
///
/// Each group keeps only the member it was first reached from (breadth-first, so following
/// these predecessors back to the user gives a shortest chain); memory is linear in the number
/// of groups reached, and a chain is rebuilt only when asked for (`chain_to`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principals {
    pub user: UserIdentity,
    /// Each group the user is in (directly or not), with the member it was first reached from.
    predecessors: std::collections::HashMap<Member, Member>,
    n_external_groups: usize,
    /// `terms()`, built on first use (a search asks for them every time).
    terms: std::sync::OnceLock<std::sync::Arc<[String]>>,
}

impl Principals {
    /// Expands the user's memberships breadth-first; cycles of any length end the walk.
    /// Stops as soon as more than `max_external_groups` external groups are reached.
    pub fn expand(
        user: UserIdentity,
        graph: &MembershipGraph,
        max_external_groups: usize,
    ) -> Result<Principals, TooManyExternalGroups> {
        let mut starts = vec![Member::User(user.id.to_ascii_lowercase())];
        if let Some(upn) = &user.user_principal_name {
            starts.push(Member::User(upn.to_ascii_lowercase()));
        }
        let mut predecessors: std::collections::HashMap<Member, Member> =
            std::collections::HashMap::new();
        let mut n_external_groups = 0;
        let mut queue: std::collections::VecDeque<Member> = starts.iter().cloned().collect();
        while let Some(member) = queue.pop_front() {
            for parent in graph.parents_of(&member) {
                if predecessors.contains_key(parent) || starts.contains(parent) {
                    continue;
                }
                if matches!(parent, Member::ExternalGroup(_)) {
                    n_external_groups += 1;
                    if n_external_groups > max_external_groups {
                        return Err(TooManyExternalGroups {
                            limit: max_external_groups,
                        });
                    }
                }
                predecessors.insert(parent.clone(), member.clone());
                queue.push_back(parent.clone());
            }
        }
        Ok(Principals {
            user,
            predecessors,
            n_external_groups,
            terms: std::sync::OnceLock::new(),
        })
    }

    /// Every group (Entra or external) the user is in, directly or not, in no particular order.
    pub fn groups(&self) -> impl Iterator<Item = &Member> {
        self.predecessors.keys()
    }

    pub fn n_groups(&self) -> usize {
        self.predecessors.len()
    }

    pub fn n_external_groups(&self) -> usize {
        self.n_external_groups
    }

    /// The member through which `group` was reached (one step before it in `chain_to`), or
    /// `None` when the user is not in it.
    pub fn reached_from(&self, group: &Member) -> Option<&Member> {
        self.predecessors.get(group)
    }

    /// A shortest membership chain from the user to `group` (user first, group last), or `None`
    /// when the user is not in it.
    pub fn chain_to(&self, group: &Member) -> Option<Vec<Member>> {
        let mut chain = vec![group.clone()];
        let mut current = self.predecessors.get(group)?;
        loop {
            chain.push(current.clone());
            match self.predecessors.get(current) {
                Some(previous) => current = previous,
                None => break,
            }
        }
        chain.reverse();
        Some(chain)
    }

    /// The ACL principal terms this user matches (for index-side trimming), sorted.
    pub fn terms(&self) -> std::sync::Arc<[String]> {
        self.terms.get_or_init(|| self.build_terms().into()).clone()
    }

    fn build_terms(&self) -> Vec<String> {
        let mut terms = vec![
            AclPrincipal::Everyone.term(),
            AclPrincipal::User(self.user.id.to_ascii_lowercase()).term(),
        ];
        if let Some(upn) = &self.user.user_principal_name {
            terms.push(AclPrincipal::User(upn.to_ascii_lowercase()).term());
        }
        if !self.user.is_guest {
            terms.push(AclPrincipal::EveryoneExceptGuests.term());
        }
        for group in self.groups() {
            terms.push(match group {
                Member::Group(id) => AclPrincipal::Group(id.clone()).term(),
                Member::ExternalGroup(id) => AclPrincipal::ExternalGroup(id.clone()).term(),
                Member::User(id) => AclPrincipal::User(id.clone()).term(),
            });
        }
        terms.sort();
        terms.dedup();
        terms
    }

    /// Whether the entry names this user, and the membership chain when it does so through a group.
    pub fn matches(&self, entry: &AclEntry) -> Option<Vec<Member>> {
        match entry.principal() {
            AclPrincipal::Everyone => Some(Vec::new()),
            AclPrincipal::EveryoneExceptGuests => (!self.user.is_guest).then(Vec::new),
            AclPrincipal::User(id) => {
                let is_user = id == self.user.id.to_ascii_lowercase()
                    || self
                        .user
                        .user_principal_name
                        .as_ref()
                        .is_some_and(|upn| upn.eq_ignore_ascii_case(&id));
                is_user.then(Vec::new)
            }
            AclPrincipal::Group(id) => self.chain_to(&Member::Group(id)),
            AclPrincipal::ExternalGroup(id) => self.chain_to(&Member::ExternalGroup(id)),
        }
    }
}

/// The outcome of evaluating an ACL for a user, with the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessDecision {
    pub allowed: bool,
    /// Indexes (into the ACL) of the entries that matched the user, grant and deny.
    pub matched: Vec<usize>,
    /// For each matched entry naming a group, the chain from the user to that group.
    pub chains: Vec<(usize, Vec<Member>)>,
    pub reason: String,
}

/// Which side of the trimming a search runs on: what the caller may see (every search of the
/// API), or what the query matches that the caller may not see (the console's "hidden from this
/// person" list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Trimming {
    #[default]
    Visible,
    Hidden,
}

/// Visible when some matching entry grants and no matching entry denies; an empty ACL matches no one.
pub fn evaluate(acl: &[AclEntry], principals: &Principals) -> AccessDecision {
    let mut matched = Vec::new();
    let mut chains = Vec::new();
    for (index, entry) in acl.iter().enumerate() {
        if let Some(chain) = principals.matches(entry) {
            matched.push(index);
            if !chain.is_empty() {
                chains.push((index, chain));
            }
        }
    }
    let grants = matched
        .iter()
        .filter(|i| acl[**i].access_type == AccessType::Grant)
        .count();
    let denies: Vec<usize> = matched
        .iter()
        .copied()
        .filter(|i| acl[*i].access_type == AccessType::Deny)
        .collect();
    let allowed = grants > 0 && denies.is_empty();
    let reason = if acl.is_empty() {
        "the ACL is empty, so it matches no one".to_string()
    } else if let Some(first_deny) = denies.first() {
        let entry = &acl[*first_deny];
        format!(
            "denied: entry {first_deny} ({} '{}', deny) matches the user, and deny wins over grant",
            entry.acl_type.as_str(),
            entry.value
        )
    } else if grants > 0 {
        format!(
            "granted by {grants} matching entr{} and denied by none",
            if grants == 1 { "y" } else { "ies" }
        )
    } else {
        "no entry of the ACL matches the user".to_string()
    };
    AccessDecision {
        allowed,
        matched,
        chains,
        reason,
    }
}

#[cfg(test)]
mod evaluation_tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(acl_type: AclType, value: &str, access_type: AccessType) -> AclEntry {
        AclEntry {
            acl_type,
            value: value.into(),
            access_type,
            identity_source: None,
        }
    }

    fn user(id: &str) -> UserIdentity {
        UserIdentity {
            id: id.into(),
            user_principal_name: Some(format!("{id}@contoso.com")),
            is_guest: false,
        }
    }

    #[test]
    fn cycles_of_any_length_terminate() {
        let mut graph = MembershipGraph::default();
        graph.add(Member::Group("a".into()), Member::User("u".into()));
        graph.add(Member::Group("b".into()), Member::Group("a".into()));
        graph.add(Member::Group("c".into()), Member::Group("b".into()));
        graph.add(Member::Group("a".into()), Member::Group("c".into()));
        graph.add(Member::Group("a".into()), Member::Group("a".into()));
        let principals = Principals::expand(user("u"), &graph, usize::MAX).unwrap();
        assert_eq!(principals.n_groups(), 3);
        assert_eq!(
            principals.chain_to(&Member::Group("c".into())).unwrap(),
            vec![
                Member::User("u".into()),
                Member::Group("a".into()),
                Member::Group("b".into()),
                Member::Group("c".into())
            ]
        );
    }

    #[test]
    fn an_external_group_can_contain_an_entra_group() {
        let mut graph = MembershipGraph::default();
        graph.add(Member::Group("entra".into()), Member::User("U".into()));
        graph.add(
            Member::ExternalGroup("Ext".into()),
            Member::Group("ENTRA".into()),
        );
        let principals = Principals::expand(user("u"), &graph, usize::MAX).unwrap();
        let acl = [entry(AclType::ExternalGroup, "Ext", AccessType::Grant)];
        let decision = evaluate(&acl, &principals);
        assert!(decision.allowed);
        assert_eq!(decision.chains[0].1.len(), 3);
        let other_case = [entry(AclType::ExternalGroup, "ext", AccessType::Grant)];
        assert!(
            !evaluate(&other_case, &principals).allowed,
            "external group ids keep their case"
        );
    }

    /// A chain of `depth` Entra groups above the user: g0 contains the user, g(i+1) contains g(i).
    fn deep_chain(depth: usize) -> MembershipGraph {
        let mut graph = MembershipGraph::default();
        graph.add(Member::Group("g0".into()), Member::User("u".into()));
        for level in 1..depth {
            graph.add(
                Member::Group(format!("g{level}")),
                Member::Group(format!("g{}", level - 1)),
            );
        }
        graph
    }

    #[test]
    fn a_deep_chain_keeps_one_predecessor_per_group_and_rebuilds_the_path_on_demand() {
        let depth = 3_000;
        let principals = Principals::expand(user("u"), &deep_chain(depth), usize::MAX).unwrap();
        assert_eq!(principals.n_groups(), depth);
        let top = Member::Group(format!("g{}", depth - 1));
        let chain = principals.chain_to(&top).unwrap();
        assert_eq!(chain.len(), depth + 1);
        assert_eq!(chain[0], Member::User("u".into()));
        assert_eq!(chain[depth], top);
        assert_eq!(
            principals.chain_to(&Member::Group("elsewhere".into())),
            None
        );
        let acl = [entry(
            AclType::Group,
            &format!("g{}", depth - 1),
            AccessType::Grant,
        )];
        assert_eq!(evaluate(&acl, &principals).chains[0].1.len(), depth + 1);
    }

    #[test]
    fn the_external_group_limit_stops_the_walk() {
        let mut graph = MembershipGraph::default();
        graph.add(Member::ExternalGroup("x0".into()), Member::User("u".into()));
        for index in 1..50 {
            graph.add(
                Member::ExternalGroup(format!("x{index}")),
                Member::ExternalGroup(format!("x{}", index - 1)),
            );
        }
        graph.add(Member::Group("entra".into()), Member::User("u".into()));
        assert_eq!(
            Principals::expand(user("u"), &graph, 49),
            Err(TooManyExternalGroups { limit: 49 })
        );
        let principals = Principals::expand(user("u"), &graph, 50).unwrap();
        assert_eq!(principals.n_external_groups(), 50);
        assert_eq!(principals.n_groups(), 51, "Entra groups do not count");
    }

    /// The naive reference: iterate "user is in g" to a fixpoint over all groups.
    fn reference_allowed(
        acl: &[AclEntry],
        edges: &[(Member, Member)],
        user_id: &str,
        is_guest: bool,
    ) -> bool {
        let mut member_of: std::collections::BTreeSet<Member> = std::collections::BTreeSet::new();
        loop {
            let before = member_of.len();
            for (group, member) in edges {
                let member_is_user =
                    matches!(member, Member::User(id) if id.eq_ignore_ascii_case(user_id));
                if member_is_user || member_of.contains(member) {
                    member_of.insert(group.clone());
                }
            }
            if member_of.len() == before {
                break;
            }
        }
        let matches = |e: &AclEntry| match e.principal() {
            AclPrincipal::Everyone => true,
            AclPrincipal::EveryoneExceptGuests => !is_guest,
            AclPrincipal::User(id) => id.eq_ignore_ascii_case(user_id),
            AclPrincipal::Group(id) => member_of.contains(&Member::Group(id)),
            AclPrincipal::ExternalGroup(id) => member_of.contains(&Member::ExternalGroup(id)),
        };
        let grant = acl
            .iter()
            .any(|e| e.access_type == AccessType::Grant && matches(e));
        let deny = acl
            .iter()
            .any(|e| e.access_type == AccessType::Deny && matches(e));
        grant && !deny
    }

    fn arbitrary_member() -> impl Strategy<Value = Member> {
        prop_oneof![
            (0..3u8).prop_map(|i| Member::User(format!("u{i}"))),
            (0..5u8).prop_map(|i| Member::Group(format!("g{i}"))),
            (0..5u8).prop_map(|i| Member::ExternalGroup(format!("x{i}"))),
        ]
    }

    fn arbitrary_group() -> impl Strategy<Value = Member> {
        prop_oneof![
            (0..5u8).prop_map(|i| Member::Group(format!("g{i}"))),
            (0..5u8).prop_map(|i| Member::ExternalGroup(format!("x{i}"))),
        ]
    }

    fn arbitrary_entry() -> impl Strategy<Value = AclEntry> {
        (0..5usize, 0..5u8, any::<bool>()).prop_map(|(kind, i, grant)| {
            let (acl_type, value) = match kind {
                0 => (AclType::User, format!("u{}", i % 3)),
                1 => (AclType::Group, format!("g{i}")),
                2 => (AclType::ExternalGroup, format!("x{i}")),
                3 => (AclType::Everyone, "everyone".into()),
                _ => (AclType::EveryoneExceptGuests, "tenant".into()),
            };
            entry(
                acl_type,
                &value,
                if grant {
                    AccessType::Grant
                } else {
                    AccessType::Deny
                },
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// The evaluator agrees with the naive fixpoint over random graphs (cycles included) and ACLs.
        #[test]
        fn evaluation_agrees_with_a_naive_reference(
            edges in proptest::collection::vec((arbitrary_group(), arbitrary_member()), 0..14),
            acl in proptest::collection::vec(arbitrary_entry(), 0..5),
            user_index in 0..3u8,
            is_guest in any::<bool>(),
        ) {
            let mut graph = MembershipGraph::default();
            for (group, member) in &edges {
                graph.add(group.clone(), member.clone());
            }
            let user_id = format!("u{user_index}");
            let principals = Principals::expand(UserIdentity { id: user_id.clone(), user_principal_name: None, is_guest }, &graph, usize::MAX).unwrap();
            let decision = evaluate(&acl, &principals);
            prop_assert_eq!(decision.allowed, reference_allowed(&acl, &edges, &user_id, is_guest));
            for (_, chain) in &decision.chains {
                for pair in chain.windows(2) {
                    prop_assert!(edges.iter().any(|(g, m)| *g == pair[1] && *m == pair[0]), "chain uses only real edges");
                }
            }
        }
    }
}
