//! Entity tags of report answers and `If-None-Match`, in one place.

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};

/// The strong eTag of an answer's bytes: a hash of them, so it changes exactly when they do.
pub(crate) fn of_bytes(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Whether `If-None-Match` names `etag` (weakly compared, as RFC 9110 §13.1.2 asks) or is `*`.
pub(crate) fn none_match(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().trim_start_matches("W/"))
        .any(|v| v == etag || v == "*")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn if_none_match_lists_weak_tags_and_star() {
        let etag = of_bytes(b"report");
        let mut headers = HeaderMap::new();
        assert!(!none_match(&headers, &etag));
        let listed = format!("\"other\", W/{etag}");
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&listed).expect("header"),
        );
        assert!(none_match(&headers, &etag));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(none_match(&headers, "\"anything\""));
    }
}
