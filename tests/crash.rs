//! Crash safety: stream concurrent PUTs to the built binary, `kill -9` it mid-stream, restart it on
//! the same data dir, and check that every item acknowledged with 200 is there with its exact
//! content and is in the index (the index is opened read-only after a graceful stop).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Server {
    child: Child,
    address: String,
}

fn start(data_dir: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gcemu"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("gcemu starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("a ready line");
    let start = line
        .find("http://")
        .expect("the ready line names the address");
    let address = line[start..].split_whitespace().next().unwrap().to_string();
    Server { child, address }
}

fn item(id: usize, round: usize) -> Value {
    json!({
        "acl": [{"type": "everyone", "value": "everyone", "accessType": "grant"}],
        "properties": {"title": format!("item {id} round {round}"), "priority": (id * 1000 + round) as i64},
        "content": {"type": "text", "value": format!("body of item {id} in round {round} quokka")}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_items_survive_kill_9_and_are_indexed_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let client = reqwest::Client::new();
    let base = format!("{}/v1.0/external/connections", server.address);
    let created = client
        .post(&base)
        .json(&json!({"id": "crashconn", "name": "Crash"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let schema = json!({"baseType": "microsoft.graph.externalItem", "properties": [
        {"name": "title", "type": "String", "isSearchable": true, "isRetrievable": true},
        {"name": "priority", "type": "Int64", "isQueryable": true, "isRetrievable": true}]});
    let registered = client
        .patch(format!("{base}/crashconn/schema"))
        .json(&schema)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 202);

    // Writers stream PUTs (new items and rewrites) and record what was acknowledged.
    let acknowledged: Arc<Mutex<std::collections::HashMap<usize, usize>>> = Arc::default();
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut writers = Vec::new();
    for writer in 0..6 {
        let (client, base, acknowledged) = (client.clone(), base.clone(), acknowledged.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0usize;
            loop {
                let id = writer * 100_000 + n % 400;
                let round = n / 400;
                let sent = client
                    .put(format!("{base}/crashconn/items/i{id}"))
                    .json(&item(id, round))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == 200 => {
                        acknowledged.lock().unwrap().insert(id, round);
                    }
                    Ok(response) => panic!("unexpected status {}", response.status()),
                    Err(_) => return, // the server is gone
                }
                n += 1;
                if Instant::now() > deadline + Duration::from_secs(10) {
                    return;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.child.kill().unwrap(); // SIGKILL: no graceful shutdown
    server.child.wait().unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 50,
        "the stream made progress before the kill: {}",
        acknowledged.len()
    );

    let mut server = start(dir.path());
    let base = format!("{}/v1.0/external/connections", server.address);
    for (id, round) in &acknowledged {
        let response = client
            .get(format!("{base}/crashconn/items/i{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "acknowledged item i{id} is missing");
        let body: Value = response.json().await.unwrap();
        // A write in flight at the kill may have committed after its newest acknowledged round.
        let stored_round: usize =
            body["properties"]["priority"].as_i64().unwrap() as usize - id * 1000;
        assert!(
            stored_round >= *round,
            "i{id}: stored round {stored_round} is older than acknowledged round {round}"
        );
        assert_eq!(body["properties"], item(*id, stored_round)["properties"]);
        assert_eq!(body["content"], item(*id, stored_round)["content"]);
    }
    let n_items: u64 = {
        let response = client
            .get(format!(
                "{}/beta/external/connections/crashconn",
                server.address
            ))
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        body["ingestedItemsCount"].as_u64().unwrap()
    };
    assert!(n_items >= acknowledged.len() as u64);
    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(server.child.wait().unwrap().success());

    // The restarted server reconciled its index with SQLite: every stored item is indexed once.
    let tenant_dir: String = "00000000-0000-0000-0000-000000000001"
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    // The connection's index lives in the directory of its mapping generation (the only one).
    let generations: Vec<_> =
        std::fs::read_dir(dir.path().join("index").join(tenant_dir).join("crashconn"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
    assert_eq!(generations.len(), 1, "one generation: {generations:?}");
    let index = tantivy::Index::open_in_dir(&generations[0]).unwrap();
    let searcher = index.reader().unwrap().searcher();
    assert_eq!(
        searcher.num_docs(),
        n_items,
        "the index holds exactly the stored items"
    );
    let id_field = index.schema().get_field("id").unwrap();
    for id in acknowledged.keys() {
        let query = tantivy::query::TermQuery::new(
            tantivy::Term::from_field_text(id_field, &format!("i{id}")),
            tantivy::schema::IndexRecordOption::Basic,
        );
        assert_eq!(
            searcher.search(&query, &tantivy::collector::Count).unwrap(),
            1,
            "i{id} is indexed once"
        );
    }
}
