//! The layer rule (ARCHITECTURE.md; issue 6, point 3): dependencies point
//! down, `http -> oauth/oidc/auth/service -> jose/store -> domain`, and only
//! `http/` knows the web framework. This reads the `use` statements and the
//! `crate::…` / `axum::…` paths of every file under `src/` and names each
//! file and line that reaches the wrong way.
//!
//! It reads text, not the compiler's view: comments are skipped and
//! relative paths (`super::`, `self::`) are not followed, since they stay
//! inside one module here; the `crate::` form is how a file reaches another.

use std::path::{Path, PathBuf};

/// Paths that only `src/http/` may name (`lib.rs` and `main.rs` wire the
/// application together, so they may too).
const WEB_FRAMEWORK: &[&str] = &[
    "axum",
    "tower",
    "tower_http",
    "tower_sessions",
    "askama",
    "askama_web",
    "crate::http",
];

/// Which files a rule covers, by their top-level module under `src/`
/// (`src/oauth/grants/x.rs` and `src/oauth.rs` are both in `oauth`).
enum Files {
    AllExcept(&'static [&'static str]),
    In(&'static [&'static str]),
}

struct Rule {
    files: Files,
    must_not_name: &'static [&'static str],
    why: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        files: Files::AllExcept(&["http", "lib", "main"]),
        must_not_name: WEB_FRAMEWORK,
        why: "only http/ speaks HTTP; below it, errors and requests are plain types",
    },
    Rule {
        files: Files::In(&["store"]),
        must_not_name: &[
            "crate::oauth",
            "crate::oidc",
            "crate::auth",
            "crate::service",
            "crate::state",
            "crate::http",
        ],
        why: "storage sits below the protocol: it knows domain records only",
    },
    Rule {
        files: Files::In(&["domain", "jose"]),
        must_not_name: &[
            "crate::oauth",
            "crate::oidc",
            "crate::auth",
            "crate::service",
            "crate::state",
            "crate::http",
            "crate::store",
        ],
        why: "records and keys are the bottom layer: they import nothing above them",
    },
    Rule {
        files: Files::In(&["oauth", "oidc", "auth", "service"]),
        must_not_name: &["crate::state"],
        why: "protocol code takes the narrow pieces it needs, not AppState",
    },
];

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = vec![];
    for file in rust_files(&src) {
        let relative = file
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap_or(&file);
        let name = relative.to_string_lossy().replace('\\', "/");
        let source = std::fs::read_to_string(&file).unwrap();
        found.extend(violations(&name, &source));
    }
    assert!(
        found.is_empty(),
        "{} import(s) break the layer rule:\n{}",
        found.len(),
        found.join("\n")
    );
}

/// The checker itself: grouped, multi-line and inline paths are all seen,
/// and a path that merely starts with the same letters is not.
#[test]
fn the_layer_check_sees_grouped_multi_line_and_inline_paths() {
    let source = "\
use crate::{clock::Clock,
    state::AppState as State};
pub(crate) use tower_sessions::Session;
use crate::https_only::Thing; // not crate::http
// use axum::Router; (a comment)
fn f() -> axum::response::Response { todo!() }
";
    let found = violations("src/oauth/example.rs", source);
    let lines: Vec<&str> = found
        .iter()
        .map(|v| v.split(": ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        lines,
        [
            "src/oauth/example.rs:1",
            "src/oauth/example.rs:3",
            "src/oauth/example.rs:6"
        ],
        "{found:#?}"
    );
}

/// Every violation in one file, as "file:line: `path` (why)".
fn violations(file: &str, source: &str) -> Vec<String> {
    let module = top_level_module(file);
    let mut found = vec![];
    for (line, path) in paths(source) {
        for rule in RULES {
            let covered = match rule.files {
                Files::AllExcept(modules) => !modules.contains(&module),
                Files::In(modules) => modules.contains(&module),
            };
            if covered && rule.must_not_name.iter().any(|m| names(&path, m)) {
                found.push(format!("{file}:{line}: `{path}` ({})", rule.why));
            }
        }
    }
    found
}

