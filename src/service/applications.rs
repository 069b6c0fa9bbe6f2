//! Applications (service principals) of a tenant: declared through fixtures or the control
//! plane, plus the default application every tenant has. Tokens and strict mode read them.

use super::Error;
use crate::domain::application::Application;
use crate::domain::ids::TenantId;
use crate::domain::principal::DEFAULT_APP_ID;
use crate::state::AppState;
use crate::store;

/// Applications one tenant may declare (gcemu's bound).
pub const MAX_APPLICATIONS_PER_TENANT: usize = 1_000;

/// The tenant's application with this app id (any letter case): a declared one, else the
/// default application for its id.
pub async fn find(
    state: &AppState,
    tenant: &TenantId,
    app_id: &str,
) -> Result<Option<Application>, Error> {
    let (tenant, lookup) = (tenant.clone(), app_id.to_string());
    let declared = state
        .store
        .read(move |db| store::applications::get(db, &tenant, &lookup))
        .await?;
    Ok(declared.or_else(|| {
        app_id
            .eq_ignore_ascii_case(DEFAULT_APP_ID)
            .then(Application::default_app)
    }))
}

/// The tenant's declared applications.
pub async fn list(state: &AppState, tenant: &TenantId) -> Result<Vec<Application>, Error> {
    let tenant = tenant.clone();
    Ok(state
        .store
        .read(move |db| store::applications::list(db, &tenant))
        .await?)
}

/// Declares (or replaces) an application; refused with the first violation when invalid.
pub async fn declare(state: &AppState, tenant: &TenantId, app: Application) -> Result<(), Error> {
    if let Some(violation) = app.validate().into_iter().next() {
        return Err(Error::Invalid(violation));
    }
    let tenant = tenant.clone();
    state
        .store
        .write_or_refuse(move |db| {
            let known = store::applications::get(db, &tenant, &app.app_id)?.is_some();
            if !known && store::applications::list(db, &tenant)?.len() >= MAX_APPLICATIONS_PER_TENANT
            {
                return store::refuse(Error::QuotaExceeded(format!(
                    "the tenant already declares the maximum of {MAX_APPLICATIONS_PER_TENANT} applications"
                )));
            }
            store::applications::upsert(db, &tenant, &app)?;
            Ok(())
        })
        .await?;
    Ok(())
}

/// Removes a declared application (the default one comes back when its declaration goes).
pub async fn remove(state: &AppState, tenant: &TenantId, app_id: &str) -> Result<(), Error> {
    let (tenant, lookup) = (tenant.clone(), app_id.to_string());
    let existed = state
        .store
        .write(move |db| store::applications::delete(db, &tenant, &lookup))
        .await?;
    if existed {
        Ok(())
    } else {
        Err(Error::NotFound {
            kind: super::ResourceKind::Application,
            id: app_id.to_string(),
        })
    }
}
