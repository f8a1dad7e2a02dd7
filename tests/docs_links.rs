//! Every relative link in `README.md` and `docs/*.md` resolves: the file (or
//! folder) it names exists, and a `#anchor` names a heading of the page it
//! points at, as GitHub derives heading anchors. Links with a scheme
//! (`https:`, `mailto:`) are not fetched. Also keeps the README short.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

const README_MAX_LINES: usize = 300;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives inside the workspace")
        .to_path_buf()
}

/// README.md and every Markdown file of docs/, relative to `root`.
fn doc_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("README.md")];
    if let Ok(dir) = fs::read_dir(root.join("docs")) {
        let mut docs: Vec<PathBuf> = dir
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .filter_map(|p| p.strip_prefix(root).ok().map(Path::to_path_buf))
            .collect();
        docs.sort();
        files.extend(docs);
    }
    files
}

/// Lines outside fenced code blocks, with their 1-based numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut in_fence = false;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if !in_fence {
            out.push((n + 1, line));
        }
    }
    out
}

/// The line without its inline code spans (`...`), which may hold `](`.
fn without_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
            out.push(' ');
        } else if !in_code {
            out.push(c);
        }
    }
    out
}

/// Targets of `[text](target)` and `![alt](target)` on one line.
fn link_targets(line: &str) -> Vec<String> {
    let line = without_code_spans(line);
    let mut targets = Vec::new();
    let mut rest = line.as_str();
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let Some(end) = after.find(')') else { break };
        // `[text](target "title")`: the target is the first word.
        let target = after[..end].split_whitespace().next().unwrap_or("");
        targets.push(target.to_string());
        rest = &after[end..];
    }
    targets
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// to hyphens; a repeated heading gets `-1`, `-2`, ...
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        let trimmed = line.trim_start();
        let hashes = trimmed.chars().take_while(|c| *c == '#').count();
        if hashes == 0 || hashes > 6 || !trimmed[hashes..].starts_with(' ') {
            continue;
        }
        let title = trimmed[hashes..].trim();
        let slug: String = title
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut unique = slug.clone();
        let mut n = 0;
        while seen.contains(&unique) {
            n += 1;
            unique = format!("{slug}-{n}");
        }
        seen.insert(unique);
    }
    seen
}

/// Every broken relative link of `files` (relative to `root`), as
/// `file:line: target: why`.
fn broken_links(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let mut broken = Vec::new();
    for file in files {
        let text = match fs::read_to_string(root.join(file)) {
            Ok(t) => t,
            Err(e) => {
                broken.push(format!("{}: cannot read: {e}", file.display()));
                continue;
            }
        };
        let dir = file.parent().unwrap_or(Path::new(""));
        for (n, line) in prose_lines(&text) {
            for target in link_targets(line) {
                if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, anchor) = match target.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (target.as_str(), None),
                };
                let where_ = format!("{}:{n}: {target}", file.display());
                let resolved = if path.is_empty() {
                    file.clone()
                } else {
                    dir.join(path)
                };
                let full = root.join(&resolved);
                if !full.exists() {
                    broken.push(format!("{where_}: {} does not exist", resolved.display()));
                    continue;
                }
                let Some(anchor) = anchor else { continue };
                if full.extension().is_none_or(|x| x != "md") {
                    continue;
                }
                let headings = fs::read_to_string(&full)
                    .map(|t| anchors(&t))
                    .unwrap_or_default();
                if !headings.contains(anchor) {
                    broken.push(format!(
                        "{where_}: no heading of {} has the anchor #{anchor}",
                        resolved.display()
                    ));
                }
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let root = root();
    let files = doc_files(&root);
    assert!(files.len() > 1, "docs/ holds no Markdown file: {files:?}");
    let broken = broken_links(&root, &files);
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_stays_short() {
    let text = fs::read_to_string(root().join("README.md")).expect("README.md");
    let lines = text.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines; keep it to {README_MAX_LINES} and move detail to docs/"
    );
}

/// The checker itself, on pages made for it, so a slip in it cannot make
/// the check above vacuous.
#[test]
fn the_checker_finds_missing_files_and_anchors() {
    let dir = std::env::temp_dir().join(format!("docs-links-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("docs")).expect("temp dir");
    fs::write(
        dir.join("README.md"),
        "# Top\n\nSee [a](docs/a.md#the-a-page-b), [gone](docs/gone.md), \
         [bad](docs/a.md#nowhere), [self](#top), [web](https://example.com/x#y), \
         `[code](docs/none.md)` and ![pic](docs/pic.png).\n\n```\n[fenced](docs/none.md)\n```\n",
    )
    .expect("write");
    fs::write(
        dir.join("docs/a.md"),
        "# The A page (`b`)\n\n## Twice\n\n## Twice\n\n[up](../README.md#top) [dup](#twice-1) [no](#twice-2)\n",
    )
    .expect("write");
    fs::write(dir.join("docs/pic.png"), b"png").expect("write");
    let files = doc_files(&dir);
    assert_eq!(
        files,
        [PathBuf::from("README.md"), PathBuf::from("docs/a.md")]
    );
    let broken = broken_links(&dir, &files);
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(broken.len(), 3, "{broken:#?}");
    assert!(
        broken[0].contains("docs/gone.md does not exist"),
        "{}",
        broken[0]
    );
    assert!(broken[1].contains("#nowhere"), "{}", broken[1]);
    assert!(
        broken[2].starts_with("docs/a.md:7: #twice-2"),
        "{}",
        broken[2]
    );
}
