//! The headers of every HTML page: a strict Content-Security-Policy (no script, no frame, no
//! base, forms posted only to this service, and the pages' own inline styles by hash), no MIME
//! sniffing, no referrer, and no caching (every page's URL holds a token).

use std::sync::LazyLock;

use axum::{
    http::{HeaderValue, header},
    response::Response,
};
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The templates whose inline `<style>` the policy allows.
const TEMPLATES: [&str; 3] = [
    include_str!("../templates/offer.html.hbs"),
    include_str!("../templates/preferences.html.hbs"),
    include_str!("../templates/appointment.html.hbs"),
];

/// The policy, with a hash per template's style block (computed once).
static POLICY: LazyLock<HeaderValue> =
    LazyLock::new(|| HeaderValue::from_str(&policy(&TEMPLATES)).expect("a policy of ASCII only"));

/// The Content-Security-Policy of pages whose only inline content is the `<style>` blocks of
/// `templates`.
pub fn policy(templates: &[&str]) -> String {
    let hashes: Vec<String> = templates
        .iter()
        .filter_map(|t| inline_style(t))
        .map(|css| {
            let digest = Sha256::digest(css.as_bytes());
            format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            )
        })
        .collect();
    format!(
        "default-src 'none'; style-src {}; form-action 'self'; frame-ancestors 'none'; \
         base-uri 'none'",
        hashes.join(" ")
    )
}

/// The text of a page's `<style>` element, as a browser hashes it.
pub fn inline_style(page: &str) -> Option<&str> {
    let start = page.find("<style>")? + "<style>".len();
    let end = start + page[start..].find("</style>")?;
    Some(&page[start..end])
}

/// Adds the page headers to an HTML response; any other response passes unchanged.
pub async fn harden(mut response: Response) -> Response {
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if is_html {
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_SECURITY_POLICY, POLICY.clone());
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_each_templates_style_and_nothing_else() {
        let csp = policy(&TEMPLATES);
        assert!(
            csp.starts_with("default-src 'none'; style-src 'sha256-"),
            "{csp}"
        );
        assert_eq!(csp.matches("'sha256-").count(), TEMPLATES.len(), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        assert!(!csp.contains("script-src"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("form-action 'self'"), "{csp}");
    }

    #[test]
    fn the_style_is_the_text_between_the_tags() {
        assert_eq!(
            inline_style("<head><style>a{b:c}\n</style></head>"),
            Some("a{b:c}\n")
        );
        assert_eq!(inline_style("<p>no style</p>"), None);
    }
}