/// `src/oauth/grants/x.rs` -> `oauth`; `src/lib.rs` -> `lib`.
fn top_level_module(file: &str) -> &str {
    let inside_src = file.strip_prefix("src/").unwrap_or(file);
    let first = inside_src.split('/').next().unwrap_or(inside_src);
    first.strip_suffix(".rs").unwrap_or(first)
}

/// Whether `path` is `module` or something inside it (`crate::http::x`
/// names `crate::http`; `crate::https` does not).
fn names(path: &str, module: &str) -> bool {
    path == module
        || path
            .strip_prefix(module)
            .is_some_and(|rest| rest.starts_with("::"))
}

/// Every path in the source with the line it starts on: each `use`
/// statement expanded (`a::{b, c::d}` -> `a::b`, `a::c::d`), and each
/// `x::y` path in the other lines.
fn paths(source: &str) -> Vec<(usize, String)> {
    let mut paths = vec![];
    let mut statement: Option<(usize, String)> = None;
    for (index, raw) in source.lines().enumerate() {
        let code = raw.split("//").next().unwrap_or("");
        if let Some((start, mut text)) = statement.take() {
            text.push_str(code);
            continue_use(start, text, &mut statement, &mut paths);
        } else if let Some(tree) = use_tree(code) {
            continue_use(index + 1, tree.to_string(), &mut statement, &mut paths);
        } else {
            paths.extend(inline_paths(code).into_iter().map(|p| (index + 1, p)));
        }
    }
    paths
}

/// Keeps collecting a `use` statement until its `;`, then expands it.
fn continue_use(
    start: usize,
    text: String,
    statement: &mut Option<(usize, String)>,
    paths: &mut Vec<(usize, String)>,
) {
    match text.split_once(';') {
        Some((tree, _)) => paths.extend(expand(tree).into_iter().map(|p| (start, p))),
        None => *statement = Some((start, text)),
    }
}

/// The text after `use` when the line starts a `use` statement
/// (`pub use`, `pub(crate) use` included).
fn use_tree(code: &str) -> Option<&str> {
    let code = code.trim_start();
    let code = match code.strip_prefix("pub") {
        Some(rest) if rest.starts_with('(') => rest.split_once(')')?.1.trim_start(),
        Some(rest) => rest.trim_start(),
        None => code,
    };
    code.strip_prefix("use ")
}

/// `crate::{a::b, c as d}` -> [`crate::a::b`, `crate::c`].
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim().trim_start_matches("::");
    let Some(open) = tree.find('{') else {
        // Drop a rename: `axum::Json as J` names `axum::Json`.
        return tree
            .split_whitespace()
            .next()
            .map(str::to_string)
            .into_iter()
            .collect();
    };
    // In a use tree a brace group is always the last segment.
    let prefix = &tree[..open];
    let inner = tree[open + 1..].trim_end().trim_end_matches('}');
    let mut parts = vec![];
    let (mut depth, mut part_start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[part_start..i]);
                part_start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[part_start..]);
    parts
        .into_iter()
        .filter(|part| !part.trim().is_empty())
        .flat_map(|part| expand(&format!("{prefix}{}", part.trim())))
        .collect()
}

/// Every `a::b…` path in a line of code that is not a `use` statement.
fn inline_paths(code: &str) -> Vec<String> {
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut paths = vec![];
    let mut rest = code;
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphabetic() || c == '_') {
        let end = rest[start..]
            .find(|c: char| !is_path_char(c))
            .map_or(rest.len(), |n| start + n);
        let token = &rest[start..end];
        if token.contains("::") && !rest[..start].ends_with(':') {
            paths.push(token.trim_end_matches(':').to_string());
        }
        rest = &rest[end..];
        if let Some(next) = rest.chars().next() {
            rest = &rest[next.len_utf8()..];
        }
    }
    paths
}

/// Every `.rs` file under `dir`, in a stable order.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![];
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}
