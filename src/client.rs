//! What gcemu's client commands (`expect`, `report`, `conformance`, `token --target`) share:
//! reading `--target`, an HTTP client that trusts gcemu's CA when asked to, and describing a
//! failed request with its causes.

use std::time::Duration;

/// The environment variable naming a PEM file of extra CA certificates the client commands
/// trust, such as gcemu's own (`GET /_emulator/ca.pem`) for a gcemu started with `--tls`.
pub const CA_FILE_VARIABLE: &str = "GCEMU_CA_FILE";

/// `--target` as a base URL without its trailing `/`: an http or https URL without a query or
/// fragment.
pub fn base_url(raw: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(raw.trim())
        .map_err(|error| format!("--target '{raw}' is not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("--target '{raw}': only http:// and https:// URLs"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "--target '{raw}' must be a base URL, without a query or fragment"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// An HTTP client with these timeouts that trusts the public roots and, when `GCEMU_CA_FILE`
/// names a PEM file, the certificates in it.
pub fn http_client(
    connect_timeout: Duration,
    timeout: Duration,
    follow_redirects: bool,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(connect_timeout)
        .timeout(timeout);
    if !follow_redirects {
        builder = builder.redirect(reqwest::redirect::Policy::none());
    }
    if let Some(path) = std::env::var_os(CA_FILE_VARIABLE).filter(|path| !path.is_empty()) {
        let pem = std::fs::read(&path).map_err(|error| {
            format!(
                "{CA_FILE_VARIABLE}={}: cannot read it: {error}",
                path.to_string_lossy()
            )
        })?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| {
            format!(
                "{CA_FILE_VARIABLE}={}: not PEM certificates: {error}",
                path.to_string_lossy()
            )
        })?;
        if certificates.is_empty() {
            return Err(format!(
                "{CA_FILE_VARIABLE}={} holds no certificate",
                path.to_string_lossy()
            ));
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder
        .build()
        .map_err(|error| format!("cannot build an HTTP client: {error}"))
}

/// An error and each of its causes, joined by `: `.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_http_or_https_base_urls() {
        assert_eq!(
            base_url("http://127.0.0.1:5080/").unwrap(),
            "http://127.0.0.1:5080"
        );
        assert_eq!(
            base_url("https://graph.microsoft.com").unwrap(),
            "https://graph.microsoft.com"
        );
        assert!(base_url("ftp://x").is_err());
        assert!(base_url("http://x/?a=b").is_err());
        assert!(base_url("localhost:5080").is_err());
    }
}
