//! Benchmark: 100,000 items ingested over HTTP into an in-memory gcemu, a user in 50 groups,
//! then the latency of a two-term query with an aggregation (median and 99th percentile).
//! Also prints the ingestion throughput and the latency of a Copilot Retrieval question. Run: `cargo bench --bench search_latency`.
//! All traffic goes to 127.0.0.1.

use std::time::Instant;

use gcemu::app::App;
use gcemu::config::Config;
use serde_json::{json, Value};

const N_ITEMS: usize = 100_000;
const N_USER_GROUPS: usize = 50;
const N_GROUPS: usize = 200;
const N_WRITERS: usize = 16;
const N_QUERIES: usize = 200;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let app = App::build(Config::for_tests())
        .await
        .expect("the app builds");
    let base = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    tokio::spawn(app.serve(std::future::pending()));
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| client.post(format!("{base}{path}")).json(&body).send();

    post(
        "/v1.0/external/connections",
        json!({"id": "tickets", "name": "Tickets"}),
    )
    .await
    .unwrap();
    let schema = json!({"baseType": "microsoft.graph.externalItem", "properties": [
        {"name": "title", "type": "String", "isSearchable": true, "isRetrievable": true},
        {"name": "status", "type": "String", "isQueryable": true, "isRefinable": true, "isRetrievable": true},
        {"name": "priority", "type": "Int64", "isQueryable": true, "isRefinable": true, "isRetrievable": true}]});
    client
        .patch(format!("{base}/v1.0/external/connections/tickets/schema"))
        .json(&schema)
        .send()
        .await
        .unwrap();
    post(
        "/v1.0/users",
        json!({"id": "adele", "userPrincipalName": "adele@contoso.com", "displayName": "Adele"}),
    )
    .await
    .unwrap();
    for group in 0..N_GROUPS {
        post(
            "/v1.0/groups",
            json!({"id": format!("g{group}"), "displayName": format!("group {group}")}),
        )
        .await
        .unwrap();
    }
    for group in 0..N_USER_GROUPS {
        let reference =
            json!({"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/adele"});
        post(
            &format!("/v1.0/groups/g{}/members/$ref", group * 4),
            reference,
        )
        .await
        .unwrap();
    }

    let words = [
        "printer", "floor", "laptop", "network", "battery", "screen", "keyboard", "license", "vpn",
        "mail",
    ];
    let statuses = ["open", "closed", "new", "pending"];
    let started = Instant::now();
    let mut writers = Vec::new();
    for writer in 0..N_WRITERS {
        let (client, base) = (client.clone(), base.clone());
        writers.push(tokio::spawn(async move {
            for n in (writer..N_ITEMS).step_by(N_WRITERS) {
                let title = format!("{} {} {} ticket {n}", words[n % 10], words[(n / 10) % 10], words[(n / 7) % 10]);
                let body = json!({
                    "acl": [{"type": "group", "value": format!("g{}", n % N_GROUPS), "accessType": "grant"},
                            {"type": "group", "value": format!("g{}", (n * 7) % N_GROUPS), "accessType": if n % 13 == 0 { "deny" } else { "grant" }}],
                    "properties": {"title": title, "status": statuses[n % 4], "priority": (n % 5) as i64},
                    "content": {"type": "text", "value": format!("{title}: details of the request number {n}")}
                });
                let response = client.put(format!("{base}/v1.0/external/connections/tickets/items/i{n}")).json(&body).send().await.unwrap();
                assert_eq!(response.status(), 200);
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let ingestion = started.elapsed();

    let token = post("/_emulator/token", json!({"user": "adele@contoso.com"}))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let query = json!({"requests": [{
        "entityTypes": ["externalItem"], "contentSources": ["/external/connections/tickets"],
        "query": {"queryString": "printer floor"}, "from": 0, "size": 25,
        "aggregations": [{"field": "status", "size": 10, "bucketDefinition": {"sortBy": "count", "isDescending": true}}]}]});
    let search = |body: Value| {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        async move {
            let started = Instant::now();
            let response = client
                .post(format!("{base}/v1.0/search/query"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let answer: Value = response.json().await.unwrap();
            (started.elapsed(), answer)
        }
    };
    // Sorted durations of `n` runs of one request, and the last answer.
    let time = |body: Value, n: usize| {
        let search = &search;
        async move {
            let mut durations = Vec::with_capacity(n);
            let mut answer = Value::Null;
            for _ in 0..n {
                let (elapsed, body_answer) = search(body.clone()).await;
                durations.push(elapsed);
                answer = body_answer;
            }
            durations.sort();
            (durations, answer)
        }
    };
    let (durations, answer) = time(query.clone(), N_QUERIES).await;
    let total = answer["value"][0]["hitsContainers"][0]["total"]
        .as_u64()
        .unwrap();
    let mut plain = query.clone();
    plain["requests"][0]
        .as_object_mut()
        .unwrap()
        .remove("aggregations");
    let (plain_durations, _) = time(plain.clone(), N_QUERIES).await;
    let index = state
        .index
        .get(
            &gcemu::domain::ids::TenantId::default_tenant(),
            &gcemu::domain::ids::ConnectionId::lookup("tickets"),
        )
        .unwrap();
    println!(
        "index: {} segments",
        index.reader.searcher().segment_readers().len()
    );
    for probe in ["*", "printer", "status:open"] {
        let mut probed = plain.clone();
        probed["requests"][0]["query"]["queryString"] = json!(probe);
        let (times, _) = time(probed, 50).await;
        println!(
            "probe {probe:?}: median {:.1} ms",
            times[25].as_secs_f64() * 1e3
        );
    }
    let question = json!({
        "queryString": "How do I fix the printer on my floor?",
        "dataSource": "externalItem",
        "resourceMetadata": ["title", "status"],
    });
    let mut retrieval_times = Vec::with_capacity(N_QUERIES);
    let mut n_hits = 0;
    for _ in 0..N_QUERIES {
        let started = Instant::now();
        let response = client
            .post(format!("{base}/v1.0/copilot/retrieval"))
            .bearer_auth(&token)
            .json(&question)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        retrieval_times.push(started.elapsed());
        n_hits = answer["retrievalHits"].as_array().map_or(0, Vec::len);
    }
    retrieval_times.sort();
    println!(
        "retrieval: a 4-word question as the same user, {n_hits} hits with extracts: median {:.1} ms, p99 {:.1} ms over {N_QUERIES} requests",
        retrieval_times[N_QUERIES / 2].as_secs_f64() * 1e3,
        retrieval_times[N_QUERIES * 99 / 100].as_secs_f64() * 1e3
    );
    println!(
        "search without the aggregation: median {:.1} ms",
        plain_durations[N_QUERIES / 2].as_secs_f64() * 1e3
    );
    println!(
        "ingestion: {N_ITEMS} items over HTTP with {N_WRITERS} concurrent writers in {:.1} s ({:.0} items/s)",
        ingestion.as_secs_f64(),
        N_ITEMS as f64 / ingestion.as_secs_f64()
    );
    println!(
        "search: two-term query with an aggregation, user in {N_USER_GROUPS} groups, {total} visible matches of {N_ITEMS} items: median {:.1} ms, p99 {:.1} ms over {N_QUERIES} queries",
        durations[N_QUERIES / 2].as_secs_f64() * 1e3,
        durations[N_QUERIES * 99 / 100].as_secs_f64() * 1e3
    );
}
