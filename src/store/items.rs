//! SQL for external items, their counts and activities. Every function takes the tenant first,
//! except the sequence, which is global and says so.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use super::StoreError;
use crate::domain::acl::{AccessType, AclEntry, AclType, IdentitySource};
use crate::domain::connection::ConnectionState;
use crate::domain::ids::{ConnectionId, ItemId, TenantId};
use crate::domain::item::{ActivityType, ContentType, ExternalActivity, ExternalItem, ItemContent};

/// Takes the next number of the global write sequence (in the caller's write job, on the store
/// thread). The number is counted in memory and written once per commit (`sequence::persist`),
/// not once per item; a number taken by a job that is rolled back is simply never used.
pub fn next_sequence(db: &Connection) -> Result<u64, StoreError> {
    super::sequence::next(db)
}

/// The last number the global write sequence gave out.
pub fn last_sequence(db: &Connection) -> Result<u64, StoreError> {
    Ok(db
        .prepare_cached("SELECT last FROM write_sequence WHERE id = 1")?
        .query_row([], |row| row.get(0))?)
}

pub fn exists(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    id: &ItemId,
) -> Result<bool, StoreError> {
    Ok(db
        .prepare_cached(
            "SELECT 1 FROM items WHERE tenant_id = ?1 AND connection_id = ?2 AND id = ?3",
        )?
        .query_row(
            params![tenant.as_str(), connection_id.as_str(), id.as_str()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Overwrites an existing item with its new version `seq`; returns false when there is none.
pub fn replace(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    item: &ExternalItem,
    seq: u64,
) -> Result<bool, StoreError> {
    // The version replaced leaves the connection's sequence sum, the new one joins it.
    let previous: Option<i64> = db
        .prepare_cached(
            "SELECT seq FROM items WHERE tenant_id = ?1 AND connection_id = ?2 AND id = ?3",
        )?
        .query_row(
            params![tenant.as_str(), connection_id.as_str(), item.id.as_str()],
            |row| row.get(0),
        )
        .optional()?;
    let Some(previous) = previous else {
        return Ok(false);
    };
    add_to_counts(db, tenant, connection_id, 0, seq as i64 - previous)?;
    let c = ItemColumns::of(item, seq)?;
    let n_rows = db.prepare_cached("UPDATE items SET acl = ?4, properties = ?5, content_type = ?6, content = ?7, seq = ?8, sensitivity_label_id = ?9
         WHERE tenant_id = ?1 AND connection_id = ?2 AND id = ?3")?
.execute(params![tenant.as_str(), connection_id.as_str(), item.id.as_str(), c.acl, c.properties, c.content_type, c.content, c.seq, c.label])?;
    Ok(n_rows == 1)
}

/// Adds a new item (version `seq`) and counts it; fails if the id is taken.
pub fn insert(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    item: &ExternalItem,
    seq: u64,
) -> Result<(), StoreError> {
    if insert_if_new(db, tenant, connection_id, item, seq)? {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!(
            "item '{}' of connection '{connection_id}' is already stored",
            item.id
        )))
    }
}

/// Adds the item (version `seq`) and counts it, unless one with its id exists: then nothing
/// changes and the answer is false.
pub fn insert_if_new(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    item: &ExternalItem,
    seq: u64,
) -> Result<bool, StoreError> {
    let c = ItemColumns::of(item, seq)?;
    let n_rows = db.prepare_cached("INSERT INTO items (tenant_id, connection_id, id, acl, properties, content_type, content, seq, sensitivity_label_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING")?
.execute(params![tenant.as_str(), connection_id.as_str(), item.id.as_str(), c.acl, c.properties, c.content_type, c.content, c.seq, c.label])?;
    if n_rows == 1 {
        add_to_counts(db, tenant, connection_id, 1, seq as i64)?;
    }
    Ok(n_rows == 1)
}

/// What an item write checks first, in one statement: the connection's state (`None` when it
/// does not exist) and the items the tenant and the connection hold.
pub fn state_and_counts(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
) -> Result<Option<(ConnectionState, ItemCounts)>, StoreError> {
    let row: Option<(String, i64, i64)> = db
        .prepare_cached(
            "SELECT state,
                (SELECT COALESCE(SUM(n), 0) FROM item_counts WHERE tenant_id = ?1),
                (SELECT COALESCE(MAX(n), 0) FROM item_counts WHERE tenant_id = ?1 AND connection_id = ?2)
             FROM connections WHERE tenant_id = ?1 AND id = ?2",
        )?
        .query_row(params![tenant.as_str(), connection_id.as_str()], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    row.map(|(raw, in_tenant, in_connection)| {
        let state = ConnectionState::parse(&raw).ok_or_else(|| {
            StoreError::Corrupt(format!("connection {connection_id}: state '{raw}'"))
        })?;
        let counts = ItemCounts {
            in_tenant: in_tenant.max(0) as u64,
            in_connection: in_connection.max(0) as u64,
        };
        Ok((state, counts))
    })
    .transpose()
}

/// The items a tenant holds and those of one of its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemCounts {
    pub in_tenant: u64,
    pub in_connection: u64,
}

/// The columns of an item row after its key, in statement order (`?4` to `?9`): the ACL and
/// properties as JSON documents (serialized from the item as it is, not copied), content type,
/// content, the version and the label.
struct ItemColumns<'a> {
    acl: String,
    properties: String,
    content_type: Option<&'a str>,
    content: Option<&'a str>,
    seq: i64,
    label: Option<&'a str>,
}

impl<'a> ItemColumns<'a> {
    fn of(item: &'a ExternalItem, seq: u64) -> Result<ItemColumns<'a>, StoreError> {
        let properties = serde_json::to_string(&item.properties)
            .map_err(|error| StoreError::Corrupt(format!("item properties: {error}")))?;
        Ok(ItemColumns {
            acl: acl_to_json(&item.acl),
            properties,
            content_type: item.content.as_ref().map(|c| c.content_type.as_str()),
            content: item.content.as_ref().map(|c| c.value.as_str()),
            seq: seq as i64,
            label: item.sensitivity_label_id.as_deref(),
        })
    }
}

pub fn get(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    id: &ItemId,
) -> Result<Option<ExternalItem>, StoreError> {
    let row = db
        .prepare_cached("SELECT id, acl, properties, content_type, content, sensitivity_label_id FROM items WHERE tenant_id = ?1 AND connection_id = ?2 AND id = ?3")?
.query_row(
            params![tenant.as_str(), connection_id.as_str(), id.as_str()],
            raw_item,
        )
        .optional()?;
    row.map(item_from_raw).transpose()
}

/// The item and the write sequence number of its stored version.
pub fn get_versioned(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    id: &ItemId,
) -> Result<Option<(ExternalItem, u64)>, StoreError> {
    let row = db
        .prepare_cached("SELECT id, acl, properties, content_type, content, sensitivity_label_id, seq FROM items WHERE tenant_id = ?1 AND connection_id = ?2 AND id = ?3")?
        .query_row(
            params![tenant.as_str(), connection_id.as_str(), id.as_str()],
            |row| Ok((raw_item(row)?, row.get::<_, i64>(6)?)),
        )
        .optional()?;
    row.map(|(raw, seq)| Ok((item_from_raw(raw)?, seq as u64)))
        .transpose()
}

/// Deletes the item; returns whether it existed.
pub fn delete(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    id: &ItemId,
) -> Result<bool, StoreError> {
    let removed: Option<i64> = db
        .prepare_cached(
            "DELETE FROM items WHERE tenant_id = ?1 AND connection_id = ?2 AND id = ?3 RETURNING seq",
        )?
        .query_row(
            params![tenant.as_str(), connection_id.as_str(), id.as_str()],
            |row| row.get(0),
        )
        .optional()?;
    let n_rows = usize::from(removed.is_some());
    if let Some(seq) = removed {
        add_to_counts(db, tenant, connection_id, -1, -seq)?;
        db.prepare_cached(
            "DELETE FROM activities WHERE tenant_id = ?1 AND connection_id = ?2 AND item_id = ?3",
        )?
        .execute(params![
            tenant.as_str(),
            connection_id.as_str(),
            id.as_str()
        ])?;
    }
    Ok(n_rows == 1)
}

/// Adds to the connection's item count and sequence sum.
fn add_to_counts(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    delta: i64,
    seq_delta: i64,
) -> Result<(), StoreError> {
    db.prepare_cached(
        "INSERT INTO item_counts (tenant_id, connection_id, n, seq_sum) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (tenant_id, connection_id) DO UPDATE SET n = n + excluded.n, seq_sum = seq_sum + excluded.seq_sum",
    )?
    .execute(params![tenant.as_str(), connection_id.as_str(), delta, seq_delta])?;
    Ok(())
}

pub fn count_in_connection(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
) -> Result<u64, StoreError> {
    let n: Option<i64> = db
        .prepare_cached("SELECT n FROM item_counts WHERE tenant_id = ?1 AND connection_id = ?2")?
        .query_row(params![tenant.as_str(), connection_id.as_str()], |row| {
            row.get(0)
        })
        .optional()?;
    Ok(n.unwrap_or(0).max(0) as u64)
}

pub fn count_in_tenant(db: &Connection, tenant: &TenantId) -> Result<u64, StoreError> {
    let n: i64 = db
        .prepare_cached("SELECT COALESCE(SUM(n), 0) FROM item_counts WHERE tenant_id = ?1")?
        .query_row([tenant.as_str()], |row| row.get(0))?;
    Ok(n.max(0) as u64)
}

/// The number of items and the sum of their sequence numbers: what the index must match.
pub fn fingerprint(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
) -> Result<(u64, u128), StoreError> {
    // Kept with every item write (migration 9): no scan of the items.
    let (n, sum): (i64, i64) = db
        .prepare_cached(
            "SELECT n, seq_sum FROM item_counts WHERE tenant_id = ?1 AND connection_id = ?2",
        )?
        .query_row(params![tenant.as_str(), connection_id.as_str()], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?
        .unwrap_or((0, 0));
    Ok((n.max(0) as u64, sum.max(0) as u128))
}

/// Up to `limit` items with ids after `after`, in id order, with their sequence numbers.
pub fn page(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(ExternalItem, u64)>, StoreError> {
    let mut statement = db.prepare_cached(
        "SELECT id, acl, properties, content_type, content, sensitivity_label_id, seq FROM items
         WHERE tenant_id = ?1 AND connection_id = ?2 AND id > ?3 ORDER BY id LIMIT ?4",
    )?;
    let rows = statement.query_map(
        params![
            tenant.as_str(),
            connection_id.as_str(),
            after.unwrap_or(""),
            limit as i64
        ],
        |row| Ok((raw_item(row)?, row.get::<_, i64>(6)?)),
    )?;
    let mut items = Vec::new();
    for row in rows {
        let (raw, seq) = row?;
        items.push((item_from_raw(raw)?, seq as u64));
    }
    Ok(items)
}

/// Up to `limit` of the connection's item ids after `after`, in id order, each with whether the
/// item passes `contains` (lowercase): its id or a property value contains it, ASCII letters
/// compared without regard to case (always true without `contains`). The console pages and
/// filters items with it, one bounded chunk per store job.
pub fn scan_ids(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    after: Option<&str>,
    contains: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, bool)>, StoreError> {
    let mut statement = db.prepare_cached(
        "SELECT id, (?3 IS NULL OR instr(lower(id), ?3) > 0
            OR EXISTS (SELECT 1 FROM json_each(properties) WHERE instr(lower(CAST(value AS TEXT)), ?3) > 0))
         FROM items WHERE tenant_id = ?1 AND connection_id = ?2 AND id > ?4 ORDER BY id LIMIT ?5",
    )?;
    let rows = statement.query_map(
        params![
            tenant.as_str(),
            connection_id.as_str(),
            contains,
            after.unwrap_or(""),
            limit as i64
        ],
        |row| Ok((row.get::<_, String>(0)?, row.get::<_, bool>(1)?)),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn insert_activities(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    item_id: &ItemId,
    activities: &[ExternalActivity],
) -> Result<(), StoreError> {
    if activities.is_empty() {
        return Ok(());
    }
    let mut statement = db.prepare_cached(
        "INSERT INTO activities (tenant_id, connection_id, item_id, type, start_date_time, performed_by_id, performed_by_type)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for activity in activities {
        statement.execute(params![
            tenant.as_str(),
            connection_id.as_str(),
            item_id.as_str(),
            activity.activity_type.as_str(),
            activity.start_date_time,
            activity.performed_by_id,
            activity.performed_by_type,
        ])?;
    }
    Ok(())
}

pub fn count_activities(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    item_id: &ItemId,
) -> Result<u64, StoreError> {
    let n: i64 = db.prepare_cached("SELECT COUNT(*) FROM activities WHERE tenant_id = ?1 AND connection_id = ?2 AND item_id = ?3")?
.query_row(
        params![tenant.as_str(), connection_id.as_str(), item_id.as_str()],
        |row| row.get(0),
    )?;
    Ok(n as u64)
}

type RawItem = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn raw_item(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawItem> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn item_from_raw(
    (id, acl, properties, content_type, content, sensitivity_label_id): RawItem,
) -> Result<ExternalItem, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("item {id}: {what}"));
    let properties: Map<String, Value> = match serde_json::from_str(&properties) {
        Ok(Value::Object(map)) => map,
        _ => return Err(corrupt("properties")),
    };
    let content = match (content_type, content) {
        (Some(content_type), Some(value)) => Some(ItemContent {
            content_type: ContentType::parse(&content_type)
                .ok_or_else(|| corrupt("content type"))?,
            value,
        }),
        _ => None,
    };
    Ok(ExternalItem {
        id: ItemId::parse(&id).map_err(|v| StoreError::Corrupt(v.message))?,
        acl: acl_from_json(&acl).ok_or_else(|| corrupt("acl"))?,
        properties,
        content,
        sensitivity_label_id,
    })
}

/// An ACL entry as the `acl` column keeps it.
#[derive(serde::Serialize)]
struct StoredAclEntry<'a> {
    #[serde(rename = "type")]
    acl_type: &'a str,
    value: &'a str,
    #[serde(rename = "accessType")]
    access_type: &'a str,
    #[serde(rename = "identitySource")]
    identity_source: Option<&'a str>,
}

fn acl_to_json(acl: &[AclEntry]) -> String {
    let entries: Vec<StoredAclEntry<'_>> = acl
        .iter()
        .map(|entry| StoredAclEntry {
            acl_type: entry.acl_type.as_str(),
            value: &entry.value,
            access_type: entry.access_type.as_str(),
            identity_source: entry.identity_source.map(IdentitySource::as_str),
        })
        .collect();
    serde_json::to_string(&entries).unwrap_or_else(|_| "[]".to_string())
}

fn acl_from_json(raw: &str) -> Option<Vec<AclEntry>> {
    let entries: Vec<Value> = serde_json::from_str(raw).ok()?;
    entries
        .iter()
        .map(|entry| {
            Some(AclEntry {
                acl_type: AclType::parse(entry["type"].as_str()?)?,
                value: entry["value"].as_str()?.to_string(),
                access_type: AccessType::parse(entry["accessType"].as_str()?)?,
                identity_source: match entry["identitySource"].as_str() {
                    None => None,
                    Some(source) => Some(IdentitySource::parse(source)?),
                },
            })
        })
        .collect()
}

/// Every recorded activity of the connection's items, by item id, in the order they were recorded.
pub fn activities_of_connection(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
) -> Result<Vec<(String, ExternalActivity)>, StoreError> {
    let mut statement = db.prepare_cached(
        "SELECT item_id, type, start_date_time, performed_by_id, performed_by_type FROM activities
         WHERE tenant_id = ?1 AND connection_id = ?2 ORDER BY rowid",
    )?;
    let rows = statement.query_map(params![tenant.as_str(), connection_id.as_str()], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, String>(4)?,
        ))
    })?;
    let mut activities = Vec::new();
    for row in rows {
        let (item_id, raw_type, start_date_time, performed_by_id, raw_identity) = row?;
        let activity_type = ActivityType::parse(&raw_type)
            .ok_or_else(|| StoreError::Corrupt(format!("activity type '{raw_type}'")))?;
        let performed_by_type = crate::domain::connection::parse_enum_member(
            crate::domain::item::IDENTITY_TYPES,
            &raw_identity,
        )
        .ok_or_else(|| StoreError::Corrupt(format!("activity performer type '{raw_identity}'")))?;
        activities.push((
            item_id,
            ExternalActivity {
                activity_type,
                start_date_time,
                performed_by_id,
                performed_by_type,
            },
        ));
    }
    Ok(activities)
}

/// Bounds of one page of `report_page`.
#[derive(Debug, Clone, Copy)]
pub struct ReportPage {
    /// Items at most.
    pub max_items: usize,
    /// The page ends after the item that brings the bytes read to this many (at least one item).
    pub max_bytes: usize,
    /// Characters of each item's content read.
    pub content_prefix_chars: usize,
    /// A property bag longer than this (in characters) is not read.
    pub max_properties_chars: usize,
}

/// An item as the connector report reads it: its ACL, its property bag unless it was too long
/// (`properties_read`), and the start of its content.
#[derive(Debug, Clone)]
pub struct ReportedItem {
    pub item: ExternalItem,
    pub properties_read: bool,
}

/// Items with ids after `after`, in id order, within the page's bounds; and whether more may follow.
pub fn report_page(
    db: &Connection,
    tenant: &TenantId,
    connection_id: &ConnectionId,
    after: Option<&str>,
    page: &ReportPage,
) -> Result<(Vec<ReportedItem>, bool), StoreError> {
    let mut statement = db.prepare_cached(
        "SELECT id, acl,
                CASE WHEN length(properties) <= ?5 THEN properties ELSE '{}' END,
                content_type, substr(content, 1, ?6), sensitivity_label_id,
                length(properties) <= ?5
         FROM items WHERE tenant_id = ?1 AND connection_id = ?2 AND id > ?3 ORDER BY id LIMIT ?4",
    )?;
    let mut rows = statement.query(params![
        tenant.as_str(),
        connection_id.as_str(),
        after.unwrap_or(""),
        page.max_items as i64,
        page.max_properties_chars as i64,
        page.content_prefix_chars as i64,
    ])?;
    let mut items = Vec::new();
    let mut bytes = 0usize;
    while let Some(row) = rows.next()? {
        let raw = raw_item(row)?;
        let properties_read: bool = row.get(6)?;
        bytes += raw.1.len() + raw.2.len() + raw.4.as_ref().map_or(0, String::len);
        items.push(ReportedItem {
            item: item_from_raw(raw)?,
            properties_read,
        });
        if bytes >= page.max_bytes {
            return Ok((items, true));
        }
    }
    let more = items.len() >= page.max_items;
    Ok((items, more))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(id: &str, title: &str, content: &str) -> ExternalItem {
        ExternalItem {
            id: ItemId::parse(id).unwrap(),
            acl: vec![AclEntry {
                acl_type: AclType::User,
                value: "adele@contoso.com".into(),
                access_type: AccessType::Grant,
                identity_source: None,
            }],
            properties: json!({ "title": title }).as_object().unwrap().clone(),
            content: Some(ItemContent {
                content_type: ContentType::Text,
                value: content.into(),
            }),
            sensitivity_label_id: None,
        }
    }

    #[test]
    fn report_pages_are_bounded_by_items_bytes_content_and_property_size() {
        let db = Connection::open_in_memory().unwrap();
        super::super::migrations::apply(&db).unwrap();
        let tenant = TenantId::default_tenant();
        let connection = ConnectionId::lookup("c1");
        let items = [
            item("a", "short", "first"),
            item("b", &"x".repeat(100), &"é".repeat(50)),
            item("c", "short", "third"),
            item("d", "short", "fourth"),
        ];
        for (seq, item) in items.iter().enumerate() {
            insert(&db, &tenant, &connection, item, seq as u64 + 1).unwrap();
        }
        let page = ReportPage {
            max_items: 2,
            max_bytes: 1 << 20,
            content_prefix_chars: 10,
            max_properties_chars: 50,
        };
        let (first, more) = report_page(&db, &tenant, &connection, None, &page).unwrap();
        assert!(more);
        let ids: Vec<&str> = first.iter().map(|r| r.item.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert!(first[0].properties_read);
        assert_eq!(first[0].item.acl.len(), 1);
        // Too long a property bag is not read; content is cut at a character count.
        assert!(!first[1].properties_read);
        assert!(first[1].item.properties.is_empty());
        assert_eq!(
            first[1].item.content.as_ref().unwrap().value,
            "é".repeat(10)
        );
        let (rest, more) = report_page(&db, &tenant, &connection, Some("b"), &page).unwrap();
        assert_eq!(rest.len(), 2);
        assert!(more, "a full page may have more");
        let (last, more) = report_page(&db, &tenant, &connection, Some("d"), &page).unwrap();
        assert!(last.is_empty() && !more);
        // A page ends at its byte budget, after at least one item.
        let tight = ReportPage {
            max_bytes: 1,
            ..page
        };
        let (one, more) = report_page(&db, &tenant, &connection, None, &tight).unwrap();
        assert_eq!(one.len(), 1);
        assert!(more);
        // Another tenant's or connection's items are not read.
        let other = TenantId::parse("other").unwrap();
        assert!(report_page(&db, &other, &connection, None, &page)
            .unwrap()
            .0
            .is_empty());
    }
}
