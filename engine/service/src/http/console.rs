//! The console: the web page where a person sees and changes a connection's mapping.
//! It is a client of the public `/v1` API and nothing else; this module only serves
//! its files (`engine/service/console/`, embedded in the binary by the crate's build
//! script) at `/console/`, with `/` and `/console` redirecting there.
//!
//! Every file is served with a Content-Security-Policy that allows scripts, styles,
//! images and requests from this origin only (no inline scripts or styles, nothing
//! from another origin), and may not be framed. For work on the console itself,
//! [`Assets::Dir`] serves the files from a directory instead, read on every request.

use std::path::PathBuf;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::{ApiError, AppState, ErrorCode};

/// The console's files, by path under `console/`: what the binary serves.
pub const EMBEDDED: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

/// What every console file is served with: this origin only, no inline script or
/// style, no framing, no form posted elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Where the console's files come from.
#[derive(Debug, Clone, Default)]
pub enum Assets {
    /// The files embedded in the binary.
    #[default]
    Embedded,
    /// A directory's files, read on every request: for working on the console
    /// without rebuilding (`CROSSWALK_CONSOLE_DIR`).
    Dir(PathBuf),
}

/// The console's routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(index))
        .route("/console/{*file}", get(asset))
}

async fn asset(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    serve(&state.inner.console, &file).await
}

async fn index(State(state): State<AppState>) -> Response {
    serve(&state.inner.console, "index.html").await
}

/// A file of the console, from `assets`, with its type and the console's headers; 404
/// for a file it does not have.
async fn serve(assets: &Assets, file: &str) -> Response {
    let bytes: Option<Bytes> = match assets {
        Assets::Embedded => EMBEDDED
            .iter()
            .find(|(name, _)| *name == file)
            .map(|(_, bytes)| Bytes::from_static(bytes)),
        Assets::Dir(dir) => {
            // Only plain relative names: nothing outside the directory is served.
            let plain = file.split('/').all(|part| {
                !part.is_empty() && part != "." && part != ".." && !part.contains('\\')
            });
            if plain {
                let path = dir.join(file);
                tokio::task::spawn_blocking(move || std::fs::read(path).ok())
                    .await
                    .ok()
                    .flatten()
                    .map(Bytes::from)
            } else {
                None
            }
        }
    };
    let Some(bytes) = bytes else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("the console has no file `{file}`"),
        )
        .into_response();
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(file)),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Small files, and a new binary may bring new ones: always revalidated.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The media type of a console file, by its extension.
fn content_type(file: &str) -> &'static str {
    match file.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The binary carries the console's entry points.
    #[test]
    fn the_console_is_embedded() {
        for needed in ["index.html", "app.js", "style.css"] {
            assert!(
                EMBEDDED.iter().any(|(name, _)| *name == needed),
                "console/{needed} is not embedded"
            );
        }
    }

    /// A directory serves its plain relative names, and nothing outside it.
    #[tokio::test]
    async fn a_directory_serves_nothing_outside_it() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("console");
        let assets = Assets::Dir(dir);
        let ok = serve(&assets, "views/mapping.js").await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(
            ok.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        for outside in [
            "../Cargo.toml",
            "views/../../Cargo.toml",
            "/etc/hostname",
            "",
            "views//mapping.js",
        ] {
            assert_eq!(
                serve(&assets, outside).await.status(),
                StatusCode::NOT_FOUND,
                "{outside}"
            );
        }
    }

    /// The index loads its script as a module from this origin, and holds no inline
    /// script, which the policy would refuse.
    #[test]
    fn the_index_has_no_inline_script() {
        let (_, index) = EMBEDDED
            .iter()
            .find(|(name, _)| *name == "index.html")
            .expect("embedded");
        let index = std::str::from_utf8(index).expect("UTF-8");
        for tag in index.split("<script").skip(1) {
            let open = tag.split('>').next().unwrap_or_default();
            assert!(
                open.contains("src="),
                "an inline <script> in index.html: <script{open}>"
            );
        }
        assert!(
            !index.contains(" style="),
            "an inline style attribute in index.html"
        );
        assert!(
            !index.contains(" onclick="),
            "an inline event handler in index.html"
        );
    }
}
