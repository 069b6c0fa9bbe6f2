//! Numbered schema migrations, tracked by SQLite's `user_version`; each runs in one transaction.

use rusqlite::Connection;

use super::StoreError;

/// Migration `n` (1-based) brings the database from version `n - 1` to `n`.
const MIGRATIONS: &[&str] = &[
    // 1: external connections.
    "CREATE TABLE connections (
        tenant_id TEXT NOT NULL,
        id TEXT NOT NULL COLLATE NOCASE,
        name TEXT NOT NULL,
        description TEXT,
        state TEXT NOT NULL,
        configuration TEXT NOT NULL,
        connector_id TEXT,
        content_category TEXT NOT NULL,
        activity_settings TEXT,
        search_settings TEXT,
        enabled_content_experiences TEXT,
        compliance_settings TEXT,
        created_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, id)
    ) WITHOUT ROWID;",
    // 2: schemas and their long-running operations.
    "CREATE TABLE schemas (
        tenant_id TEXT NOT NULL,
        connection_id TEXT NOT NULL COLLATE NOCASE,
        body TEXT NOT NULL,
        effective TEXT,
        PRIMARY KEY (tenant_id, connection_id)
    ) WITHOUT ROWID;
    CREATE TABLE connection_operations (
        tenant_id TEXT NOT NULL,
        connection_id TEXT NOT NULL COLLATE NOCASE,
        id TEXT NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        planned_error TEXT,
        created_at TEXT NOT NULL,
        completes_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, connection_id, id)
    ) WITHOUT ROWID;
    CREATE INDEX connection_operations_due ON connection_operations (status, completes_at);",
    // 3: external items, their per-connection counts, activities, and the write sequence.
    "CREATE TABLE items (
        tenant_id TEXT NOT NULL,
        connection_id TEXT NOT NULL COLLATE NOCASE,
        id TEXT NOT NULL,
        acl TEXT NOT NULL,
        properties TEXT NOT NULL,
        content_type TEXT,
        content TEXT,
        seq INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, connection_id, id)
    ) WITHOUT ROWID;
    CREATE TABLE item_counts (
        tenant_id TEXT NOT NULL,
        connection_id TEXT NOT NULL COLLATE NOCASE,
        n INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, connection_id)
    ) WITHOUT ROWID;
    CREATE TABLE activities (
        tenant_id TEXT NOT NULL,
        connection_id TEXT NOT NULL COLLATE NOCASE,
        item_id TEXT NOT NULL,
        type TEXT NOT NULL,
        start_date_time TEXT NOT NULL,
        performed_by_id TEXT NOT NULL,
        performed_by_type TEXT NOT NULL
    );
    CREATE INDEX activities_by_item ON activities (tenant_id, connection_id, item_id);
    CREATE TABLE write_sequence (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL);
    INSERT INTO write_sequence (id, last) VALUES (1, 0);",
    // 4: the emulated Entra directory, and external groups with their members.
    "CREATE TABLE directory_users (
        tenant_id TEXT NOT NULL,
        id TEXT NOT NULL COLLATE NOCASE,
        user_principal_name TEXT NOT NULL COLLATE NOCASE,
        display_name TEXT NOT NULL,
        user_type TEXT NOT NULL,
        PRIMARY KEY (tenant_id, id)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX directory_users_by_upn ON directory_users (tenant_id, user_principal_name);
    CREATE TABLE directory_groups (
        tenant_id TEXT NOT NULL,
        id TEXT NOT NULL COLLATE NOCASE,
        display_name TEXT NOT NULL,
        description TEXT,
        mail_nickname TEXT,
        PRIMARY KEY (tenant_id, id)
    ) WITHOUT ROWID;
    CREATE TABLE directory_members (
        tenant_id TEXT NOT NULL,
        group_id TEXT NOT NULL COLLATE NOCASE,
        member_id TEXT NOT NULL COLLATE NOCASE,
        PRIMARY KEY (tenant_id, group_id, member_id)
    ) WITHOUT ROWID;
    CREATE TABLE external_groups (
        tenant_id TEXT NOT NULL,
        connection_id TEXT NOT NULL COLLATE NOCASE,
        id TEXT NOT NULL,
        display_name TEXT,
        description TEXT,
        PRIMARY KEY (tenant_id, connection_id, id)
    ) WITHOUT ROWID;
    CREATE TABLE external_group_members (
        tenant_id TEXT NOT NULL,
        connection_id TEXT NOT NULL COLLATE NOCASE,
        group_id TEXT NOT NULL,
        member_id TEXT NOT NULL,
        member_type TEXT NOT NULL,
        PRIMARY KEY (tenant_id, connection_id, group_id, member_type, member_id)
    ) WITHOUT ROWID;",
    // 5: the item's informationProtectionLabel.
    "ALTER TABLE items ADD COLUMN sensitivity_label_id TEXT;",
    // 6: directory memberships keyed by the member's type. An old row becomes a user membership
    // when a user has its id (as adding it resolved users first), else a group membership when
    // a group has it; a row naming neither was invisible and is dropped.
    "CREATE TABLE directory_members_typed (
        tenant_id TEXT NOT NULL,
        group_id TEXT NOT NULL COLLATE NOCASE,
        member_type TEXT NOT NULL CHECK (member_type IN ('user', 'group')),
        member_id TEXT NOT NULL COLLATE NOCASE,
        PRIMARY KEY (tenant_id, group_id, member_type, member_id)
    ) WITHOUT ROWID;
    INSERT INTO directory_members_typed (tenant_id, group_id, member_type, member_id)
        SELECT m.tenant_id, m.group_id, 'user', m.member_id FROM directory_members m
        WHERE EXISTS (SELECT 1 FROM directory_users u WHERE u.tenant_id = m.tenant_id AND u.id = m.member_id);
    INSERT INTO directory_members_typed (tenant_id, group_id, member_type, member_id)
        SELECT m.tenant_id, m.group_id, 'group', m.member_id FROM directory_members m
        WHERE NOT EXISTS (SELECT 1 FROM directory_users u WHERE u.tenant_id = m.tenant_id AND u.id = m.member_id)
        AND EXISTS (SELECT 1 FROM directory_groups g WHERE g.tenant_id = m.tenant_id AND g.id = m.member_id);
    DROP TABLE directory_members;
    ALTER TABLE directory_members_typed RENAME TO directory_members;
    CREATE INDEX directory_members_by_member ON directory_members (tenant_id, member_type, member_id);",
    // 7: users' accountEnabled, and the applications a tenant declares (fixtures).
    "ALTER TABLE directory_users ADD COLUMN account_enabled INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE applications (
        tenant_id TEXT NOT NULL,
        app_id TEXT NOT NULL COLLATE NOCASE,
        display_name TEXT NOT NULL,
        secrets TEXT NOT NULL,
        roles TEXT NOT NULL,
        PRIMARY KEY (tenant_id, app_id)
    ) WITHOUT ROWID;",
    // 8: sign-in: users' passwords (password grant), applications' delegated permissions and
    // certificates (client assertions).
    "ALTER TABLE directory_users ADD COLUMN password TEXT;
    ALTER TABLE applications ADD COLUMN scopes TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE applications ADD COLUMN certificates TEXT NOT NULL DEFAULT '[]';",
    // 9: the sum of the items' sequence numbers per connection, kept with the count, so that the
    // index is checked against the store at start without a scan of the items.
    "ALTER TABLE item_counts ADD COLUMN seq_sum INTEGER NOT NULL DEFAULT 0;
    UPDATE item_counts SET seq_sum = COALESCE((SELECT SUM(seq) FROM items
        WHERE items.tenant_id = item_counts.tenant_id AND items.connection_id = item_counts.connection_id), 0);",
    // 10: items in a rowid table. In a WITHOUT ROWID table a row keeps at most about 1,000 bytes
    // in its B-tree page, so a typical item (1.5 to 2 KB: ACL, properties, content) spilled into
    // an overflow page of its own: 4.7 KB written per item instead of about 2, a WAL and
    // checkpoints more than twice as large. The key stays unique through the primary key's index.
    "CREATE TABLE items_in_rows (
        tenant_id TEXT NOT NULL,
        connection_id TEXT NOT NULL COLLATE NOCASE,
        id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        acl TEXT NOT NULL,
        properties TEXT NOT NULL,
        sensitivity_label_id TEXT,
        content_type TEXT,
        content TEXT,
        PRIMARY KEY (tenant_id, connection_id, id)
    );
    INSERT INTO items_in_rows (tenant_id, connection_id, id, seq, acl, properties, sensitivity_label_id, content_type, content)
        SELECT tenant_id, connection_id, id, seq, acl, properties, sensitivity_label_id, content_type, content FROM items;
    DROP TABLE items;
    ALTER TABLE items_in_rows RENAME TO items;",
];

