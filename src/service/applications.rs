//! Applications a tenant declares (through fixtures): looked up when minting app tokens.

use super::Error;
use crate::domain::application::Application;
use crate::domain::ids::TenantId;
use crate::state::AppState;
use crate::store;

/// The tenant's application with this app id (any letter case), if declared.
pub async fn find(
    state: &AppState,
    tenant: &TenantId,
    app_id: &str,
) -> Result<Option<Application>, Error> {
    let (tenant, app_id) = (tenant.clone(), app_id.to_string());
    Ok(state
        .store
        .read(move |db| store::applications::get(db, &tenant, &app_id))
        .await?)
}
