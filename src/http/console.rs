//! The web console at `/_emulator/ui/`: static files embedded in the binary at build time
//! (`build.rs` lists `src/http/console/`), served with a content security policy that allows
//! nothing but this origin. Everything it shows comes from the control plane's JSON endpoints.
//!
//! With `GCEMU_CONSOLE_DIR` set, the files are read from that directory instead, so the console
//! can be worked on without rebuilding gcemu.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::error::ApiError;

/// (file name, contents) of every console file.
static CONSOLE_ASSETS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

/// The sample tenant of `fixtures/`, which the console's "load the sample fixtures" posts.
const SAMPLE_FIXTURES: &[u8] = include_bytes!("../../fixtures/sample-tenant.json");
const SAMPLE_FIXTURES_NAME: &str = "sample-tenant.json";

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

/// A console file's contents: from `GCEMU_CONSOLE_DIR` when set, else embedded.
fn asset(name: &str) -> Option<Vec<u8>> {
    if name == SAMPLE_FIXTURES_NAME {
        return Some(SAMPLE_FIXTURES.to_vec());
    }
    // Names are single path segments of the embedded table, so nothing outside the directory
    // is ever read.
    let embedded = CONSOLE_ASSETS.iter().find(|(file, _)| *file == name);
    if let Some(directory) = std::env::var_os("GCEMU_CONSOLE_DIR") {
        let valid = !name.is_empty()
            && !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if valid {
            if let Ok(contents) = std::fs::read(std::path::Path::new(&directory).join(name)) {
                return Some(contents);
            }
        }
    }
    embedded.map(|(_, contents)| contents.to_vec())
}

fn serve(name: &str) -> Result<Response, ApiError> {
    let Some(contents) = asset(name) else {
        return Err(ApiError::not_found("Console file"));
    };
    let mut response = (StatusCode::OK, contents).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name)),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// `GET /_emulator/ui`: to the console's page.
#[utoipa::path(
    get, path = "/ui", tag = "console", operation_id = "getConsoleRedirect",
    responses((status = 308, description = "To `/_emulator/ui/`."))
)]
pub(super) async fn redirect() -> Response {
    Redirect::permanent("/_emulator/ui/").into_response()
}

/// `GET /_emulator/ui/`: the console's page.
#[utoipa::path(
    get, path = "/ui/", tag = "console", operation_id = "getConsole",
    responses((status = 200, description = "The web console.", content_type = "text/html", body = String))
)]
pub(super) async fn page() -> Result<Response, ApiError> {
    serve("index.html")
}

/// `GET /_emulator/ui/{file}`: a file of the console (scripts, styles, the sample fixtures).
#[utoipa::path(
    get, path = "/ui/{file}", tag = "console", operation_id = "getConsoleFile",
    params(("file" = String, Path, description = "A file of the console, such as `app.js`.")),
    responses((status = 200, description = "The file: a script, a style sheet, or the sample fixtures document.", content(
        (String = "text/javascript"),
        (String = "text/css"),
        (String = "text/html"),
        (Object = "application/json"),
    )))
)]
pub(super) async fn file(Path(file): Path<String>) -> Result<Response, ApiError> {
    serve(&file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_console_file_is_embedded_with_a_known_type() {
        let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http/console");
        let on_disk: Vec<String> = std::fs::read_dir(directory)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| !name.starts_with('.'))
            .collect();
        assert!(on_disk.iter().any(|name| name == "index.html"));
        for name in &on_disk {
            assert!(
                CONSOLE_ASSETS.iter().any(|(file, _)| file == name),
                "{name} is not embedded"
            );
            assert_ne!(content_type(name), "application/octet-stream", "{name}");
        }
        assert!(asset("../Cargo.toml").is_none());
        assert!(asset(SAMPLE_FIXTURES_NAME).is_some());
    }
}