/// Every table holding tenant data (each has a `tenant_id` column); reset walks this list.
pub const TENANT_TABLES: &[&str] = &[
    "connections",
    "schemas",
    "connection_operations",
    "items",
    "item_counts",
    "activities",
    "directory_users",
    "directory_groups",
    "directory_members",
    "external_groups",
    "external_group_members",
    "applications",
];

/// Tables whose rows belong to one connection (each has a `connection_id` column);
/// deleting a connection clears its rows in each.
pub const CONNECTION_TABLES: &[&str] = &[
    "schemas",
    "connection_operations",
    "items",
    "item_counts",
    "activities",
    "external_groups",
    "external_group_members",
];

pub fn latest_version() -> usize {
    MIGRATIONS.len()
}

pub fn apply(connection: &Connection) -> Result<(), StoreError> {
    apply_up_to(connection, MIGRATIONS.len())
}

/// Applies the migrations that bring the database to version `target` (at most the latest).
fn apply_up_to(connection: &Connection, target: usize) -> Result<(), StoreError> {
    let current: usize = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::Open(format!(
            "the database is at schema version {current}, newer than this gcemu ({}); use a newer gcemu or another data dir",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().take(target).skip(current) {
        let version = index + 1;
        connection.execute_batch(&format!(
            "BEGIN; {sql} PRAGMA user_version = {version}; COMMIT;"
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_reach_the_latest_version_and_are_idempotent() {
        let connection = Connection::open_in_memory().unwrap();
        apply(&connection).unwrap();
        apply(&connection).unwrap();
        let version: usize = connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, latest_version());
    }

    #[test]
    fn version_6_types_existing_directory_memberships() {
        let connection = Connection::open_in_memory().unwrap();
        apply_up_to(&connection, 5).unwrap();
        connection
            .execute_batch(
                "INSERT INTO directory_users VALUES ('t', 'u1', 'u1@contoso.com', 'U1', 'Member');
                 INSERT INTO directory_users VALUES ('t', 'both', 'both@contoso.com', 'B', 'Member');
                 INSERT INTO directory_groups VALUES ('t', 'sales', 'Sales', NULL, NULL);
                 INSERT INTO directory_groups VALUES ('t', 'both', 'Both', NULL, NULL);
                 INSERT INTO directory_groups VALUES ('t', 'staff', 'Staff', NULL, NULL);
                 INSERT INTO directory_members VALUES ('t', 'sales', 'U1');
                 INSERT INTO directory_members VALUES ('t', 'staff', 'sales');
                 INSERT INTO directory_members VALUES ('t', 'staff', 'both');
                 INSERT INTO directory_members VALUES ('t', 'staff', 'gone');",
            )
            .unwrap();
        apply(&connection).unwrap();
        let mut statement = connection
            .prepare("SELECT group_id, member_type, member_id FROM directory_members ORDER BY 1, 3")
            .unwrap();
        let rows: Vec<(String, String, String)> = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected = [
            ("sales", "user", "U1"),
            ("staff", "user", "both"),
            ("staff", "group", "sales"),
        ]
        .map(|(g, t, m)| (g.to_string(), t.to_string(), m.to_string()));
        assert_eq!(rows, expected);
    }

    #[test]
    fn version_10_keeps_every_item_and_its_key_unique_in_a_rowid_table() {
        let connection = Connection::open_in_memory().unwrap();
        apply_up_to(&connection, 9).unwrap();
        connection
            .execute_batch(
                "INSERT INTO items (tenant_id, connection_id, id, acl, properties, content_type, content, seq, sensitivity_label_id)
                 VALUES ('t', 'Wiki', 'a', '[]', '{\"title\":\"A\"}', 'text', 'alpha', 3, NULL),
                        ('t', 'wiki', 'b', '[]', '{}', NULL, NULL, 5, 'label-1');",
            )
            .unwrap();
        apply(&connection).unwrap();
        type Row = (String, String, i64, Option<String>, Option<String>);
        let rows: Vec<Row> = connection
            .prepare(
                "SELECT id, properties, seq, content, sensitivity_label_id FROM items ORDER BY id",
            )
            .unwrap()
            .query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(4)?,
                    row.get(3)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                (
                    "a".into(),
                    r#"{"title":"A"}"#.into(),
                    3,
                    None,
                    Some("alpha".into())
                ),
                ("b".into(), "{}".into(), 5, Some("label-1".into()), None),
            ]
        );
        let without_rowid: i64 = connection
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'items' AND sql LIKE '%WITHOUT ROWID%'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(without_rowid, 0);
        // The key (connection ids without regard to case) is still unique.
        let duplicate = connection.execute(
            "INSERT INTO items (tenant_id, connection_id, id, seq, acl, properties) VALUES ('t', 'WIKI', 'a', 9, '[]', '{}')",
            [],
        );
        assert!(duplicate.is_err());
    }

    #[test]
    fn every_connection_table_is_a_tenant_table_with_a_connection_column() {
        let connection = Connection::open_in_memory().unwrap();
        apply(&connection).unwrap();
        for table in CONNECTION_TABLES {
            assert!(TENANT_TABLES.contains(table), "{table}");
            connection
                .prepare(&format!(
                    "SELECT tenant_id, connection_id FROM {table} LIMIT 0"
                ))
                .unwrap_or_else(|error| panic!("{table}: {error}"));
        }
    }

    #[test]
    fn every_tenant_table_exists_and_has_a_tenant_column() {
        let connection = Connection::open_in_memory().unwrap();
        apply(&connection).unwrap();
        for table in TENANT_TABLES {
            connection
                .prepare(&format!("SELECT tenant_id FROM {table} LIMIT 0"))
                .unwrap_or_else(|error| panic!("{table}: {error}"));
        }
    }
}
