//! SQL for the applications a tenant declares. Tenant first.

use rusqlite::{params, Connection};

use super::StoreError;
use crate::domain::application::Application;
use crate::domain::ids::TenantId;

/// Inserts or replaces the application with this app id.
pub fn upsert(db: &Connection, tenant: &TenantId, app: &Application) -> Result<(), StoreError> {
    db.prepare_cached("INSERT OR REPLACE INTO applications (tenant_id, app_id, display_name, secrets, roles, scopes, certificates)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?
.execute(
        params![
            tenant.as_str(),
            app.app_id,
            app.display_name,
            serde_json::json!(app.secrets).to_string(),
            serde_json::json!(app.roles).to_string(),
            serde_json::json!(app.scopes).to_string(),
            serde_json::json!(app.certificates).to_string(),
        ],
    )?;
    Ok(())
}

pub fn list(db: &Connection, tenant: &TenantId) -> Result<Vec<Application>, StoreError> {
    select(db, tenant, None)
}

/// The application with this app id (compared without regard to case).
pub fn get(
    db: &Connection,
    tenant: &TenantId,
    app_id: &str,
) -> Result<Option<Application>, StoreError> {
    Ok(select(db, tenant, Some(app_id))?.into_iter().next())
}

fn select(
    db: &Connection,
    tenant: &TenantId,
    app_id: Option<&str>,
) -> Result<Vec<Application>, StoreError> {
    let mut statement = db.prepare_cached(
        "SELECT app_id, display_name, secrets, roles, scopes, certificates FROM applications
         WHERE tenant_id = ?1 AND (?2 IS NULL OR app_id = ?2) ORDER BY app_id",
    )?;
    let rows = statement.query_map(params![tenant.as_str(), app_id], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, String>(4)?,
            row.get::<_, String>(5)?,
        ))
    })?;
    let mut apps = Vec::new();
    for row in rows {
        let (app_id, display_name, secrets, roles, scopes, certificates) = row?;
        apps.push(Application {
            app_id,
            display_name,
            secrets: strings(&secrets)?,
            roles: strings(&roles)?,
            scopes: strings(&scopes)?,
            certificates: strings(&certificates)?,
        });
    }
    Ok(apps)
}

fn strings(raw: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(raw).map_err(|error| StoreError::Corrupt(format!("applications: {error}")))
}

/// Removes the application with this app id; whether it existed.
pub fn delete(db: &Connection, tenant: &TenantId, app_id: &str) -> Result<bool, StoreError> {
    Ok(db
        .prepare_cached("DELETE FROM applications WHERE tenant_id = ?1 AND app_id = ?2")?
        .execute(params![tenant.as_str(), app_id])?
        > 0)
}
