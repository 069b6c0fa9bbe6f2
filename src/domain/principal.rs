//! Who is calling: the tenant, the application and, for delegated calls, the user,
//! as read from the bearer token's claims.

use super::ids::TenantId;

/// The application id a caller acts as when its token names none.
pub const DEFAULT_APP_ID: &str = "00000000-0000-0000-0000-0000000000a1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant: TenantId,
    pub app_id: String,
    /// The signed-in user (object id or UPN) for delegated tokens; `None` for app-only tokens.
    pub user: Option<String>,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    /// Which connections the caller may manage: set by the permission check (strict mode), `All`
    /// otherwise.
    pub connection_scope: ConnectionScope,
}

/// The connections a caller's permissions cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectionScope {
    /// A `.All` permission: every connection of the tenant.
    #[default]
    All,
    /// Only `*.OwnedBy`: the connections the app created or is listed on in
    /// `configuration.authorizedAppIds`.
    OwnedBy,
}

impl Caller {
    /// The default application of the default tenant, used for requests without a usable token.
    pub fn default_app() -> Caller {
        Caller {
            tenant: TenantId::default_tenant(),
            app_id: DEFAULT_APP_ID.to_string(),
            user: None,
            roles: Vec::new(),
            scopes: Vec::new(),
            connection_scope: ConnectionScope::All,
        }
    }

    /// A short description for logs and the request journal: `app:<id>` or `user:<id>`.
    pub fn describe(&self) -> String {
        match &self.user {
            Some(user) => format!("user:{user}"),
            None => format!("app:{}", self.app_id),
        }
    }
}
