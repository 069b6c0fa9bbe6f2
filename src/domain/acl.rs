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
        match self {
            AclPrincipal::User(id) => format!("u:{id}"),
            AclPrincipal::Group(id) => format!("g:{id}"),
            AclPrincipal::ExternalGroup(id) => format!("x:{id}"),
            AclPrincipal::Everyone => "everyone".into(),
            AclPrincipal::EveryoneExceptGuests => "everyoneExceptGuests".into(),
        }
    }
}
