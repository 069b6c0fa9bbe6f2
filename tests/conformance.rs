//! `gcemu conformance` against an emulator in this process: every scenario of `conformance/`
//! (the set built into the binary) passes, and a scenario expecting a different status makes
//! the runner exit 1 with a diff naming scenario, step, expected and actual.

use std::path::Path;

use gcemu::app::App;
use gcemu::config::Config;

/// The emulator, in this process on a free loopback port, stopped when dropped.
struct Emulator {
    address: String,
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
            _shutdown: shutdown,
        }
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn conformance(args: &[&str]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_gcemu"))
        .arg("conformance")
        .args(args)
        .env_remove("GCEMU_TARGET")
        .env_remove("GCEMU_CONFORMANCE_TOKEN")
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
async fn every_scenario_passes_against_gcemu_with_the_per_area_table_and_junit() {
    let emulator = Emulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("conformance.xml");
    let run = conformance(&[
        "--target",
        &emulator.address,
        "--junit",
        junit.to_str().unwrap(),
    ])
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    for area in [
        "connections",
        "schema",
        "items",
        "activities",
        "groups",
        "directory",
        "search",
        "errors",
    ] {
        assert!(
            run.stdout.lines().any(|line| line.starts_with(area)),
            "no row for {area}:\n{}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("PASSED: "), "{}", run.stdout);
    assert!(
        run.stdout.contains("known differences of gcemu"),
        "the deliberate differences are reported as known:\n{}",
        run.stdout
    );
    assert!(!run.stdout.contains("skipped ("), "{}", run.stdout);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testsuite name=\"search\""), "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
}

/// The files on disk are the ones built in, and `--dir` reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_in_conformance_run_with_dir_and_only() {
    let emulator = Emulator::start().await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance");
    let run = conformance(&[
        "--target",
        &emulator.address,
        "--dir",
        dir.to_str().unwrap(),
        "--only",
        "errors/*",
    ])
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("✓ errors/error-envelope"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("connections/"), "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_expectation_exits_1_with_a_readable_diff() {
    let emulator = Emulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/connections.json");
    let mut document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(source).unwrap()).unwrap();
    // "get" (step 2 of connection-lifecycle) answers 200; expect 404 instead.
    let step = &mut document["scenarios"][0]["steps"][1];
    assert_eq!(step["name"], "get");
    step["expect"]["status"] = serde_json::json!(404);
    std::fs::write(
        dir.path().join("connections.json"),
        serde_json::to_string_pretty(&document).unwrap(),
    )
    .unwrap();
    let junit = dir.path().join("junit.xml");
    let run = conformance(&[
        "--target",
        &emulator.address,
        "--dir",
        dir.path().to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ])
    .await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let out = &run.stdout;
    assert!(
        out.contains("✗ connections/connection-lifecycle: failed at step 2 \"get\" (1/13 steps)"),
        "{out}"
    );
    assert!(
        out.contains("FAILED connections/connection-lifecycle, step 2 \"get\""),
        "{out}"
    );
    assert!(out.contains("  request:  GET http://"), "{out}");
    assert!(out.contains("  ✗ status"), "{out}");
    let status_line = out
        .lines()
        .find(|line| line.starts_with("  ✗ status"))
        .unwrap();
    let columns: Vec<&str> = status_line.split_whitespace().collect();
    assert_eq!(columns, ["✗", "status", "404", "200"], "{status_line}");
    assert!(out.contains("FAILED: "), "{out}");
    // The cleanup still ran: the connection is gone.
    assert!(
        !out.contains("cleanup 1"),
        "the cleanup passed (2xx or 404):\n{out}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<failure message=\"step 2 &quot;get&quot;"),
        "{xml}"
    );
}

#[tokio::test]
async fn an_unreachable_target_or_a_bad_pattern_exits_2() {
    let run = conformance(&["--target", "http://127.0.0.1:1"]).await;
    assert_eq!(run.code, Some(2), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("cannot reach http://127.0.0.1:1"),
        "{}",
        run.stderr
    );
    let run = conformance(&["--target", "http://127.0.0.1:1", "--only", "nothing*"]).await;
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("no scenario matches"), "{}", run.stderr);
    let run = conformance(&["--list"]).await;
    assert_eq!(run.code, Some(0));
    assert!(
        run.stdout.contains("search/acl-personas ("),
        "{}",
        run.stdout
    );
}
