//! What gcemu's client commands (`expect`, `report`, `conformance`) share: reading `--target`
//! and describing a failed request with its causes.

/// The URL schemes a command can talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schemes {
    /// gcemu itself, which serves plain HTTP.
    Http,
    /// Any Graph endpoint: gcemu or the real service.
    HttpOrHttps,
}

/// `--target` as a base URL without its trailing `/`: a URL of an allowed scheme, without a
/// query or fragment.
pub fn base_url(raw: &str, schemes: Schemes) -> Result<String, String> {
    let url = reqwest::Url::parse(raw.trim())
        .map_err(|error| format!("--target '{raw}' is not a URL: {error}"))?;
    match (schemes, url.scheme()) {
        (_, "http") | (Schemes::HttpOrHttps, "https") => {}
        (Schemes::Http, _) => {
            return Err(format!(
                "--target '{raw}': only http:// URLs are supported (gcemu serves plain HTTP)"
            ))
        }
        (Schemes::HttpOrHttps, _) => {
            return Err(format!("--target '{raw}': only http:// and https:// URLs"))
        }
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "--target '{raw}' must be a base URL, without a query or fragment"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
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
    fn targets_are_base_urls_of_the_allowed_schemes() {
        assert_eq!(
            base_url("http://127.0.0.1:5080/", Schemes::Http).unwrap(),
            "http://127.0.0.1:5080"
        );
        assert!(base_url("https://graph.microsoft.com", Schemes::Http).is_err());
        assert_eq!(
            base_url("https://graph.microsoft.com", Schemes::HttpOrHttps).unwrap(),
            "https://graph.microsoft.com"
        );
        assert!(base_url("ftp://x", Schemes::HttpOrHttps).is_err());
        assert!(base_url("http://x/?a=b", Schemes::Http).is_err());
        assert!(base_url("localhost:5080", Schemes::Http).is_err());
    }
}
