//! Smoke tests of the built `gcemu` binary: help text, ready line, environment vs flag, shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn gcemu() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gcemu"))
}

/// Starts `gcemu serve` with `args`, waits for its ready line and returns it with the child.
fn start(command: &mut Command) -> (Child, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("gcemu starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("a ready line");
    (child, line.trim().to_string())
}

fn address_of(ready_line: &str) -> String {
    let start = ready_line
        .find("http://")
        .or_else(|| ready_line.find("https://"))
        .expect("the ready line names the address");
    ready_line[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    child.wait().unwrap()
}

#[test]
fn help_explains_every_serve_flag() {
    let output = gcemu().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--listen",
        "--data-dir",
        "--in-memory",
        "--log-format",
        "--schema-delay",
        "--max-body-bytes",
        "--max-connections",
        "--index-lag",
        "--schema-errors",
        "--item-quota",
        "--max-items-per-connection",
        "--auth",
        "--tls",
        "--tls-san",
        "--tls-cert",
        "--tls-key",
        "--proxy",
        "--proxy-intercept",
    ] {
        assert!(help.contains(flag), "serve --help lacks {flag}:\n{help}");
    }
    for variable in [
        "GCEMU_LISTEN",
        "GCEMU_DATA_DIR",
        "GCEMU_IN_MEMORY",
        "GCEMU_LOG_FORMAT",
        "GCEMU_SCHEMA_DELAY",
        "GCEMU_AUTH",
        "GCEMU_TLS",
        "GCEMU_PROXY",
    ] {
        assert!(help.contains(variable), "serve --help lacks {variable}");
    }
    let output = gcemu().arg("--help").output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(help.contains("serve") && help.contains("token"));
    let output = gcemu().args(["token", "--help"]).output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--tenant",
        "--user",
        "--app",
        "--roles",
        "--scopes",
        "--data-dir",
        "--target",
    ] {
        assert!(help.contains(flag), "token --help lacks {flag}");
    }
}

#[test]
fn serve_prints_one_ready_line_answers_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("state");
    let (mut child, line) = start(
        gcemu()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir),
    );
    assert!(line.contains("gcemu ready on http://127.0.0.1:"), "{line}");
    assert!(
        line.contains(&data_dir.display().to_string()),
        "the ready line names the data dir: {line}"
    );
    let address = address_of(&line);
    let health = std::process::Command::new("curl")
        .args(["-s", &format!("{address}/_emulator/health")])
        .output();
    if let Ok(health) = health {
        assert_eq!(
            String::from_utf8_lossy(&health.stdout),
            r#"{"status":"ok"}"#
        );
    }
    let status = terminate(&mut child);
    assert!(status.success(), "graceful exit on SIGTERM: {status:?}");
    assert!(data_dir.join("gcemu.sqlite3").exists());
}

#[test]
fn environment_variables_configure_serve_and_flags_win() {
    let (mut child, line) = start(
        gcemu()
            .args(["serve"])
            .env("GCEMU_LISTEN", "127.0.0.1:0")
            .env("GCEMU_IN_MEMORY", "true"),
    );
    assert!(line.contains("(in-memory)"), "{line}");
    terminate(&mut child);

    let (mut child, line) = start(
        gcemu()
            .args(["serve", "--listen", "127.0.0.1:0", "--in-memory"])
            .env("GCEMU_LISTEN", "127.0.0.1:1"),
    );
    assert!(
        !line.contains("127.0.0.1:1 "),
        "the flag beats the environment: {line}"
    );
    terminate(&mut child);
}

