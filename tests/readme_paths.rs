//! Every file path and every `cargo run` / `cargo build` / `cargo bench` target that
//! README.md (and docs/*.md, crates/*/README.md) names exists: backticked paths (with a
//! `/`) from the repository root or the document's folder (a crate's design table may name
//! files under its `src/`), link targets from the document's folder, and `--example`,
//! `--bin`, `--bench` and `-p` names against `cargo metadata`. A list of names after a
//! `cargo run --example NAME` span (`scalar_micrograd`, `custom_op`, ...) must be examples
//! too.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Inline code spans (which may run over a line break) and fenced code lines, each with
/// the number of the paragraph it is in.
fn code(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let (mut fenced, mut paragraph, mut prose) = (false, 0, String::new());
    let end_paragraph = |prose: &mut String, paragraph: &mut usize, out: &mut Vec<(usize, String)>| {
        out.extend(prose.split('`').skip(1).step_by(2).map(|span| (*paragraph, span.to_string())));
        prose.clear();
        *paragraph += 1;
    };
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            end_paragraph(&mut prose, &mut paragraph, &mut out);
            fenced = !fenced;
            continue;
        }
        if fenced {
            out.push((paragraph, line.to_string()));
            continue;
        }
        if line.trim().is_empty() || line.trim_start().starts_with("- ") || line.starts_with('#') {
            end_paragraph(&mut prose, &mut paragraph, &mut out);
        }
        prose.push_str(line.trim());
        prose.push(' ');
    }
    end_paragraph(&mut prose, &mut paragraph, &mut out);
    out
}

/// Link targets `[text](target)` that are not web addresses or anchors.
fn links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|t| !t.contains("://") && !t.starts_with('#'))
        .map(|t| t.split('#').next().unwrap().to_string())
        .collect()
}

/// Whether a word looks like a file path: a `/`, path characters only, and a file
/// extension (a name, a dot, then more: `1/N.` ending a sentence is not one) or a trailing
/// `/`.
fn is_path(word: &str) -> bool {
    let chars = word.chars().all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
    let last = word.rsplit('/').next().unwrap_or("");
    let extension = last.rsplit_once('.').is_some_and(|(stem, ext)| !stem.is_empty() && !ext.is_empty());
    chars && word.contains('/') && !word.starts_with('/') && (word.ends_with('/') || extension)
}

/// Whether `path` names a file or folder: from the root, from `dir` (the document's
/// folder), or under a crate's `src/`.
fn exists(path: &str, dir: &Path) -> bool {
    let root = Path::new(ROOT);
    if root.join(path).exists() || root.join(dir).join(path).exists() {
        return true;
    }
    std::fs::read_dir(root.join("crates")).unwrap().any(|c| c.unwrap().path().join("src").join(path).exists())
}

