//! The web dashboard: plain HTML, CSS and JavaScript modules under `web/`, compiled into
//! the binary so a node serves its own UI with no separate web server and no build step.
//!
//! The API crate serves [`index`] at `/` and every other file through [`asset`] under
//! `/ui/`. Pages are ES modules loaded by `web/app.js` (a hash router); they talk to the
//! node only through the public REST API and the live stream (`/api/v1/stream`), so the
//! dashboard can do nothing a user could not do with `curl`. Event and model text is only
//! ever inserted as text (`web/lib/dom.js`), never parsed as HTML.
//!
//! In debug builds the files are read from `web/` at run time (edit, reload); release
//! builds carry them inside the executable.

use std::borrow::Cow;

/// The files under `web/`.
#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct Assets;

/// One file of the dashboard, ready to serve.
#[derive(Debug)]
pub struct Asset {
    /// The file's bytes.
    pub body: Cow<'static, [u8]>,
    /// Its media type (`text/javascript` for modules, as browsers require).
    pub content_type: String,
    /// A strong validator for `ETag` / `If-None-Match`: the SHA-256 of the contents.
    pub etag: String,
}

/// The file at `path` (relative to `web/`, e.g. `app.js` or `pages/overview.js`), or `None`
/// when there is no such file. Paths that climb out of `web/` do not resolve.
#[must_use]
pub fn asset(path: &str) -> Option<Asset> {
    if path.split('/').any(|part| part == ".." || part.is_empty()) {
        return None;
    }
    let file = Assets::get(path)?;
    let etag = file
        .metadata
        .sha256_hash()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    Some(Asset {
        content_type: content_type(path, file.metadata.mimetype()),
        etag: format!("\"{etag}\""),
        body: file.data,
    })
}

/// The single page every dashboard view starts from.
#[must_use]
pub fn index() -> Option<Asset> {
    asset("index.html")
}

/// `mimetype` guessed from the extension, with charsets for text so browsers never sniff.
fn content_type(path: &str, guessed: &str) -> String {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js" | "mjs") => "text/javascript; charset=utf-8".into(),
        Some("html") => "text/html; charset=utf-8".into(),
        Some("css") => "text/css; charset=utf-8".into(),
        Some("json") => "application/json".into(),
        Some("svg") => "image/svg+xml".into(),
        _ => guessed.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_shell_and_its_modules_with_browser_types() {
        let index = index().expect("index.html");
        assert!(index.content_type.starts_with("text/html"));
        let page = String::from_utf8_lossy(&index.body);
        assert!(page.contains("/ui/app.js"), "{page}");
        let app = asset("app.js").expect("app.js");
        assert_eq!(app.content_type, "text/javascript; charset=utf-8");
        assert!(app.etag.starts_with('"') && app.etag.len() == 66);
        assert!(asset("styles.css").is_some_and(|a| a.content_type.starts_with("text/css")));
    }

    #[test]
    fn refuses_paths_outside_the_web_folder() {
        for path in [
            "../Cargo.toml",
            "lib/../../Cargo.toml",
            "",
            "/app.js",
            "lib//dom.js",
        ] {
            assert!(asset(path).is_none(), "{path}");
        }
        assert!(asset("no-such-file.js").is_none());
    }

    /// Every module any file imports exists, so a typo cannot ship a blank page.
    #[test]
    fn every_imported_module_exists() {
        let mut missing = Vec::new();
        for path in Assets::iter() {
            if !path.ends_with(".js") {
                continue;
            }
            let file = asset(&path).expect("listed");
            let text = String::from_utf8_lossy(&file.body);
            for line in text.lines() {
                let line = line.trim();
                let Some(spec) = line
                    .strip_prefix("import ")
                    .and_then(|rest| rest.rsplit_once(" from "))
                    .map(|(_, spec)| spec)
                    .or_else(|| line.strip_prefix("import "))
                else {
                    continue;
                };
                let spec = spec.trim_end_matches(';').trim_matches(['\'', '"']);
                let Some(target) = resolve(&path, spec) else {
                    continue;
                };
                if asset(&target).is_none() {
                    missing.push(format!("{path} imports {spec}"));
                }
            }
        }
        assert!(missing.is_empty(), "{missing:#?}");
    }

    /// `spec` imported from `from`, as a path under `web/` (`None` for bare specifiers).
    fn resolve(from: &str, spec: &str) -> Option<String> {
        if let Some(absolute) = spec.strip_prefix("/ui/") {
            return Some(absolute.to_owned());
        }
        if !spec.starts_with('.') {
            return None;
        }
        let mut parts: Vec<&str> = from.split('/').collect();
        parts.pop();
        for part in spec.split('/') {
            match part {
                "." => {}
                ".." => {
                    parts.pop();
                }
                other => parts.push(other),
            }
        }
        Some(parts.join("/"))
    }
}
