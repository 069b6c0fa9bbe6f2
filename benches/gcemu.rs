//! gcemu's figures on this machine, measured against the built binary over loopback HTTP:
//! `cargo bench --bench gcemu` (release). For each scale (`GCEMU_BENCH_SCALES`, default
//! `100000,1000000` items) it starts `gcemu serve` on a temporary data dir, loads a generated
//! tenant (users in nested Entra and external groups, varied ACLs, text drawn from a Zipf-like
//! vocabulary) and prints one table:
//! - durable ingest at 1 and 16 clients (items/s, p50, p99 of each `PUT`);
//! - search as a user in 50 groups, two-term queries with an aggregation, at 1 and 4 clients;
//! - the time from a `200` on `PUT` to the item being found by search;
//! - start-up to healthy on the data dir, and resident memory at rest and at peak;
//! - the index rebuilt from the store (index directory deleted), as items/s;
//! - the reset of the tenant.
//!
//! `GCEMU_BENCH_SMOKE=1` runs a seconds-long version (2,000 items) for CI; `GCEMU_BENCH_SECONDS`
//! sets each search measurement's length (default 10). All traffic goes to 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const CONNECTION: &str = "benchtickets";
const USER: &str = "bench.user@contoso.com";
const N_EXTERNAL_GROUPS: usize = 100;
const N_ENTRA_GROUPS: usize = 30;
const N_OTHER_USERS: usize = 50;
const N_QUERIES: usize = 200;
const N_PROBES: usize = 20;

/// Deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A vocabulary of pronounceable words; word `k` is drawn with a frequency that falls with `k`.
struct Vocabulary(Vec<String>);

impl Vocabulary {
    fn new() -> Vocabulary {
        const SYLLABLES: &[&str] = &[
            "ka", "lo", "mi", "ner", "tas", "vel", "qui", "dor", "sam", "pel", "ri", "zon", "bra",
            "fen", "gul", "hor", "jis", "mok", "nuv", "pra", "sel", "tor", "ul", "wen",
        ];
        let mut rng = Rng(7);
        let common = [
            "the", "printer", "network", "laptop", "account", "password", "email", "server",
            "invoice", "customer", "order", "release", "meeting", "report", "error", "update",
        ];
        let mut words: Vec<String> = common.iter().map(|w| w.to_string()).collect();
        while words.len() < 5000 {
            let n = 2 + rng.below(3);
            let word: String = (0..n)
                .map(|_| SYLLABLES[rng.below(SYLLABLES.len())])
                .collect();
            if !words.contains(&word) {
                words.push(word);
            }
        }
        Vocabulary(words)
    }

    fn word(&self, rng: &mut Rng) -> &str {
        // Rank ~ N^u^2: a few words are everywhere, most are rare.
        let rank = ((self.0.len() as f64).powf(rng.unit().powi(2)) as usize).min(self.0.len()) - 1;
        &self.0[rank]
    }

    fn text(&self, rng: &mut Rng, words: usize) -> String {
        let mut text = String::new();
        for _ in 0..words {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(self.word(rng));
        }
        text
    }
}

