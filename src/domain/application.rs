//! Applications (service principals) a tenant declares: their ids, client secrets and the
//! application permissions (`roles`) granted to them. Declared through fixtures; tokens and
//! strict mode read them.

use super::Violation;

/// The most secrets and roles one application may declare (gcemu's bound, in the README).
pub const MAX_SECRETS: usize = 16;
pub const MAX_ROLES: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    /// The application (client) id: a GUID, kept in lower case.
    pub app_id: String,
    pub display_name: String,
    pub secrets: Vec<String>,
    /// Granted application permissions, such as `ExternalItem.ReadWrite.OwnedBy`.
    pub roles: Vec<String>,
}

impl Application {
    /// Checks the declaration; each violation's target is the member it is about.
    pub fn validate(&self) -> Vec<Violation> {
        let mut violations = Vec::new();
        if uuid::Uuid::parse_str(&self.app_id).is_err() {
            violations.push(Violation::new(
                "appId",
                format!("appId '{}' is not a GUID", self.app_id),
            ));
        }
        if self.display_name.trim().is_empty() {
            violations.push(Violation::new(
                "displayName",
                "an application needs a non-empty displayName",
            ));
        }
        if self.secrets.len() > MAX_SECRETS {
            violations.push(Violation::new(
                "secrets",
                format!(
                    "an application can have at most {MAX_SECRETS} secrets; this one has {}",
                    self.secrets.len()
                ),
            ));
        }
        for (index, secret) in self.secrets.iter().enumerate() {
            if secret.is_empty() || secret.len() > 1024 {
                violations.push(Violation::new(
                    format!("secrets[{index}]"),
                    "a secret must be 1 to 1024 bytes long",
                ));
            }
        }
        if self.roles.len() > MAX_ROLES {
            violations.push(Violation::new(
                "roles",
                format!(
                    "an application can have at most {MAX_ROLES} roles; this one has {}",
                    self.roles.len()
                ),
            ));
        }
        for (index, role) in self.roles.iter().enumerate() {
            if !is_permission_name(role) {
                violations.push(Violation::new(
                    format!("roles[{index}]"),
                    format!(
                        "'{role}' is not a permission name (such as ExternalItem.ReadWrite.All)"
                    ),
                ));
            }
        }
        violations
    }
}

/// `Resource.Action[.Qualifier]`: dot-separated ASCII words, as Graph names its permissions.
fn is_permission_name(raw: &str) -> bool {
    raw.len() <= 128
        && raw.split('.').count() >= 2
        && raw
            .split('.')
            .all(|word| !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> Application {
        Application {
            app_id: "11111111-2222-3333-4444-555555555555".into(),
            display_name: "Ticket connector".into(),
            secrets: vec!["s3cret".into()],
            roles: vec!["ExternalItem.ReadWrite.OwnedBy".into()],
        }
    }

    #[test]
    fn a_well_formed_application_passes() {
        assert!(app().validate().is_empty());
    }

    #[test]
    fn each_bad_member_is_named() {
        let mut bad = app();
        bad.app_id = "not-a-guid".into();
        bad.roles = vec!["ExternalItem.Read.All".into(), "read everything".into()];
        let targets: Vec<String> = bad.validate().into_iter().map(|v| v.target).collect();
        assert_eq!(targets, ["appId", "roles[1]"]);
    }
}