#[test]
fn a_bad_duration_is_refused_at_start() {
    let output = gcemu()
        .args(["serve", "--in-memory", "--schema-delay", "soon"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("soon"));
}

#[test]
fn token_prints_a_jwt_signed_with_the_data_dirs_key() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let output = gcemu()
        .args([
            "token",
            "--tenant",
            "contoso",
            "--user",
            "adele@contoso.com",
            "--scopes",
            "ExternalItem.Read.All",
            "--data-dir",
            data_dir,
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap();
    // An emulator serving this data dir accepts it in strict mode: it verifies with the kept key.
    let key = gcemu::identity::keys::SigningKey::load_or_create(Some(dir.path())).unwrap();
    let claims =
        gcemu::identity::tokens::verify(&key, token.trim(), chrono::Utc::now()).expect("signed");
    assert_eq!(claims["tid"], "contoso");
    assert_eq!(claims["upn"], "adele@contoso.com");
    assert_eq!(claims["scp"], "ExternalItem.Read.All");
    assert_eq!(claims["idtyp"], "user");
    // Another data dir's key does not verify it.
    let other = tempfile::tempdir().unwrap();
    let other_key = gcemu::identity::keys::SigningKey::load_or_create(Some(other.path())).unwrap();
    assert!(gcemu::identity::tokens::verify(&other_key, token.trim(), chrono::Utc::now()).is_err());
}

/// A gcemu serving https: the client commands reach it when GCEMU_CA_FILE names its CA, and
/// refuse its certificate otherwise; the health check needs no CA.
#[test]
fn client_commands_talk_https_to_a_tls_gcemu_that_trusts_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let (mut child, ready) = start(gcemu().args([
        "serve",
        "--data-dir",
        data_dir,
        "--listen",
        "127.0.0.1:0",
        "--tls",
        "--auth",
        "strict",
    ]));
    let address = address_of(&ready);
    assert!(address.starts_with("https://127.0.0.1:"), "{ready}");
    let healthy = gcemu()
        .args(["healthcheck", "--url", &address])
        .output()
        .unwrap();
    assert!(healthy.status.success(), "{healthy:?}");
    let ca = dir.path().join("tls/ca.pem");
    assert!(ca.exists(), "the CA is kept in the data dir");
    let minted = gcemu()
        .args(["token", "--target", &address])
        .env("GCEMU_CA_FILE", &ca)
        .output()
        .unwrap();
    assert!(minted.status.success(), "{minted:?}");
    let token = String::from_utf8(minted.stdout).unwrap();
    let key = gcemu::identity::keys::SigningKey::load_or_create(Some(dir.path())).unwrap();
    gcemu::identity::tokens::verify(&key, token.trim(), chrono::Utc::now())
        .expect("the running gcemu signed it with the data dir's key");
    let report = gcemu()
        .args(["report", "--target", &address])
        .env("GCEMU_CA_FILE", &ca)
        .output()
        .unwrap();
    assert!(report.status.success(), "{report:?}");
    let untrusting = gcemu()
        .args(["token", "--target", &address])
        .env_remove("GCEMU_CA_FILE")
        .output()
        .unwrap();
    assert_eq!(untrusting.status.code(), Some(2));
    let reason = String::from_utf8_lossy(&untrusting.stderr).to_lowercase();
    assert!(reason.contains("certificate"), "{reason}");
    terminate(&mut child);
}

#[test]
fn healthcheck_exits_0_for_a_healthy_emulator_and_1_with_a_reason_otherwise() {
    let (mut child, ready) =
        start(gcemu().args(["serve", "--in-memory", "--listen", "127.0.0.1:0"]));
    let address = address_of(&ready);
    let healthy = gcemu()
        .args(["healthcheck", "--url", &address])
        .output()
        .unwrap();
    assert!(healthy.status.success(), "{healthy:?}");
    assert!(String::from_utf8_lossy(&healthy.stdout).contains("ok"));
    let stopped_at = std::time::Instant::now();
    assert!(terminate(&mut child).success());
    assert!(
        stopped_at.elapsed() < std::time::Duration::from_secs(2),
        "SIGTERM stops gcemu within 2 s"
    );
    let down = gcemu()
        .args(["healthcheck", "--url", &address])
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));
    let reason = String::from_utf8_lossy(&down.stderr);
    assert!(reason.contains("cannot connect"), "{reason}");
    assert_eq!(reason.trim().lines().count(), 1, "one line: {reason}");
    let bad = gcemu()
        .args(["healthcheck", "--url", "ftp://x"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn gcemu_in_memory_1_in_the_environment_keeps_state_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    // As in the Docker image, which sets GCEMU_DATA_DIR: GCEMU_IN_MEMORY=1 wins over it.
    let (mut child, ready) = start(
        gcemu()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("GCEMU_IN_MEMORY", "1")
            .env("GCEMU_DATA_DIR", dir.path().join("data"))
            .current_dir(dir.path()),
    );
    assert!(ready.contains("(in-memory)"), "{ready}");
    assert!(terminate(&mut child).success());
    assert!(!dir.path().join("gcemu-data").exists());
    assert!(!dir.path().join("data").exists());
}