fn item_body(n: usize, vocabulary: &Vocabulary) -> Value {
    let mut rng = Rng(n as u64 * 31 + 1);
    let mut acl = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let entry = match rng.below(20) {
            0 => json!({"type": "everyone", "value": "everyone", "accessType": "grant"}),
            1 => {
                json!({"type": "everyoneExceptGuests", "value": "everyone", "accessType": "grant"})
            }
            2..=6 => {
                json!({"type": "group", "value": format!("bench-g{}", rng.below(N_ENTRA_GROUPS)), "accessType": "grant"})
            }
            7 => {
                json!({"type": "user", "value": format!("user{}@contoso.com", rng.below(N_OTHER_USERS)), "accessType": "grant"})
            }
            _ => {
                json!({"type": "externalGroup", "value": format!("eg{}", rng.below(N_EXTERNAL_GROUPS)), "accessType": "grant"})
            }
        };
        acl.push(entry);
    }
    if rng.below(30) == 0 {
        acl.push(json!({"type": "externalGroup", "value": format!("eg{}", rng.below(N_EXTERNAL_GROUPS)), "accessType": "deny"}));
    }
    let title_words = 5 + rng.below(6);
    let title = vocabulary.text(&mut rng, title_words);
    let status = ["open", "closed", "pending", "resolved"][rng.below(4)];
    let body_words = 150 + rng.below(100);
    let body = vocabulary.text(&mut rng, body_words);
    let (tag1, tag2) = (
        vocabulary.word(&mut rng).to_string(),
        vocabulary.word(&mut rng).to_string(),
    );
    json!({
        "acl": acl,
        "properties": {
            "title": title,
            "status": status,
            "priority": rng.below(5) as i64,
            "modified": format!("2026-{:02}-{:02}T10:00:00Z", 1 + rng.below(12), 1 + rng.below(28)),
            "tags@odata.type": "Collection(String)",
            "tags": [tag1, tag2],
        },
        "content": {"type": "text", "value": body},
    })
}

