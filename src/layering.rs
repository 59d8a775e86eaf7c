//! The layers of `lib.rs`, checked: every `crate::` path in `src/` names a
//! module of the importing file's layer or of a lower one, and the modules of
//! an independent layer do not name each other.
//!
//! The check reads the source text, not the compiler's view: comments and
//! string literals are blanked first, then each `crate::` path (grouped
//! `use crate::{a::b, c}` ones included, over several lines) is resolved to
//! the top-level module it names. `super::` paths are not followed; none here
//! leaves its top-level module. `main.rs` (the binary, which names the
//! library as `edgemeter::`) and `lib.rs` are not checked.

/// One layer of the crate; see the crate's documentation for why each
/// module is where it is.
struct Layer {
    modules: &'static [&'static str],
    /// Whether its modules must not import each other.
    independent: bool,
}

/// The layers, from the bottom.
const LAYERS: &[Layer] = &[
    Layer {
        modules: &["error", "cpu", "memory"],
        independent: false,
    },
    Layer {
        modules: &["schema", "time", "aws", "object_names"],
        independent: false,
    },
    Layer {
        modules: &["source", "key"],
        independent: true,
    },
    Layer {
        modules: &["format"],
        independent: false,
    },
    Layer {
        modules: &["lake"],
        independent: false,
    },
    Layer {
        modules: &["query"],
        independent: false,
    },
    Layer {
        modules: &["billing"],
        independent: false,
    },
    Layer {
        modules: &["ingest", "export", "alerts", "report"],
        independent: true,
    },
    Layer {
        modules: &[
            "config", "commands", "render", "cli", "metrics", "fuzz", "serve",
        ],
        independent: false,
    },
];

/// Items of the crate root and the module they come from.
const ROOT_ITEMS: &[(&str, &str)] = &[("Error", "error"), ("Result", "error")];

/// The layer of a top-level module.
fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.modules.contains(&module))
}

/// One import that goes against the layers.
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    /// The path as written, from `crate::` on.
    import: String,
    reason: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "src/{}:{}: `{}`: {}",
            self.file, self.line, self.import, self.reason
        )
    }
}

/// The top-level module of a file below `src/` (`lake/delta.rs` → `lake`).
fn module_of(file: &str) -> &str {
    let first = file.split('/').next().unwrap_or(file);
    first.strip_suffix(".rs").unwrap_or(first)
}

/// The text with comments, string and character literals replaced by
/// spaces (newlines kept, so line numbers hold).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&chars, i) {
            // A raw string: r"…" or r#"…"#.
            let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let body_start = i + 2 + hashes;
            let rest: String = chars[body_start..].iter().collect();
            let body_len = rest.find(&close).map_or(rest.len(), |n| n + close.len());
            let end = body_start + rest[..body_len].chars().count();
            for ch in &chars[i..end.min(chars.len())] {
                out.push(blank(*ch));
            }
            i = end;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && next == Some('\\') {
            // An escaped character literal: '\n', '\'', '\u{1f}'.
            let end = chars[(i + 3).min(chars.len())..]
                .iter()
                .position(|c| *c == '\'')
                .map_or(chars.len(), |n| i + 4 + n);
            for ch in &chars[i..end.min(chars.len())] {
                out.push(blank(*ch));
            }
            i = end;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            out.push_str("   ");
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// Each `crate::` path of the (code-only) text: its line, the path as
/// written, and the first segment of every path it names.
fn crate_paths(code: &str) -> Vec<(usize, String, Vec<String>)> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(at) = code[from..].find("crate::").map(|n| from + n) {
        from = at + "crate::".len();
        let before = at.checked_sub(1).map(|b| bytes[b]);
        if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b':')
        {
            continue;
        }
        let line = code[..at].matches('\n').count() + 1;
        let rest = &code[from..];
        let (text_len, heads) = if rest.starts_with('{') {
            let mut depth = 0;
            let mut end = rest.len();
            for (i, c) in rest.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let group = &rest[1..end.saturating_sub(1)];
            (end, group_heads(group))
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let head = rest[..end].split("::").next().unwrap_or("").to_string();
            (end, vec![head])
        };
        let written = format!(
            "crate::{}",
            rest[..text_len]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        );
        found.push((line, written, heads));
    }
    found
}

/// The first segments of the paths of a `{…}` group (nested groups skipped).
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut item = String::new();
    for c in group.chars().chain(std::iter::once(',')) {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                let head = item.trim().split("::").next().unwrap_or("").trim();
                if !head.is_empty() && head != "self" {
                    heads.push(head.to_string());
                }
                item.clear();
                continue;
            }
            _ => {}
        }
        if depth == 0 {
            item.push(c);
        }
    }
    heads
}

