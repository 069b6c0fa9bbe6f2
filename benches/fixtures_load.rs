//! Benchmark: loading 100,000 fixture items at start (`serve --fixtures`) into a data dir
//! (durable: SQLite in WAL mode, the tantivy index on disk), from reading the file to the last
//! item indexed. Items are ~1.5 KB Graph bodies, like the shared ingest benchmark's.
//! Run: `cargo bench --bench fixtures_load` (N_ITEMS=… to change the count).

use std::time::Instant;

use gcemu::app::App;
use gcemu::config::{Config, Persistence};
use serde_json::{json, Value};

const WORDS: &[&str] = &[
    "printer",
    "network",
    "laptop",
    "password",
    "invoice",
    "outage",
    "deploy",
    "backup",
    "license",
    "monitor",
    "keyboard",
    "firewall",
    "certificate",
    "mailbox",
    "calendar",
    "database",
    "latency",
    "upgrade",
    "rollback",
    "onboarding",
    "offboarding",
    "badge",
];

fn text(seed: usize, n_words: usize) -> String {
    (0..n_words)
        .map(|i| WORDS[(seed * 31 + i * 7 + i * i) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

fn item(index: usize) -> Value {
    json!({
        "id": format!("item-{index}"),
        "properties": {
            "title": format!("Ticket {index}: {}", text(index, 6)),
            "url": format!("https://tickets.contoso.com/{index}"),
            "lastModifiedBy": format!("user{}@contoso.com", index % 97),
            "modified": "2026-11-01T10:00:00Z",
        },
        "content": {"type": "text", "value": text(index, 160)},
        "acl": [
            {"type": "group", "value": format!("g{}", index % 200), "accessType": "grant"},
            {"type": "everyoneExceptGuests", "value": "everyone", "accessType": if index.is_multiple_of(10) { "deny" } else { "grant" }},
        ],
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n_items: usize = std::env::var("N_ITEMS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let items: Vec<Value> = (0..n_items).map(item).collect();
    let document = json!({"tenants": [{
        "groups": (0..200).map(|g| json!({"id": format!("g{g}"), "displayName": format!("Group {g}")})).collect::<Vec<_>>(),
        "connections": [{
            "id": "benchconn",
            "name": "bench",
            "schema": {"properties": [
                {"name": "title", "type": "string", "isSearchable": true, "isRetrievable": true, "labels": ["title"]},
                {"name": "url", "type": "string", "isRetrievable": true, "labels": ["url"]},
                {"name": "lastModifiedBy", "type": "string", "isQueryable": true, "isRetrievable": true, "labels": ["lastModifiedBy"]},
                {"name": "modified", "type": "dateTime", "isQueryable": true, "isRetrievable": true, "isRefinable": true, "labels": ["lastModifiedDateTime"]}
            ]},
            "items": items,
        }],
    }]});
    let dir = tempfile::tempdir().expect("a temporary dir");
    let file = dir.path().join("fixtures.json");
    let bytes = document.to_string();
    std::fs::write(&file, &bytes).expect("the document is written");
    drop(document);

    let mut config = Config::for_tests();
    config.persistence = Persistence::DataDir(dir.path().join("data"));
    config.fixtures = vec![file];
    let started = Instant::now();
    let app = App::build(config).await.expect("the fixtures load");
    let seconds = started.elapsed().as_secs_f64();
    drop(app);
    println!(
        "fixtures load at start: {n_items} items ({:.0} MB document) in {seconds:.2} s: {:.0} items/s (durable, indexed)",
        bytes.len() as f64 / 1e6,
        n_items as f64 / seconds
    );
}
