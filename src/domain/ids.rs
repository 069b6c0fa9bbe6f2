//! Identifier newtypes with the parsing rules the real service applies.
//!
//! A value of one of these types has passed its rule; code that holds a `ConnectionId`
//! never needs to check the id again.

use super::Violation;

/// The tenant every record belongs to (the `tid` claim of the caller's token).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

/// The tenant a caller acts in when its token names none (see the contract).
pub const DEFAULT_TENANT_ID: &str = "00000000-0000-0000-0000-000000000001";

impl TenantId {
    /// Accepts any non-empty tenant identifier of at most 128 characters without control characters.
    pub fn parse(raw: &str) -> Result<TenantId, Violation> {
        if raw.is_empty() || raw.len() > 128 || raw.chars().any(|c| c.is_control()) {
            return Err(Violation::new(
                "tenant",
                format!("'{raw}' is not a valid tenant id"),
            ));
        }
        Ok(TenantId(raw.to_ascii_lowercase()))
    }

    /// A tenant id as the store kept it (it passed `parse` when written).
    pub fn stored(raw: String) -> TenantId {
        TenantId(raw)
    }

    pub fn default_tenant() -> TenantId {
        TenantId(DEFAULT_TENANT_ID.to_string())
    }

    /// Where the request journal files requests whose token was refused: no token and no
    /// `?tenant=` can name it (it has a space), so no tenant's report ever includes them.
    pub fn unauthenticated() -> TenantId {
        TenantId("(unauthenticated request)".to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Connection ids the service reserves for its own sources (spec/connections.md section 3, rule 4).
pub const RESERVED_CONNECTION_IDS: &[&str] = &[
    "None",
    "Directory",
    "Exchange",
    "ExchangeArchive",
    "LinkedIn",
    "Mailbox",
    "OneDriveBusiness",
    "SharePoint",
    "Teams",
    "Yammer",
    "Connectors",
    "TaskFabric",
    "PowerBI",
    "Assistant",
    "TopicEngine",
    "MSFT_All_Connectors",
];

/// The id of an externalConnection: 3 to 32 ASCII letters and digits,
/// not starting with `Microsoft`, not a reserved id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectionId(String);

impl ConnectionId {
    /// Validates a connection id supplied on create.
    pub fn parse(raw: &str) -> Result<ConnectionId, Violation> {
        let n_chars = raw.chars().count();
        if !(3..=32).contains(&n_chars) {
            return Err(Violation::new(
                "id",
                format!("connection id '{raw}' must be between 3 and 32 characters long, it has {n_chars}"),
            ));
        }
        if let Some(bad) = raw.chars().find(|c| !c.is_ascii_alphanumeric()) {
            return Err(Violation::new(
                "id",
                format!("connection id '{raw}' may contain only letters and digits, not '{bad}'"),
            ));
        }
        if raw.len() >= 9 && raw[..9].eq_ignore_ascii_case("microsoft") {
            return Err(Violation::new(
                "id",
                format!("connection id '{raw}' must not begin with 'Microsoft'"),
            ));
        }
        if let Some(reserved) = RESERVED_CONNECTION_IDS
            .iter()
            .find(|reserved| reserved.eq_ignore_ascii_case(raw))
        {
            return Err(Violation::new(
                "id",
                format!("connection id '{raw}' is reserved ('{reserved}')"),
            ));
        }
        Ok(ConnectionId(raw.to_string()))
    }

    /// Wraps an id that names an existing connection (from a URL); existence is checked by the store.
    pub fn lookup(raw: &str) -> ConnectionId {
        ConnectionId(raw.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of a connectionOperation; opaque, minted by the emulator in the live service's
/// `1.<region>.<32 hex>.<32 hex>` form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OperationId(String);

impl OperationId {
    pub fn from_uuids(first: uuid::Uuid, second: uuid::Uuid) -> OperationId {
        OperationId(format!(
            "1.gcemu.{}.{}",
            first.simple().to_string().to_ascii_uppercase(),
            second.simple().to_string().to_ascii_uppercase()
        ))
    }

    pub fn lookup(raw: &str) -> OperationId {
        OperationId(raw.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for OperationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn connection_id_accepts_letters_and_digits_of_3_to_32() {
        for ok in ["abc", "tickets01", "A1b2C3", &"x".repeat(32)] {
            assert!(ConnectionId::parse(ok).is_ok(), "{ok} should be accepted");
        }
    }

    #[test]
    fn connection_id_length_is_3_to_32() {
        assert!(ConnectionId::parse("ab").is_err());
        assert!(ConnectionId::parse("").is_err());
        assert!(ConnectionId::parse(&"x".repeat(33)).is_err());
    }

    #[test]
    fn connection_id_refuses_non_alphanumeric_characters() {
        for bad in ["my-conn", "my_conn", "my conn", "conné", "abc.d", "ab%41"] {
            let violation = ConnectionId::parse(bad).unwrap_err();
            assert!(
                violation.message.contains("only letters and digits"),
                "{bad}: {violation}"
            );
        }
    }

    #[test]
    fn connection_id_must_not_begin_with_microsoft_in_any_case() {
        for bad in [
            "Microsoft",
            "MicrosoftSearch",
            "microsoftTickets",
            "MICROSOFTx",
        ] {
            let violation = ConnectionId::parse(bad).unwrap_err();
            assert!(
                violation.message.contains("Microsoft"),
                "{bad}: {violation}"
            );
        }
        assert!(ConnectionId::parse("MicroTickets").is_ok());
    }

    #[test]
    fn connection_id_refuses_every_reserved_id_in_any_case() {
        for reserved in RESERVED_CONNECTION_IDS {
            assert!(ConnectionId::parse(reserved).is_err(), "{reserved}");
            assert!(
                ConnectionId::parse(&reserved.to_lowercase()).is_err(),
                "{reserved}"
            );
        }
    }

    proptest! {
        #[test]
        fn connection_id_rule_matches_its_definition(raw in "[A-Za-z0-9_\\- ]{0,40}") {
            let expected = (3..=32).contains(&raw.len())
                && raw.chars().all(|c| c.is_ascii_alphanumeric())
                && !raw.to_ascii_lowercase().starts_with("microsoft")
                && !RESERVED_CONNECTION_IDS.iter().any(|r| r.eq_ignore_ascii_case(&raw));
            prop_assert_eq!(ConnectionId::parse(&raw).is_ok(), expected);
        }
    }
}

/// The id of an externalItem: 1 to 128 ASCII letters, digits, `_`, `-` and `.`.
/// The docs say alphanumeric; the live service accepts `_` and `-` (evidence 3.1), and the spec's
/// lenient default adds `.` (file names, versions: `report.v2`, spec/items.md §4). An id of dots
/// alone (`.`, `..`) is refused: URL clients resolve it as a path segment, so it cannot be addressed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemId(String);

impl ItemId {
    pub fn parse(raw: &str) -> Result<ItemId, Violation> {
        let n_chars = raw.chars().count();
        if n_chars == 0 || n_chars > 128 {
            return Err(Violation::new(
                "id",
                format!("item id '{raw}' must be 1 to 128 characters long, it has {n_chars}"),
            ));
        }
        if let Some(bad) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        {
            return Err(Violation::new(
                "id",
                format!(
                    "item id '{raw}' may contain only letters, digits, '_', '-' and '.', not {bad:?}"
                ),
            ));
        }
        if raw.chars().all(|c| c == '.') {
            return Err(Violation::new(
                "id",
                format!("item id '{raw}' cannot be dots alone: a URL cannot address it"),
            ));
        }
        Ok(ItemId(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ItemId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod item_id_tests {
    use super::*;

    #[test]
    fn item_ids_allow_letters_digits_underscore_dash_and_dot_up_to_128() {
        for ok in [
            "T1001",
            "sdks__create-client",
            "c6528a79-0d72-4f8c-6972-08dd7c2f4d78",
            "report.v2",
            "handbook.pdf",
            ".hidden",
            &"i".repeat(128),
        ] {
            assert!(ItemId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a b",
            "a/b",
            "a:b",
            "a%b",
            "é",
            &"i".repeat(129),
        ] {
            assert!(ItemId::parse(bad).is_err(), "{bad}");
        }
    }
}

/// The id of an externalGroup: 1 to 128 URL- and filename-safe Base64 characters (`A-Z a-z 0-9 - _`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExternalGroupId(String);

impl ExternalGroupId {
    pub fn parse(raw: &str) -> Result<ExternalGroupId, Violation> {
        let n_chars = raw.chars().count();
        if n_chars == 0 || n_chars > 128 {
            return Err(Violation::new(
                "id",
                format!(
                    "external group id '{raw}' must be 1 to 128 characters long, it has {n_chars}"
                ),
            ));
        }
        if let Some(bad) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(Violation::new(
                "id",
                format!("external group id '{raw}' may contain only letters, digits, '-' and '_', not {bad:?}"),
            ));
        }
        Ok(ExternalGroupId(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ExternalGroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
