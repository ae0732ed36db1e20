//! The dashboard's files, built into the binary: no CDN, no file system, no network at run
//! time. Each is served with its Content-Type, a strong ETag (a hash of its bytes), and the
//! security headers every dashboard answer carries ([`secure`]).

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::etag;

/// The Content-Security-Policy of every dashboard answer: nothing inline, nothing from
/// elsewhere. uPlot sizes its elements through the CSSOM (`element.style`), which `style-src
/// 'self'` allows; the sparklines are inline SVG drawn by script.
pub(crate) const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
     base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// One built-in file.
pub(crate) struct Asset {
    /// Its name under `/dashboard/assets/`.
    pub name: &'static str,
    /// Its Content-Type.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

/// Every file under `/dashboard/assets/`.
pub(crate) static ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/app.js"),
    },
    Asset {
        name: "charts.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/charts.js"),
    },
    Asset {
        name: "pages.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/pages.js"),
    },
    Asset {
        name: "dashboard.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("assets/dashboard.css"),
    },
    Asset {
        name: "uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/vendor/uplot/uPlot.iife.min.js"),
    },
    Asset {
        name: "uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("assets/vendor/uplot/uPlot.min.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("assets/favicon.svg"),
    },
];

/// The ETag of each asset, in [`ASSETS`] order, computed once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| ASSETS.iter().map(|a| etag::of_bytes(a.bytes)).collect())
}

/// The version tag of an asset, for `?v=` in the pages' links: its ETag without quotes.
pub(crate) fn version_of(name: &str) -> &'static str {
    ASSETS
        .iter()
        .position(|a| a.name == name)
        .map(|i| etags()[i].trim_matches('"'))
        .unwrap_or_default()
}

/// Adds the headers every dashboard answer carries.
pub(crate) fn secure(response: &mut Response) {
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &'static str); 4] = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// `GET /dashboard/assets/{name}`: the file, `304` when `If-None-Match` names it. A link
/// with the current `?v=` may be cached for a year (the version changes with the bytes);
/// otherwise the browser revalidates each time.
pub(crate) fn serve(name: &str, query: Option<&str>, request: &HeaderMap) -> Option<Response> {
    let index = ASSETS.iter().position(|a| a.name == name)?;
    let asset = &ASSETS[index];
    let tag = &etags()[index];
    let versioned = query.is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.strip_prefix("v=") == Some(tag.trim_matches('"')))
    });
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Some(cached(asset.bytes, asset.content_type, tag, cache, request))
}

/// An answer of fixed bytes with its ETag and Cache-Control: `304` without a body when the
/// request's `If-None-Match` names the tag.
pub(crate) fn cached(
    bytes: &'static [u8],
    content_type: &'static str,
    tag: &str,
    cache_control: &'static str,
    request: &HeaderMap,
) -> Response {
    let status = if etag::none_match(request, tag) {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    };
    let body = if status == StatusCode::OK { bytes } else { b"" };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    if let Ok(value) = HeaderValue::from_str(tag) {
        headers.insert(header::ETAG, value);
    }
    secure(&mut response);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_distinct_name_and_bytes() {
        let mut names: Vec<_> = ASSETS.iter().map(|a| a.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ASSETS.len());
        assert!(ASSETS.iter().all(|a| !a.bytes.is_empty()));
        assert_eq!(version_of("app.js").len(), 24);
    }

    #[test]
    fn versioned_links_are_immutable_and_revalidation_answers_304() {
        let v = version_of("app.js");
        let response =
            serve("app.js", Some(&format!("v={v}")), &HeaderMap::new()).expect("app.js is served");
        assert_eq!(response.status(), StatusCode::OK);
        let cache = &response.headers()[header::CACHE_CONTROL];
        assert!(cache.to_str().expect("ascii").contains("immutable"));
        let mut request = HeaderMap::new();
        let tag = response.headers()[header::ETAG].clone();
        request.insert(header::IF_NONE_MATCH, tag);
        let again = serve("app.js", None, &request).expect("served");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(serve("../Cargo.toml", None, &HeaderMap::new()).is_none());
    }
}
