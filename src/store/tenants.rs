//! SQL across tenants: which tenants hold anything, and how much (the console's tenant list).

use rusqlite::Connection;

use super::StoreError;
use crate::domain::ids::TenantId;

/// What one tenant holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantCounts {
    pub tenant: TenantId,
    pub users: u64,
    pub groups: u64,
    pub connections: u64,
    pub items: u64,
}

/// Every tenant with a user, group, application or connection, in id order.
pub fn list(db: &Connection) -> Result<Vec<TenantCounts>, StoreError> {
    let mut statement = db.prepare_cached(
        "SELECT t.tenant_id,
            (SELECT COUNT(*) FROM directory_users u WHERE u.tenant_id = t.tenant_id),
            (SELECT COUNT(*) FROM directory_groups g WHERE g.tenant_id = t.tenant_id),
            (SELECT COUNT(*) FROM connections c WHERE c.tenant_id = t.tenant_id),
            (SELECT COALESCE(SUM(n), 0) FROM item_counts i WHERE i.tenant_id = t.tenant_id)
         FROM (SELECT tenant_id FROM directory_users UNION SELECT tenant_id FROM directory_groups
               UNION SELECT tenant_id FROM connections UNION SELECT tenant_id FROM applications) t
         ORDER BY t.tenant_id",
    )?;
    let rows = statement.query_map([], |row| {
        let count = |column: usize| row.get::<_, i64>(column).map(|n| n.max(0) as u64);
        Ok(TenantCounts {
            tenant: TenantId::stored(row.get(0)?),
            users: count(1)?,
            groups: count(2)?,
            connections: count(3)?,
            items: count(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
