//! `gcemu healthcheck`: asks a running emulator whether it is healthy, over HTTP or HTTPS, with
//! no other tool needed (the Docker image has nothing but the binary).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The default address `gcemu serve` listens on.
pub const DEFAULT_URL: &str = "http://127.0.0.1:5080";
/// How long the whole check may take.
const TIMEOUT: Duration = Duration::from_secs(3);
/// The most of an answer that is read.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// `Ok` with the health body when `GET {url}/_emulator/health` answers `200` with status `ok`;
/// otherwise a one-line reason.
pub async fn check(url: &str) -> Result<String, String> {
    if let Some(rest) = url.strip_prefix("https://") {
        return tokio::time::timeout(TIMEOUT, ask_tls(rest))
            .await
            .map_err(|_| format!("{url} did not answer within {} s", TIMEOUT.as_secs()))?;
    }
    let (host_port, prefix) = split_url(url)?;
    tokio::time::timeout(TIMEOUT, ask(&host_port, &prefix))
        .await
        .map_err(|_| format!("{url} did not answer within {} s", TIMEOUT.as_secs()))?
}

/// The URL to check: `url`, with `https` when the emulator in this environment serves https
/// (`GCEMU_TLS` or `GCEMU_TLS_CERT` set, as in a container started with TLS) and `url` says http.
pub fn effective_url(url: &str) -> String {
    let truthy = |name: &str| {
        std::env::var(name).is_ok_and(|value| {
            !matches!(
                value.trim().to_ascii_lowercase().as_str(),
                "" | "0" | "false" | "no" | "off"
            )
        })
    };
    match url.strip_prefix("http://") {
        Some(rest) if truthy("GCEMU_TLS") || truthy("GCEMU_TLS_CERT") => format!("https://{rest}"),
        _ => url.to_string(),
    }
}

/// An https health check. The certificate is not verified: the check asks whether this
/// emulator is alive (on the container's loopback), not whom to trust.
async fn ask_tls(rest: &str) -> Result<String, String> {
    let url = format!("https://{}/_emulator/health", rest.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .build()
        .map_err(|error| error.to_string())?;
    let response =
        client.get(&url).send().await.map_err(|error| {
            format!("cannot reach {url}: {}", crate::client::error_chain(&error))
        })?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status.as_u16() == 200 && body.contains("\"ok\"") {
        Ok(body.trim().to_string())
    } else {
        Err(format!("unhealthy: {} {}", status.as_u16(), body.trim()))
    }
}

/// `http://host:port/prefix` into (`host:port`, `/prefix`).
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("'{url}' is not an http:// URL (for example {DEFAULT_URL})"))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], rest[slash..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(format!("'{url}' names no host"));
    }
    let host_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((host_port, path.to_string()))
}

async fn ask(host_port: &str, prefix: &str) -> Result<String, String> {
    let mut stream = tokio::net::TcpStream::connect(host_port)
        .await
        .map_err(|error| format!("cannot connect to {host_port}: {error}"))?;
    let request = format!(
        "GET {prefix}/_emulator/health HTTP/1.1\r\nHost: {host_port}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|error| format!("sending the request failed: {error}"))?;
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER_BYTES)
        .read_to_end(&mut answer)
        .await
        .map_err(|error| format!("reading the answer failed: {error}"))?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status_line = head.lines().next().unwrap_or_default();
    let status = status_line.split_whitespace().nth(1).unwrap_or_default();
    let body = body.trim();
    if status == "200" && body.contains("\"ok\"") {
        Ok(body.to_string())
    } else if status.is_empty() {
        Err(format!("{host_port} answered something that is not HTTP"))
    } else {
        Err(format!("unhealthy: {status} {body}"))
    }
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn urls_split_into_an_address_and_a_path_prefix() {
        assert_eq!(
            split_url("http://127.0.0.1:5080").unwrap(),
            ("127.0.0.1:5080".into(), "".into())
        );
        assert_eq!(
            split_url("http://localhost/gcemu/").unwrap(),
            ("localhost:80".into(), "/gcemu".into())
        );
        assert!(split_url("https://x").is_err());
        assert!(split_url("http://").is_err());
    }
}
