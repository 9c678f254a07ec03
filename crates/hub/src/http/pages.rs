//! The two web pages, served by the hub itself: `/store` (the store console) and `/hq` (the
//! HQ dashboard), and their assets under `/assets/`. Plain HTML, CSS and JavaScript from
//! `crates/hub/web/`, compiled into the binary, so nothing is built or installed to serve
//! them. The pages hold no data: they sign in with a token and read the API and its live
//! stream (`live.rs`) like any other client.

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::app::Shared;

/// Every file under `/assets/`: name, content type, content.
const ASSETS: [(&str, &str, &str); 6] = [
    (
        "common.css",
        "text/css; charset=utf-8",
        include_str!("../../web/common.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/common.js"),
    ),
    (
        "store.css",
        "text/css; charset=utf-8",
        include_str!("../../web/store.css"),
    ),
    (
        "store.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/store.js"),
    ),
    (
        "hq.css",
        "text/css; charset=utf-8",
        include_str!("../../web/hq.css"),
    ),
    (
        "hq.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/hq.js"),
    ),
];

const STORE_PAGE: &str = include_str!("../../web/store.html");
const HQ_PAGE: &str = include_str!("../../web/hq.html");

/// Scripts and styles only from the hub itself; no inline script; no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/store") }))
        .route("/store", get(|| async { page(STORE_PAGE) }))
        .route("/hq", get(|| async { page(HQ_PAGE) }))
        .route("/assets/{name}", get(asset))
}

fn page(html: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every asset a page links is served, and every served asset is linked by a page.
    #[test]
    fn the_pages_link_exactly_the_served_assets() {
        let linked: Vec<&str> = [STORE_PAGE, HQ_PAGE]
            .iter()
            .flat_map(|page| page.split("/assets/").skip(1))
            .filter_map(|rest| rest.split('"').next())
            .collect();
        for link in &linked {
            assert!(
                ASSETS.iter().any(|(name, _, _)| name == link),
                "a page links /assets/{link}, which is not served"
            );
        }
        for (name, _, _) in ASSETS {
            assert!(
                linked.contains(&name),
                "{name} is served but no page links it"
            );
        }
    }
}
