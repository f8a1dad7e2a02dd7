//! `GET /console`: the incident console (SPEC 12), one HTML page with its
//! style and script inline, compiled into the management function. It loads
//! nothing from anywhere else; its API calls carry the app key the user
//! typed in, which the page keeps in `sessionStorage`.
//!
//! The page's Content-Security-Policy allows exactly its own script and
//! style (by their SHA-256) and calls to this origin, so neither injected
//! markup nor a third-party resource can run or load.

use std::sync::LazyLock;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::intake::http::Outbound;

const TEMPLATE: &str = include_str!("console.html");
const STYLE: &str = include_str!("console.css");
const SCRIPT: &str = include_str!("console.js");
const STYLE_SLOT: &str = "/*STYLE*/";
const SCRIPT_SLOT: &str = "/*SCRIPT*/";

struct Page {
    html: String,
    csp: String,
}

/// Built once per cold start: the template with its style and script in place.
static PAGE: LazyLock<Page> = LazyLock::new(|| {
    Page {
    html: TEMPLATE
        .replacen(STYLE_SLOT, STYLE, 1)
        .replacen(SCRIPT_SLOT, SCRIPT, 1),
    csp: format!(
        "default-src 'none'; script-src '{}'; style-src '{}'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        source_hash(SCRIPT),
        source_hash(STYLE)
    ),
}
});

/// A CSP source expression for an inline block: `sha256-` and its base64 digest.
fn source_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The console page, with headers that keep it fresh and confined.
pub fn page() -> Outbound {
    Outbound {
        status: 200,
        headers: vec![
            ("content-type".into(), "text/html; charset=utf-8".into()),
            ("content-security-policy".into(), PAGE.csp.clone()),
            ("cache-control".into(), "no-cache".into()),
            ("x-content-type-options".into(), "nosniff".into()),
            ("referrer-policy".into(), "no-referrer".into()),
        ],
        body: PAGE.html.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_whole_small_and_self_contained() {
        let out = page();
        let html = &out.body;
        assert!(!html.contains(STYLE_SLOT) && !html.contains(SCRIPT_SLOT));
        assert!(html.contains(SCRIPT) && html.contains(STYLE));
        assert!(html.len() < 100 * 1024, "console is {} bytes", html.len());
        // Nothing is loaded from elsewhere: no src/href to another origin, no @import, no url().
        for needle in [
            "src=\"http",
            "href=\"http",
            "@import",
            "url(",
            "//cdn",
            "fonts.g",
        ] {
            assert!(!html.contains(needle), "the console references {needle}");
        }
        assert_eq!(out.content_type(), "text/html; charset=utf-8");
    }

    #[test]
    fn the_policy_names_the_inline_script_and_style() {
        let csp = &page().headers[1].1;
        assert!(csp.contains(&source_hash(SCRIPT)));
        assert!(csp.contains(&source_hash(STYLE)));
        assert!(csp.starts_with("default-src 'none'"));
        // The script's hash must cover exactly what sits between the tags.
        assert!(page().body.contains(&format!("<script>{SCRIPT}</script>")));
    }
}
