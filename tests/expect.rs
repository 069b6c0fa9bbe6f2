//! `gcemu expect FILE --target URL` against a real emulator: a small tenant built through the
//! Graph API (two users, nested groups, two connections, items with different ACLs), then the
//! built binary run on expectations files that hold, that do not, and that are malformed.

use std::path::{Path, PathBuf};

use gcemu::app::App;
use gcemu::config::Config;
use serde_json::{json, Value};

const ADELE: &str = "11111111-0000-0000-0000-00000000adel";
const BOB: &str = "11111111-0000-0000-0000-0000000000b0";

/// The emulator, in this process on a free loopback port, stopped when dropped.
struct Emulator {
    address: String,
    client: reqwest::Client,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Emulator {
    async fn start() -> Emulator {
        let app = App::build(Config::for_tests())
            .await
            .expect("the app builds");
        let address = format!("http://{}", app.local_addr());
        let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.serve(async {
            let _ = signal.await;
        }));
        Emulator {
            address,
            client: reqwest::Client::new(),
            _shutdown: shutdown,
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.address)
        };
        let mut request = self.client.request(method, url);
        if !body.is_null() {
            request = request.json(body);
        }
        let response = request.send().await.expect("the emulator answers");
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let text = response.text().await.unwrap();
        let mut body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if let (Some(location), Value::Null) = (location, &body) {
            body = json!({ "location": location });
        }
        (status, body)
    }

    async fn post(&self, path: &str, body: Value, expected: u16) -> Value {
        let (status, reply) = self.send(reqwest::Method::POST, path, &body).await;
        assert_eq!(status, expected, "POST {path} {body}: {reply}");
        reply
    }

    async fn put(&self, path: &str, body: Value) {
        let (status, reply) = self.send(reqwest::Method::PUT, path, &body).await;
        assert_eq!(status, 200, "PUT {path}: {reply}");
    }

    async fn register_schema(&self, connection: &str) {
        let schema = json!({"baseType": "microsoft.graph.externalItem", "properties": [
            {"name": "title", "type": "String", "isSearchable": true, "isRetrievable": true, "labels": ["title"]},
            {"name": "status", "type": "String", "isQueryable": true, "isRetrievable": true, "isRefinable": true}
        ]});
        let path = format!("/v1.0/external/connections/{connection}/schema");
        let (status, reply) = self.send(reqwest::Method::PATCH, &path, &schema).await;
        assert_eq!(status, 202, "schema of {connection}: {reply}");
        let location = reply["location"].as_str().expect("a Location header");
        let (_, operation) = self
            .send(reqwest::Method::GET, location, &Value::Null)
            .await;
        assert_eq!(operation["status"], "completed", "{operation}");
    }

    /// Adele and Bob; Adele is in `engineering`, which is in `platform`. `helpdesk` holds four
    /// tickets with different ACLs, `wiki` one page for everyone.
    async fn build_tenant(&self) {
        for (id, upn) in [(ADELE, "adele@contoso.com"), (BOB, "bob@contoso.com")] {
            self.post(
                "/v1.0/users",
                json!({"id": id, "userPrincipalName": upn, "displayName": upn, "accountEnabled": true}),
                201,
            )
            .await;
        }
        for group in ["engineering", "platform"] {
            self.post(
                "/v1.0/groups",
                json!({"id": group, "displayName": group, "mailEnabled": false, "securityEnabled": true}),
                201,
            )
            .await;
        }
        for (group, member) in [("engineering", ADELE), ("platform", "engineering")] {
            self.post(
                &format!("/v1.0/groups/{group}/members/$ref"),
                json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{member}")}),
                204,
            )
            .await;
        }
        for connection in ["helpdesk", "wiki"] {
            self.post(
                "/v1.0/external/connections",
                json!({"id": connection, "name": connection, "description": "expect test"}),
                201,
            )
            .await;
            self.register_schema(connection).await;
        }
        let grant = |acl_type: &str, value: &str| json!({"type": acl_type, "value": value, "accessType": "grant"});
        let deny = |acl_type: &str, value: &str| json!({"type": acl_type, "value": value, "accessType": "deny"});
        let items = [
            (
                "helpdesk",
                "T1",
                "printer jam",
                "open",
                json!([grant("everyone", "everyone")]),
            ),
            (
                "helpdesk",
                "T2",
                "vpn outage",
                "open",
                json!([grant("group", "platform")]),
            ),
            (
                "helpdesk",
                "T3",
                "vpn token",
                "closed",
                json!([grant("user", BOB)]),
            ),
            (
                "helpdesk",
                "T4",
                "printer toner",
                "closed",
                json!([grant("everyone", "everyone"), deny("user", ADELE)]),
            ),
            (
                "wiki",
                "W1",
                "printer manual",
                "open",
                json!([grant("everyone", "everyone")]),
            ),
        ];
        for (connection, id, title, status, acl) in items {
            self.put(
                &format!("/v1.0/external/connections/{connection}/items/{id}"),
                json!({"acl": acl, "properties": {"title": title, "status": status}}),
            )
            .await;
        }
    }
}

