//! Objects of the emulated Entra directory: users, groups, and what a group member can be.
//!
//! Users and groups share one namespace per tenant: no user id, user principal name or group id
//! may equal another one (ASCII letters compared without regard to case), so every lookup names
//! at most one object. Membership rows carry the member's type, so a user and a group can never
//! be confused even in data written before that rule existed.

use super::Violation;

/// The longest id the emulator accepts for a directory user or group.
pub const MAX_OBJECT_ID_LENGTH: usize = 256;

/// The object id of a directory user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

/// The object id of a directory group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(String);

/// `Member` or `Guest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserType {
    Member,
    Guest,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub id: UserId,
    pub user_principal_name: String,
    pub display_name: String,
    pub user_type: UserType,
    /// Stored and exported; gcemu lets a disabled user search (it has no sign-in to refuse).
    pub account_enabled: bool,
    /// `passwordProfile.password`, checked by the token endpoint's password grant; a user
    /// created without one signs in with any password. Never answered by Graph endpoints.
    pub password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryGroup {
    pub id: GroupId,
    pub display_name: String,
    pub description: Option<String>,
    pub mail_nickname: Option<String>,
}

/// The type of a directory group's member, as stored with each membership row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberType {
    User,
    Group,
}

/// A member of a directory group: a user or a (nested) group, by id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DirectoryMember {
    User(UserId),
    Group(GroupId),
}

/// A directory object found by a lookup: a user or a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryObject {
    User(DirectoryUser),
    Group(DirectoryGroup),
}

/// The kinds of member an external group can have (spec/groups-and-acl.md section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExternalMemberType {
    /// An Entra user, by id or user principal name.
    User,
    /// An Entra group, by id.
    Group,
    /// Another external group of the same connection, by id.
    ExternalGroup,
}

/// A name of the directory namespace that an existing object already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakenName {
    /// The id of another user.
    UserId,
    /// The user principal name of another user.
    UserPrincipalName,
    /// The id of a group.
    GroupId,
}

impl UserId {
    /// Accepts a client-chosen or generated user id: see `parse_object_id`.
    pub fn parse(raw: &str) -> Result<UserId, Violation> {
        parse_object_id(raw, "user").map(UserId)
    }