/// README.md, docs/*.md and crates/*/README.md, as paths from the root.
fn documents() -> Vec<std::path::PathBuf> {
    let root = Path::new(ROOT);
    let mut docs = vec![std::path::PathBuf::from("README.md")];
    for (dir, only) in [("docs", None), ("crates", Some("README.md"))] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let file = match only {
                Some(name) => path.join(name),
                None => path,
            };
            if file.is_file() && file.extension().is_some_and(|e| e == "md") {
                docs.push(file.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    docs.sort();
    docs
}

/// The workspace's packages and targets by kind (`bin`, `example`, `bench`).
fn targets() -> (BTreeSet<String>, BTreeSet<(String, String)>) {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--no-deps", "--format-version", "1", "--offline"])
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (mut packages, mut targets) = (BTreeSet::new(), BTreeSet::new());
    for p in meta["packages"].as_array().unwrap() {
        packages.insert(p["name"].as_str().unwrap().to_string());
        for t in p["targets"].as_array().unwrap() {
            for kind in t["kind"].as_array().unwrap() {
                targets.insert((kind.as_str().unwrap().to_string(), t["name"].as_str().unwrap().to_string()));
            }
        }
    }
    (packages, targets)
}

/// Placeholders such as `NAME` or `WORKLOAD` stand for any target.
fn placeholder(word: &str) -> bool {
    word.chars().all(|c| c.is_ascii_uppercase() || c == '_')
}

/// The problems with the commands of one code span or line: `(kind, name)` pairs named by
/// `cargo run|build|bench` that are not targets, and `-p` packages that do not exist.
fn command_problems(code: &str, packages: &BTreeSet<String>, targets: &BTreeSet<(String, String)>) -> Vec<String> {
    let mut problems = Vec::new();
    for cmd in code.split("cargo ").skip(1) {
        let words: Vec<&str> = cmd.split_whitespace().take_while(|w| *w != "--" && *w != "&&" && *w != "#").collect();
        if !matches!(words.first(), Some(&("run" | "build" | "bench"))) {
            continue;
        }
        for pair in words.windows(2) {
            let name = pair[1];
            let kind = match pair[0] {
                "--example" => "example",
                "--bin" => "bin",
                "--bench" => "bench",
                "-p" | "--package" => {
                    if !packages.contains(name) {
                        problems.push(format!("no package {name} (`cargo {}`)", words.join(" ")));
                    }
                    continue;
                }
                _ => continue,
            };
            if !placeholder(name) && !targets.contains(&(kind.to_string(), name.to_string())) {
                problems.push(format!("no {kind} {name} (`cargo {}`)", words.join(" ")));
            }
        }
    }
    problems
}

/// What is wrong in one document (`doc`, a path from the root).
fn problems(doc: &Path, packages: &BTreeSet<String>, targets: &BTreeSet<(String, String)>) -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(ROOT).join(doc)).unwrap();
    let dir = doc.parent().unwrap();
    let spans = code(&text);
    let mut problems = Vec::new();
    for (_, span) in &spans {
        for word in span.split_whitespace() {
            if is_path(word) && !exists(word, dir) {
                problems.push(format!("no file {word}"));
            }
        }
        problems.extend(command_problems(span, packages, targets));
    }
    for link in links(&text) {
        if !Path::new(ROOT).join(dir).join(&link).exists() {
            problems.push(format!("no file {link} (a link)"));
        }
    }
    // names listed after `cargo run --example NAME` in the same paragraph are examples
    for (i, (paragraph, span)) in spans.iter().enumerate() {
        if span.contains("--example NAME") {
            let same_paragraph = spans[i + 1..].iter().take_while(|(p, _)| p == paragraph);
            for (_, listed) in same_paragraph.take_while(|(_, s)| !s.starts_with("cargo ")) {
                let name = listed.split_whitespace().next().unwrap_or("");
                if !targets.contains(&("example".to_string(), name.to_string())) {
                    problems.push(format!("{name} is listed as an example but is none"));
                }
            }
        }
    }
    problems.into_iter().map(|p| format!("{}: {p}", doc.display())).collect()
}

#[test]
fn readme_paths_and_commands_exist() {
    let (packages, targets) = targets();
    let docs = documents();
    assert!(docs.len() >= 3 && docs.contains(&"docs/training.md".into()), "{docs:?}");
    let all: Vec<String> = docs.iter().flat_map(|d| problems(d, &packages, &targets)).collect();
    assert!(all.is_empty(), "\n{}", all.join("\n"));
}

/// The checks themselves find what they should.
#[test]
fn the_checks_catch_drift() {
    let (packages, targets) = targets();
    assert!(is_path("crates/nn/data/README.md") && is_path("docs/") && !is_path("lib.rs"));
    assert!(!is_path("1/N.") && !is_path("s_i/B") && is_path(".ci/run.sh"));
    assert!(!is_path("src/main.rs:7:15)") && !is_path("https://x.org/a.md"));
    let root = Path::new("");
    assert!(exists("crates/nn/data/README.md", root) && exists("tape/backward.rs", root));
    assert!(!exists("tests/pytorch_semantics.rs", root) && !exists("data/README.md", root));
    assert!(exists("training.md", Path::new("docs")) && !exists("training.md", root));
    let bad = command_problems("cargo run --release --example steps -- seed 10", &packages, &targets);
    assert_eq!(bad, ["no example steps (`cargo run --release --example steps`)"]);
    assert!(command_problems("cargo run --release --bin steps -- seed 10", &packages, &targets).is_empty());
    assert_eq!(command_problems("cargo run -p tapegrad-nope", &packages, &targets).len(), 1);
    assert!(command_problems("cargo run --release -p tapegrad-demo -- fixes", &packages, &targets).is_empty());
    let spans = code("- a (`cargo run --example NAME`): `custom_op`, `steps\nN`\n\nnext `x`");
    assert_eq!(spans.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [1, 1, 1, 2]);
    assert_eq!(spans[2].1, "steps N");
    assert_eq!(links("[a](docs/x.md#part) [b](https://x.org) ![c](docs/y.svg)"), ["docs/x.md", "docs/y.svg"]);
}