/// Every expectation here holds for the tenant of `build_tenant`.
fn passing() -> Value {
    json!({
        "$schema": "./expectations.schema.json",
        "personas": [
            {"user": "adele@contoso.com", "queries": [
                {"name": "printer tickets", "query": "printer", "connections": ["helpdesk"],
                 "mustSee": ["T1"], "mustNotSee": ["helpdesk/T4"], "exactly": true, "total": 1},
                {"query": "vpn", "connections": ["/external/connections/helpdesk"],
                 "mustSee": ["helpdesk/T2"], "mustNotSee": ["T3"],
                 "aggregations": {"status": {"open": 1, "closed": 0}}}
            ]},
            {"user": BOB, "queries": [
                {"query": "vpn", "mustSee": ["T3"], "mustNotSee": ["T2"], "total": 1},
                {"query": "printer", "mustSee": ["T1", "T4", "wiki/W1"], "exactly": true, "total": 3,
                 "aggregations": {"status": {"open": 2, "closed": 1}}}
            ]}
        ]
    })
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn expect(dir: &Path, name: &str, document: &Value, extra: &[&str]) -> Run {
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(document).unwrap()).unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_gcemu"))
        .arg("expect")
        .arg(&path)
        .args(extra)
        .env_remove("GCEMU_TARGET")
        .output()
        .await
        .expect("gcemu runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expectations_that_hold_exit_0_and_a_wrong_one_exits_1_naming_persona_query_and_item() {
    let emulator = Emulator::start().await;
    emulator.build_tenant().await;
    let dir = tempfile::tempdir().unwrap();
    let target = ["--target", emulator.address.as_str()];

    let run = expect(dir.path(), "passing.json", &passing(), &target).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("✓ \"printer tickets\" (helpdesk): 1 hit"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("✓ \"printer\" (helpdesk, wiki): 3 hits"),
        "a query without connections searches them all:\n{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("summary: 2 personas, 4 queries, 0 failed, 0 differences"),
        "{}",
        run.stdout
    );

    // One wrong expectation: Adele cannot see Bob's ticket.
    let mut wrong = passing();
    wrong["personas"][0]["queries"][1]["mustSee"] = json!(["helpdesk/T2", "T3"]);
    wrong["personas"][0]["queries"][1]["mustNotSee"] = json!([]);
    let run = expect(dir.path(), "wrong.json", &wrong, &target).await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let block = run
        .stdout
        .split("\nbob@contoso.com")
        .next()
        .unwrap()
        .to_string();
    assert!(block.starts_with("adele@contoso.com\n"), "{}", run.stdout);
    assert!(
        block.contains("✗ \"vpn\" (helpdesk): 1 difference\n"),
        "{}",
        run.stdout
    );
    assert!(
        block.contains(
            "does not see helpdesk/T3, expected to: no entry of the ACL matches the user"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("summary: 2 personas, 4 queries, 1 failed, 1 difference"),
        "{}",
        run.stdout
    );

    // Seen when it should not be: the explanation names the membership chain.
    let mut wrong = passing();
    wrong["personas"][0]["queries"][1]["mustSee"] = json!([]);
    wrong["personas"][0]["queries"][1]["mustNotSee"] = json!(["T2"]);
    wrong["personas"][0]["queries"][1]["total"] = json!(2);
    wrong["personas"][0]["queries"][1]["aggregations"] = json!({"status": {"open": 2}});
    let run = expect(dir.path(), "seen.json", &wrong, &target).await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    for line in [
        "✗ \"vpn\" (helpdesk): 3 differences",
        "sees helpdesk/T2, expected not to: granted by 1 matching entry and denied by none (via engineering > platform)",
        "total 1, expected 2",
        "aggregation status, bucket \"open\": 1, expected 2",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }

    // Missing because the query does not match, and a persona the tenant does not have.
    let document = json!({"personas": [
        {"user": "bob@contoso.com", "queries": [{"query": "printer", "connections": ["helpdesk"], "mustSee": ["T3"]}]},
        {"user": "zed@contoso.com", "queries": [{"query": "printer"}]}
    ]});
    let run = expect(dir.path(), "unmatched.json", &document, &target).await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("does not see helpdesk/T3, expected to: the item does not match the query"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "✗ persona zed@contoso.com is not a user of tenant 00000000-0000-0000-0000-000000000001"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("summary: 2 personas, 2 queries, 2 failed, 2 differences"),
        "{}",
        run.stdout
    );

    // An extra item of an `exactly` query, and an id that exists nowhere.
    let document = json!({"personas": [
        {"user": "bob@contoso.com", "queries": [{"query": "printer", "mustSee": ["T1", "T4", "T99"], "exactly": true}]}
    ]});
    let run = expect(dir.path(), "exactly.json", &document, &target).await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    for line in [
        "does not see T99, expected to: no item has this id in helpdesk, wiki",
        "sees wiki/W1, not in mustSee (exactly): granted by 1 matching entry and denied by none",
    ] {
        assert!(run.stdout.contains(line), "{line}\n{}", run.stdout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_and_connection_errors_exit_2() {
    let emulator = Emulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let target = ["--target", emulator.address.as_str()];

    let mut bad = passing();
    bad["personas"][1]["queries"][0]["total"] = json!(-1);
    let run = expect(dir.path(), "bad.json", &bad, &target).await;
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(
            "bad.json: /personas/1/queries/0/total: expected a non-negative integer, found -1"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "nothing is checked: {}", run.stdout);

    // A query on a connection the tenant lacks cannot be run: an error, not a difference.
    emulator
        .post(
            "/v1.0/users",
            json!({"id": ADELE, "userPrincipalName": "adele@contoso.com", "displayName": "Adele", "accountEnabled": true}),
            201,
        )
        .await;
    let document_with_missing_connection = json!({"personas": [{"user": "adele@contoso.com", "queries": [
        {"query": "x", "connections": ["nosuch"]}
    ]}]});
    let run = expect(
        dir.path(),
        "missing.json",
        &document_with_missing_connection,
        &target,
    )
    .await;
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("! \"x\" (nosuch): not checked: search failed:"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("1 error"), "{}", run.stdout);

    let stopped = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", stopped.local_addr().unwrap());
    drop(stopped);
    let document =
        json!({"personas": [{"user": "adele@contoso.com", "queries": [{"query": "x"}]}]});
    let run = expect(dir.path(), "down.json", &document, &["--target", &address]).await;
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains(&format!("cannot talk to gcemu at {address}")),
        "{}",
        run.stderr
    );

    let run = expect(dir.path(), "ftp.json", &document, &["--target", "ftp://x"]).await;
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("only http:// and https://"),
        "{}",
        run.stderr
    );

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gcemu"))
        .args(["expect", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in ["--target", "--fixtures", "GCEMU_TARGET", "<FILE>"] {
        assert!(help.contains(flag), "expect --help lacks {flag}:\n{help}");
    }
}

/// The sample tenant ships with expectations that hold; one wrong expectation about it fails
/// naming the persona, the query and the item (run with `--fixtures`, in an in-process emulator).
#[test]
fn the_sample_tenant_meets_its_shipped_expectations_and_a_changed_one_fails() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sample = root.join("fixtures/sample-tenant.json");
    let run = |file: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gcemu"))
            .arg("expect")
            .arg(file)
            .arg("--fixtures")
            .arg(&sample)
            .env_remove("GCEMU_TARGET")
            .output()
            .expect("gcemu expect runs")
    };
    let shipped = root.join("fixtures/sample-expectations.json");
    let output = run(&shipped);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(", 0 failed, 0 differences"), "{stdout}");

    // Move one item Bruno must not see into his mustSee list.
    let mut expectations: Value =
        serde_json::from_slice(&std::fs::read(&shipped).unwrap()).unwrap();
    let persona = expectations["personas"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p["user"] == "bruno.castillo@contoso.com")
        .expect("the sample has Bruno");
    let query = persona["queries"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|q| {
            q["mustNotSee"]
                .as_array()
                .is_some_and(|ids| !ids.is_empty())
        })
        .expect("a query with hidden items");
    let hidden = query["mustNotSee"].as_array_mut().unwrap().remove(0);
    query["mustSee"]
        .as_array_mut()
        .unwrap()
        .push(hidden.clone());
    let label = query["name"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let changed = dir.path().join("changed.json");
    std::fs::write(&changed, expectations.to_string()).unwrap();
    let output = run(&changed);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let hidden = hidden.as_str().unwrap();
    assert!(stdout.contains("bruno.castillo@contoso.com"), "{stdout}");
    assert!(stdout.contains(&label), "{stdout}");
    assert!(
        stdout.contains(&format!("does not see {hidden}"))
            || stdout.contains(&format!("/{hidden}, expected to")),
        "{stdout}"
    );
}