    /// An id read back from the store, which checked it when it was written.
    pub fn stored(id: String) -> UserId {
        UserId(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `other` names this id (ASCII letters without regard to case, as the store compares).
    pub fn is(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl GroupId {
    /// Accepts a client-chosen or generated group id: see `parse_object_id`.
    pub fn parse(raw: &str) -> Result<GroupId, Violation> {
        parse_object_id(raw, "group").map(GroupId)
    }

    /// An id read back from the store, which checked it when it was written.
    pub fn stored(id: String) -> GroupId {
        GroupId(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `other` names this id (ASCII letters without regard to case, as the store compares).
    pub fn is(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A directory object id is 1 to 256 characters with no surrounding white space, no control
/// characters and no `/` (it must fit one path segment, as in `/users/{id}`).
fn parse_object_id(raw: &str, what: &str) -> Result<String, Violation> {
    if raw.trim().is_empty() {
        return Err(Violation::new("id", format!("a {what} id cannot be empty")));
    }
    if raw.trim() != raw {
        return Err(Violation::new(
            "id",
            format!("the {what} id '{raw}' cannot start or end with white space"),
        ));
    }
    if raw.chars().count() > MAX_OBJECT_ID_LENGTH {
        return Err(Violation::new(
            "id",
            format!("a {what} id can be at most {MAX_OBJECT_ID_LENGTH} characters long"),
        ));
    }
    if raw.chars().any(|c| c.is_control() || c == '/') {
        return Err(Violation::new(
            "id",
            format!(
                "the {what} id '{}' cannot contain '/' or control characters",
                raw.escape_debug()
            ),
        ));
    }
    Ok(raw.to_string())
}

impl UserType {
    pub fn as_str(self) -> &'static str {
        match self {
            UserType::Member => "Member",
            UserType::Guest => "Guest",
        }
    }

    /// Reads `Member` or `Guest` in any letter case.
    pub fn parse(raw: &str) -> Option<UserType> {
        [UserType::Member, UserType::Guest]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(raw))
    }
}

impl MemberType {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberType::User => "user",
            MemberType::Group => "group",
        }
    }

    pub fn parse(raw: &str) -> Option<MemberType> {
        [MemberType::User, MemberType::Group]
            .into_iter()
            .find(|t| t.as_str() == raw)
    }
}

impl DirectoryMember {
    pub fn member_type(&self) -> MemberType {
        match self {
            DirectoryMember::User(_) => MemberType::User,
            DirectoryMember::Group(_) => MemberType::Group,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            DirectoryMember::User(id) => id.as_str(),
            DirectoryMember::Group(id) => id.as_str(),
        }
    }

    /// Refuses a group as a member of itself (spec: no self-membership; longer cycles are allowed).
    pub fn check_can_join(&self, group: &GroupId) -> Result<(), Violation> {
        match self {
            DirectoryMember::Group(member) if group.is(member.as_str()) => Err(Violation::new(
                "members",
                "a group cannot be a member of itself",
            )),
            _ => Ok(()),
        }
    }
}

impl DirectoryObject {
    /// The membership this object would have as a member of a group.
    pub fn as_member(&self) -> DirectoryMember {
        match self {
            DirectoryObject::User(user) => DirectoryMember::User(user.id.clone()),
            DirectoryObject::Group(group) => DirectoryMember::Group(group.id.clone()),
        }
    }
}

impl ExternalMemberType {
    pub const ALL: [ExternalMemberType; 3] = [
        ExternalMemberType::User,
        ExternalMemberType::Group,
        ExternalMemberType::ExternalGroup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExternalMemberType::User => "user",
            ExternalMemberType::Group => "group",
            ExternalMemberType::ExternalGroup => "externalGroup",
        }
    }

    /// Reads a member type in any letter case, as Graph does for enum members.
    pub fn parse(raw: &str) -> Option<ExternalMemberType> {
        ExternalMemberType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(raw))
    }
}

impl TakenName {
    /// The refusal of a new object whose `property` (`id` or `userPrincipalName`) has the value
    /// `value`, which this existing name already holds. Entra's wording, with the holder named.
    pub fn clash(self, property: &str, value: &str) -> Violation {
        let holder = match self {
            TakenName::UserId => "the id of a user",
            TakenName::UserPrincipalName => "the userPrincipalName of a user",
            TakenName::GroupId => "the id of a group",
        };
        Violation::new(
            property,
            format!("another object with the same value for property {property} already exists: '{value}' is already {holder}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_one_path_segment_without_surrounding_space() {
        assert!(UserId::parse("11111111-0000-0000-0000-00000000adel").is_ok());
        assert!(GroupId::parse("sales").is_ok());
        assert!(UserId::parse("adele@contoso.com").is_ok());
        for bad in ["", "  ", " sales", "sales ", "a/b", "a\nb"] {
            assert_eq!(GroupId::parse(bad).unwrap_err().target, "id", "{bad:?}");
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(GroupId::parse(&"g".repeat(MAX_OBJECT_ID_LENGTH)).is_ok());
        assert!(GroupId::parse(&"g".repeat(MAX_OBJECT_ID_LENGTH + 1)).is_err());
    }

    #[test]
    fn ids_match_lookups_without_regard_to_ascii_case() {
        let group = GroupId::parse("Sales").unwrap();
        assert!(group.is("sales"));
        assert!(!group.is("sales2"));
    }

    #[test]
    fn a_group_cannot_join_itself_but_a_user_with_the_same_text_is_another_object() {
        let group = GroupId::parse("Sales").unwrap();
        let itself = DirectoryMember::Group(GroupId::parse("sales").unwrap());
        assert_eq!(itself.check_can_join(&group).unwrap_err().target, "members");
        let user = DirectoryMember::User(UserId::parse("sales").unwrap());
        assert!(user.check_can_join(&group).is_ok());
    }

    #[test]
    fn member_types_read_their_wire_names() {
        assert_eq!(
            ExternalMemberType::parse("EXTERNALGROUP"),
            Some(ExternalMemberType::ExternalGroup)
        );
        assert_eq!(ExternalMemberType::parse("everyone"), None);
        for member_type in [MemberType::User, MemberType::Group] {
            assert_eq!(MemberType::parse(member_type.as_str()), Some(member_type));
        }
        assert_eq!(UserType::parse("guest"), Some(UserType::Guest));
    }

    #[test]
    fn a_clash_names_the_property_and_the_holder() {
        let violation = TakenName::UserPrincipalName.clash("id", "adele@contoso.com");
        assert_eq!(violation.target, "id");
        assert!(violation
            .message
            .starts_with("another object with the same value for property id already exists"));
        assert!(violation.message.contains("userPrincipalName of a user"));
    }
}