/// The imports of one file (`file` relative to `src/`) that go against the layers.
fn check(file: &str, text: &str) -> Vec<Violation> {
    let from = module_of(file);
    let mut out = Vec::new();
    let violation = |line, import: &str, reason: String| Violation {
        file: file.to_string(),
        line,
        import: import.to_string(),
        reason,
    };
    let Some(from_layer) = layer_of(from) else {
        out.push(violation(
            1,
            "",
            format!("module {from} has no layer: add it to LAYERS and to lib.rs's map"),
        ));
        return out;
    };
    for (line, import, heads) in crate_paths(&code_only(text)) {
        for head in heads {
            let to = ROOT_ITEMS
                .iter()
                .find(|(item, _)| *item == head)
                .map_or(head.as_str(), |(_, module)| module);
            let Some(to_layer) = layer_of(to) else {
                out.push(violation(
                    line,
                    &import,
                    format!("{to} is not a module of the layer map"),
                ));
                continue;
            };
            if to_layer > from_layer {
                out.push(violation(
                    line,
                    &import,
                    format!(
                        "{from} (layer {}) imports {to} (layer {}), a higher layer",
                        from_layer + 1,
                        to_layer + 1
                    ),
                ));
            } else if to_layer == from_layer && to != from && LAYERS[from_layer].independent {
                out.push(violation(
                    line,
                    &import,
                    format!(
                        "{from} imports {to}, an independent module of its own layer ({})",
                        from_layer + 1
                    ),
                ));
            }
        }
    }
    out
}

/// Every `.rs` file below `dir`, relative to `root`, sorted.
fn source_files(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            source_files(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).unwrap();
            out.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn every_import_follows_the_layers() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &src, &mut files);
    let checked: Vec<&String> = files
        .iter()
        .filter(|f| !["main.rs", "lib.rs", "layering.rs"].contains(&f.as_str()))
        .collect();
    assert!(checked.len() > 40, "found only {checked:?}");
    let violations: Vec<String> = checked
        .iter()
        .flat_map(|f| check(f, &std::fs::read_to_string(src.join(f)).unwrap()))
        .map(|v| v.to_string())
        .collect();
    assert!(
        violations.is_empty(),
        "imports against the layers of lib.rs:\n{}",
        violations.join("\n")
    );
}

#[test]
fn every_module_of_lib_rs_has_a_layer() {
    for line in include_str!("lib.rs").lines().map(str::trim) {
        if line.starts_with("//") {
            continue;
        }
        let Some((_, name)) = line.split_once("mod ") else {
            continue;
        };
        let name = name.trim_end_matches(';');
        if name != "layering" {
            assert!(layer_of(name).is_some(), "mod {name} has no layer");
        }
    }
}

#[test]
fn a_violation_is_reported_with_its_file_line_and_import() {
    let lake = "//! Mentions crate::export in a comment, which is no import.\n\
                use crate::error::{Error, Result};\n\
                use crate::schema::requests_schema;\n\
                fn f() -> Result<()> {\n\
                    let _ = \"crate::cli in a string\";\n\
                    let _ = '\"';\n\
                    crate::query::parse_instant(\"2025-01-01\")?;\n\
                    Ok(())\n\
                }\n";
    assert_eq!(
        check("lake/delta.rs", lake),
        vec![Violation {
            file: "lake/delta.rs".into(),
            line: 7,
            import: "crate::query::parse_instant".into(),
            reason: "lake (layer 5) imports query (layer 6), a higher layer".into(),
        }]
    );
    let grouped = "use crate::{\n    error::Result,\n    export::{Period, usage_by_key},\n};\n";
    let found = check("alerts.rs", grouped);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].line, 1);
    assert!(found[0].import.contains("export::{Period, usage_by_key}"));
    assert_eq!(
        found[0].reason,
        "alerts imports export, an independent module of its own layer (8)"
    );
    assert_eq!(
        found[0].to_string(),
        format!(
            "src/alerts.rs:1: `{}`: {}",
            found[0].import, found[0].reason
        )
    );
    // A module of the same, dependent layer, a lower one, and the crate root.
    let fine = "use crate::time::TimeRange;\nuse crate::error::Error;\nfn g() -> crate::Result<()> { Ok(()) }\n";
    assert_eq!(check("schema/mod.rs", fine), vec![]);
    // A module nobody placed.
    assert!(check("newmod.rs", "")[0].reason.contains("has no layer"));
    assert!(
        check("cli.rs", "use crate::newmod::X;")[0]
            .reason
            .contains("not a module")
    );
}
