//! `gcemu token`: a signed bearer token, from the key in the data dir or from a running emulator.

use serde_json::{json, Value};

use crate::cli::TokenArgs;
use crate::client::{base_url, error_chain, http_client};
use crate::identity::keys::SigningKey;
use crate::identity::tokens;

/// The token, or why there is none.
pub async fn run(args: TokenArgs) -> Result<String, String> {
    match args.target.clone() {
        Some(target) => ask(&target, args).await,
        None => {
            let data_dir = args.data_dir.clone();
            let key =
                tokio::task::spawn_blocking(move || SigningKey::load_or_create(Some(&data_dir)))
                    .await
                    .map_err(|error| error.to_string())?
                    .map_err(|error| format!("{error:#}"))?;
            Ok(tokens::mint(&key, &args.into_request(), chrono::Utc::now()))
        }
    }
}

async fn ask(target: &str, args: TokenArgs) -> Result<String, String> {
    let base = base_url(target)?;
    let mut body = serde_json::Map::new();
    if let Some(tenant) = &args.tenant {
        body.insert("tenant".into(), json!(tenant));
    }
    if let Some(user) = &args.user {
        body.insert("user".into(), json!(user));
    }
    if let Some(app) = &args.app {
        body.insert("app".into(), json!(app));
    }
    if !args.roles.is_empty() {
        body.insert("roles".into(), json!(args.roles.join(" ")));
    }
    if !args.scopes.is_empty() {
        body.insert("scopes".into(), json!(args.scopes.join(" ")));
    }
    let url = format!("{base}/_emulator/token");
    let timeout = std::time::Duration::from_secs(30);
    let response = http_client(timeout, timeout, true)?
        .post(&url)
        .json(&Value::Object(body))
        .send()
        .await
        .map_err(|error| format!("POST {url}: {}", error_chain(&error)))?;
    let status = response.status();
    let answer: Value = response
        .json()
        .await
        .map_err(|error| format!("POST {url}: {}", error_chain(&error)))?;
    match answer.get("access_token").and_then(Value::as_str) {
        Some(token) if status.is_success() => Ok(token.to_string()),
        _ => Err(format!(
            "POST {url} answered {status}: {}",
            answer["error"]["message"].as_str().unwrap_or("no token")
        )),
    }
}
