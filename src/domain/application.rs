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
    /// Granted delegated permissions (the `scp` of its users' tokens), such as `ExternalItem.Read.All`.
    pub scopes: Vec<String>,
    /// Certificates (PEM, or base64 DER as Graph's `keyCredentials.key`) whose keys may sign
    /// client assertions.
    pub certificates: Vec<String>,
}

/// The default application's secret (documented in the README).
pub const DEFAULT_APP_SECRET: &str = "gcemu-default-secret";

impl Application {
    /// The application every tenant has unless it declares one with the same id: the one a
    /// request without a token acts as, consented for everything gcemu serves.
    pub fn default_app() -> Application {
        let permissions = |list: &[&str]| list.iter().map(|p| p.to_string()).collect();
        Application {
            app_id: super::principal::DEFAULT_APP_ID.to_string(),
            display_name: "gcemu default application".to_string(),
            secrets: vec![DEFAULT_APP_SECRET.to_string()],
            roles: permissions(&[
                "ExternalConnection.ReadWrite.All",
                "ExternalItem.ReadWrite.All",
                "Directory.ReadWrite.All",
            ]),
            scopes: permissions(&[
                "ExternalItem.Read.All",
                "ExternalConnection.ReadWrite.All",
                "ExternalItem.ReadWrite.All",
                "Directory.ReadWrite.All",
            ]),
            certificates: Vec::new(),
        }
    }
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
        for (member, list) in [("roles", &self.roles), ("scopes", &self.scopes)] {
            if list.len() > MAX_ROLES {
                violations.push(Violation::new(
                    member,
                    format!(
                        "an application can have at most {MAX_ROLES} {member}; this one has {}",
                        list.len()
                    ),
                ));
                continue;
            }
            for (index, permission) in list.iter().enumerate() {
                if !is_permission_name(permission) {
                    violations.push(Violation::new(
                        format!("{member}[{index}]"),
                        format!(
                            "'{permission}' is not a permission name (such as ExternalItem.ReadWrite.All)"
                        ),
                    ));
                }
            }
        }
        if self.certificates.len() > MAX_SECRETS {
            violations.push(Violation::new(
                "certificates",
                format!(
                    "an application can have at most {MAX_SECRETS} certificates; this one has {}",
                    self.certificates.len()
                ),
            ));
        }
        for (index, certificate) in self.certificates.iter().enumerate() {
            if certificate.len() > 16 * 1024
                || crate::identity::assertion::certificate_der(certificate).is_none()
            {
                violations.push(Violation::new(
                    format!("certificates[{index}]"),
                    "a certificate must be an X.509 certificate in PEM or base64 DER, at most 16 KB",
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
            scopes: vec!["ExternalItem.Read.All".into()],
            certificates: Vec::new(),
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