struct Server {
    child: Child,
    base: String,
    data_dir: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// Starts gcemu on `data_dir`; answers once it is healthy, with the time that took.
async fn start(data_dir: &Path, client: &reqwest::Client) -> (Server, Duration) {
    let port = free_port();
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_gcemu"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gcemu starts");
    let base = format!("http://127.0.0.1:{port}");
    loop {
        if let Ok(response) = client.get(format!("{base}/_emulator/health")).send().await {
            if response.status().is_success() {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "gcemu not healthy"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    (
        Server {
            child,
            base,
            data_dir: data_dir.to_path_buf(),
        },
        elapsed,
    )
}

impl Server {
    /// Stops gcemu as a container runtime would (SIGTERM) and waits for it.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// (resident now, resident at peak) in MB, from /proc.
    fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|line| line.starts_with(name))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
                .unwrap_or(0.0)
                / 1024.0
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("gcemu answers");
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// Users, nested groups and the connection with its schema.
async fn prepare_tenant(client: &reqwest::Client, base: &str) {
    use reqwest::Method;
    let post =
        |path: &str, body: Value| call(client, Method::POST, format!("{base}{path}"), Some(body));
    let (status, _) = post(
        "/v1.0/users",
        json!({"userPrincipalName": USER, "displayName": "Bench User"}),
    )
    .await;
    assert_eq!(status, 201);
    for n in 0..N_OTHER_USERS {
        post("/v1.0/users", json!({"userPrincipalName": format!("user{n}@contoso.com"), "displayName": format!("User {n}")})).await;
    }
    for n in 0..N_ENTRA_GROUPS {
        post(
            "/v1.0/groups",
            json!({"id": format!("bench-g{n}"), "displayName": format!("Group {n}")}),
        )
        .await;
    }
    let reference = |id: &str| json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}")});
    // The user is in bench-g0..9 directly and in bench-g10..19 through them: 20 Entra groups.
    for n in 0..10 {
        post(
            &format!("/v1.0/groups/bench-g{n}/members/$ref"),
            reference(USER),
        )
        .await;
        post(
            &format!("/v1.0/groups/bench-g{}/members/$ref", n + 10),
            reference(&format!("bench-g{n}")),
        )
        .await;
    }
    let (status, _) = post(
        "/v1.0/external/connections",
        json!({"id": CONNECTION, "name": "Bench tickets", "description": "gcemu bench"}),
    )
    .await;
    assert_eq!(status, 201);
    let schema = json!({"baseType": "microsoft.graph.externalItem", "properties": [
        {"name": "title", "type": "String", "isSearchable": true, "isRetrievable": true, "labels": ["title"]},
        {"name": "status", "type": "String", "isQueryable": true, "isRefinable": true, "isRetrievable": true},
        {"name": "priority", "type": "Int64", "isQueryable": true, "isRefinable": true, "isRetrievable": true},
        {"name": "modified", "type": "DateTime", "isQueryable": true, "isRefinable": true, "isRetrievable": true},
        {"name": "tags", "type": "StringCollection", "isSearchable": true, "isRetrievable": true}]});
    let (status, _) = call(
        client,
        Method::PATCH,
        format!("{base}/v1.0/external/connections/{CONNECTION}/schema"),
        Some(schema),
    )
    .await;
    assert!(status == 202 || status == 200, "schema: {status}");
    loop {
        let (_, connection) = call(
            client,
            Method::GET,
            format!("{base}/v1.0/external/connections/{CONNECTION}"),
            None,
        )
        .await;
        if connection["state"] == "ready" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The user is in eg0..29 directly: 30 external groups, 50 groups in all.
    for n in 0..N_EXTERNAL_GROUPS {
        post(
            &format!("/v1.0/external/connections/{CONNECTION}/groups"),
            json!({"id": format!("eg{n}"), "displayName": format!("External {n}")}),
        )
        .await;
        if n < 30 {
            let (_, user) = call(
                client,
                Method::GET,
                format!("{base}/v1.0/users/{USER}"),
                None,
            )
            .await;
            post(
                &format!("/v1.0/external/connections/{CONNECTION}/groups/eg{n}/members"),
                json!({"id": user["id"], "type": "user"}),
            )
            .await;
        }
    }
}

struct Timings {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

fn summarize(mut durations: Vec<Duration>, elapsed: Duration) -> Timings {
    durations.sort();
    let at = |q: f64| {
        durations
            .get(((durations.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    Timings {
        per_second: durations.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
    }
}

/// PUTs items `range` with `clients` concurrent writers.
async fn ingest(
    client: &reqwest::Client,
    base: &str,
    vocabulary: &Arc<Vocabulary>,
    range: std::ops::Range<usize>,
    clients: usize,
) -> Timings {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(range.start));
    let started = Instant::now();
    let mut writers = Vec::new();
    for _ in 0..clients {
        let (client, base, vocabulary, next, end) = (
            client.clone(),
            base.to_string(),
            vocabulary.clone(),
            next.clone(),
            range.end,
        );
        writers.push(tokio::spawn(async move {
            let mut durations = Vec::new();
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= end {
                    return durations;
                }
                let body = serde_json::to_vec(&item_body(n, &vocabulary)).expect("JSON");
                let sent = Instant::now();
                let response = client
                    .put(format!(
                        "{base}/v1.0/external/connections/{CONNECTION}/items/item{n}"
                    ))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("gcemu answers");
                assert_eq!(response.status(), 200, "PUT item{n}");
                let _ = response.bytes().await;
                durations.push(sent.elapsed());
            }
        }));
    }
    let mut durations = Vec::new();
    for writer in writers {
        durations.extend(writer.await.expect("writer"));
    }
    summarize(durations, started.elapsed())
}

fn search_body(query: &str) -> Value {
    json!({"requests": [{"entityTypes": ["externalItem"], "contentSources": [format!("/external/connections/{CONNECTION}")],
        "query": {"queryString": query}, "from": 0, "size": 25,
        "aggregations": [{"field": "status", "size": 10, "bucketDefinition": {"sortBy": "count", "isDescending": true}}]}]})
}

/// Searches with `clients` concurrent searchers for `length`, cycling through `queries`.
async fn search(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    queries: &Arc<Vec<Vec<u8>>>,
    clients: usize,
    length: Duration,
) -> Timings {
    let started = Instant::now();
    let mut searchers = Vec::new();
    for searcher in 0..clients {
        let (client, url, token, queries) = (
            client.clone(),
            format!("{base}/v1.0/search/query"),
            token.to_string(),
            queries.clone(),
        );
        searchers.push(tokio::spawn(async move {
            let mut durations = Vec::new();
            let mut k = searcher;
            while started.elapsed() < length {
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(queries[k % queries.len()].clone())
                    .send()
                    .await
                    .expect("gcemu answers");
                assert_eq!(response.status(), 200);
                let _ = response.bytes().await;
                durations.push(sent.elapsed());
                k += clients;
            }
            durations
        }));
    }
    let mut durations = Vec::new();
    for searcher in searchers {
        durations.extend(searcher.await.expect("searcher"));
    }
    summarize(durations, started.elapsed())
}

async fn user_token(client: &reqwest::Client, base: &str) -> String {
    let (_, answer) = call(
        client,
        reqwest::Method::POST,
        format!("{base}/_emulator/token"),
        Some(json!({"user": USER})),
    )
    .await;
    answer["access_token"]
        .as_str()
        .expect("a token")
        .to_string()
}

/// From a `200` on `PUT` to a search finding the item, `N_PROBES` times.
async fn put_to_found(client: &reqwest::Client, base: &str, token: &str, probes: usize) -> Timings {
    let mut durations = Vec::new();
    let started = Instant::now();
    for k in 0..probes {
        let word = format!("probe{k}zq{}", std::process::id());
        let body = json!({"acl": [{"type": "everyone", "value": "everyone", "accessType": "grant"}],
            "properties": {"title": format!("{word} fresh item"), "status": "open", "priority": 1},
            "content": {"type": "text", "value": word.clone()}});
        let (status, _) = call(
            client,
            reqwest::Method::PUT,
            format!("{base}/v1.0/external/connections/{CONNECTION}/items/{word}"),
            Some(body),
        )
        .await;
        assert_eq!(status, 200);
        let acknowledged = Instant::now();
        loop {
            let response = client
                .post(format!("{base}/v1.0/search/query"))
                .bearer_auth(token)
                .json(&search_body(&word))
                .send()
                .await
                .expect("answer");
            let answer: Value = response.json().await.expect("JSON");
            if answer["value"][0]["hitsContainers"][0]["total"]
                .as_u64()
                .unwrap_or(0)
                >= 1
            {
                break;
            }
        }
        durations.push(acknowledged.elapsed());
    }
    summarize(durations, started.elapsed())
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| match entry.metadata() {
                    Ok(meta) if meta.is_dir() => dir_size(&entry.path()),
                    Ok(meta) => meta.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let smoke = std::env::var("GCEMU_BENCH_SMOKE").is_ok_and(|v| !v.is_empty() && v != "0");
    let scales: Vec<usize> = if smoke {
        vec![2_000]
    } else {
        std::env::var("GCEMU_BENCH_SCALES")
            .unwrap_or_else(|_| "100000,1000000".into())
            .split(',')
            .filter_map(|n| n.trim().replace('_', "").parse().ok())
            .collect()
    };
    let seconds: u64 = if smoke {
        1
    } else {
        std::env::var("GCEMU_BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10)
    };
    let probes = if smoke { 3 } else { N_PROBES };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let vocabulary = Arc::new(Vocabulary::new());
    let mut rng = Rng(99);
    let queries: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..N_QUERIES)
            .map(|_| {
                // Two words of middling frequency (ranks 100 to 1,000).
                let a = &vocabulary.0[100 + rng.below(900)];
                let b = &vocabulary.0[100 + rng.below(900)];
                serde_json::to_vec(&search_body(&format!("{a} {b}"))).expect("JSON")
            })
            .collect(),
    );
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let add = |rows: &mut Vec<(String, Vec<String>)>, name: &str, value: String| match rows
        .iter_mut()
        .find(|(n, _)| n == name)
    {
        Some((_, values)) => values.push(value),
        None => rows.push((name.to_string(), vec![value])),
    };
    for &n in &scales {
        eprintln!("scale {n}: loading");
        let scratch = std::env::temp_dir().join(format!("gcemu-bench-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).expect("scratch dir");
        let (server, _) = start(&scratch, &client).await;
        prepare_tenant(&client, &server.base).await;
        let single = n.min(if smoke { 200 } else { 3_000 });
        let one = ingest(&client, &server.base, &vocabulary, 0..single, 1).await;
        add(
            &mut rows,
            "ingest, 1 client: items/s (p50, p99)",
            format!("{:.0} ({}, {})", one.per_second, ms(one.p50), ms(one.p99)),
        );
        let many = ingest(&client, &server.base, &vocabulary, single..n, 16).await;
        add(
            &mut rows,
            "ingest, 16 clients: items/s (p50, p99)",
            format!(
                "{:.0} ({}, {})",
                many.per_second,
                ms(many.p50),
                ms(many.p99)
            ),
        );
        eprintln!("scale {n}: searching");
        let token = user_token(&client, &server.base).await;
        let length = Duration::from_secs(seconds);
        let _ = search(&client, &server.base, &token, &queries, 4, length / 4).await;
        let c1 = search(&client, &server.base, &token, &queries, 1, length).await;
        let c4 = search(&client, &server.base, &token, &queries, 4, length).await;
        add(
            &mut rows,
            "search, 1 client: p50, p99 (q/s)",
            format!("{}, {} ({:.0})", ms(c1.p50), ms(c1.p99), c1.per_second),
        );
        add(
            &mut rows,
            "search, 4 clients: p50, p99 (q/s)",
            format!("{}, {} ({:.0})", ms(c4.p50), ms(c4.p99), c4.per_second),
        );
        let found = put_to_found(&client, &server.base, &token, probes).await;
        add(
            &mut rows,
            "PUT 200 to found by search: p50 (p99)",
            format!("{} ({})", ms(found.p50), ms(found.p99)),
        );
        let (_, peak) = server.memory();
        add(
            &mut rows,
            "resident memory at peak (load and search)",
            format!("{peak:.0} MB"),
        );
        server.stop();

        eprintln!("scale {n}: restarting");
        let (server, startup) = start(&scratch, &client).await;
        add(
            &mut rows,
            "start-up to healthy (consistent index)",
            ms(startup),
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (at_rest, _) = server.memory();
        add(
            &mut rows,
            "resident memory at rest (after start-up)",
            format!("{at_rest:.0} MB"),
        );
        add(
            &mut rows,
            "data dir on disk",
            format!("{:.0} MB", dir_size(&scratch) as f64 / 1e6),
        );
        let data_dir = server.data_dir.clone();
        server.stop();

        eprintln!("scale {n}: rebuilding the index");
        std::fs::remove_dir_all(data_dir.join("index")).expect("index dir removed");
        let (server, rebuild) = start(&data_dir, &client).await;
        let token = user_token(&client, &server.base).await;
        let check = search(
            &client,
            &server.base,
            &token,
            &queries,
            1,
            Duration::from_millis(200),
        )
        .await;
        assert!(check.per_second > 0.0);
        add(
            &mut rows,
            "index rebuilt from the store: items/s (time)",
            format!(
                "{:.0} ({:.1} s)",
                n as f64 / rebuild.as_secs_f64(),
                rebuild.as_secs_f64()
            ),
        );

        let started = Instant::now();
        let status = client
            .post(format!(
                "{}/_emulator/reset?tenant=00000000-0000-0000-0000-000000000001",
                server.base
            ))
            .send()
            .await
            .expect("gcemu answers")
            .status()
            .as_u16();
        assert!(status < 300, "reset: {status}");
        add(&mut rows, "reset of the tenant", ms(started.elapsed()));
        server.stop();
        let _ = std::fs::remove_dir_all(&scratch);
    }
    println!();
    println!(
        "| figure | {} |",
        scales
            .iter()
            .map(|n| format!("{n} items"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!("|---|{}", "---|".repeat(scales.len()));
    for (name, values) in rows {
        println!("| {name} | {} |", values.join(" | "));
    }
}
