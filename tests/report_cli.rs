//! `gcemu report --target URL` (the built binary) against a real emulator: the table, and exit
//! codes 0 (no finding at the chosen severity), 1 (some) and 2 (target unreachable).

use std::process::{Command, Output};

use gcemu::app::App;
use gcemu::config::Config;
use serde_json::json;

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

    async fn send(&self, request: reqwest::RequestBuilder) -> u16 {
        request
            .send()
            .await
            .expect("the emulator answers")
            .status()
            .as_u16()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }
}

/// Runs the binary off the async workers (the emulator answers it from this process).
async fn gcemu(args: &[&str], env: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_gcemu"))
            .args(&args)
            .env_remove("GCEMU_TARGET")
            .envs(env)
            .output()
            .expect("gcemu runs")
    })
    .await
    .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_exits_by_the_severity_of_its_findings_and_2_when_the_target_is_unreachable() {
    let emulator = Emulator::start().await;
    let target = emulator.address.as_str();

    let clean = gcemu(&["report", "--target", target], &[]).await;
    assert_eq!(clean.status.code(), Some(0), "{clean:?}");
    assert!(
        stdout(&clean).contains("No findings."),
        "{}",
        stdout(&clean)
    );

    // A schema without labels: a warning.
    let created = emulator
        .send(
            emulator
                .client
                .post(emulator.url("/v1.0/external/connections"))
                .json(&json!({"id": "clitest", "name": "cli test"})),
        )
        .await;
    assert_eq!(created, 201);
    let schema = emulator
        .send(
            emulator
                .client
                .patch(emulator.url("/v1.0/external/connections/clitest/schema"))
                .json(&json!({"baseType": "microsoft.graph.externalItem", "properties": [{"name": "name", "type": "string"}]})),
        )
        .await;
    assert_eq!(schema, 202);
    let warned = gcemu(&["report", "--target", target], &[]).await;
    assert_eq!(warned.status.code(), Some(0), "{warned:?}");
    let table = stdout(&warned);
    assert!(
        table.contains("SEVERITY") && table.contains("schemaMissingLabels"),
        "{table}"
    );
    let strict = gcemu(
        &["report", "--fail-on", "warning"],
        &[("GCEMU_TARGET", target)],
    )
    .await;
    assert_eq!(strict.status.code(), Some(1), "{strict:?}");

    // A property that is not in the schema: an error, which fails the default --fail-on error.
    let refused = emulator
        .send(
            emulator
                .client
                .put(emulator.url("/v1.0/external/connections/clitest/items/i1"))
                .header("client-request-id", "cli-bad-put")
                .json(&json!({"acl": [{"type": "everyone", "value": "everyone", "accessType": "grant"}], "properties": {"colour": "red"}})),
        )
        .await;
    assert_eq!(refused, 400);
    let failed = gcemu(&["report", "--target", &format!("{target}/")], &[]).await;
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    let table = stdout(&failed);
    assert!(table.contains("propertyNotInSchema"), "{table}");
    assert!(table.contains("client-request-ids: cli-bad-put"), "{table}");
    // Errors are listed before warnings.
    assert!(table.find("propertyNotInSchema") < table.find("schemaMissingLabels"));

    // Another tenant has no findings.
    let other = gcemu(
        &["report", "--target", target, "--tenant", "someone-else"],
        &[],
    )
    .await;
    assert_eq!(other.status.code(), Some(0), "{other:?}");
    assert!(stdout(&other).contains("tenant someone-else"));

    // Nothing listens on port 1; a URL that is not http.
    let unreachable = gcemu(&["report", "--target", "http://127.0.0.1:1"], &[]).await;
    assert_eq!(unreachable.status.code(), Some(2), "{unreachable:?}");
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot talk to gcemu"));
    let bad = gcemu(&["report", "--target", "ftp://127.0.0.1"], &[]).await;
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
}

#[test]
fn report_help_explains_its_flags() {
    let output = Command::new(env!("CARGO_BIN_EXE_gcemu"))
        .args(["report", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--target",
        "--tenant",
        "--fail-on",
        "GCEMU_TARGET",
        "warning",
    ] {
        assert!(help.contains(flag), "report --help lacks {flag}:\n{help}");
    }
}
