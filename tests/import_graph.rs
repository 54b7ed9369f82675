//! No two source files import each other, directly or through others: the graph of the
//! `use` paths and inline paths (`crate::ops::Op`, `super::unary::sign`, `loss::nll_shape`
//! from the file that declares `mod loss`) between the files of each crate's `src/` is a
//! DAG.
//!
//! A path names the file of the deepest module it reaches (`crate::ops::Unary` names
//! `ops/mod.rs`, `crate::ops::unary::sign` names `ops/unary.rs`). A file's use of one of
//! the modules that contain it (a child's `super::Graph`) is not an edge: a module's root
//! file declares its children and may re-export and dispatch to them, and a child may use
//! what its parent defines, as Rust's `super::` intends. Every other use is: siblings,
//! cousins and other modules must form no loop. `mod` declarations, comments, strings and
//! `#[cfg(test)]` modules are not read. Paths into other crates are left out (Cargo already
//! keeps the crates acyclic).
//!
//! Run `cargo test --test import_graph`; a failure prints the loops it meets, file -> file.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A module: its crate (the root file's path relative to the repository) and its path of
/// names inside that crate.
type Module = (String, Vec<String>);

#[test]
fn the_file_import_graph_has_no_loop() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = BTreeMap::new();
    let mut srcs = vec![root.join("src")];
    for entry in fs::read_dir(root.join("crates")).expect("crates/ is readable") {
        srcs.push(entry.expect("a directory entry").path().join("src"));
    }
    for src in srcs.iter().filter(|s| s.is_dir()) {
        for file in rust_files(src) {
            let rel = file.strip_prefix(root).expect("under the root").to_string_lossy().replace('\\', "/");
            let text = fs::read_to_string(&file).expect("a readable source file");
            let src_rel = src.strip_prefix(root).expect("under the root").to_string_lossy().replace('\\', "/");
            files.insert(rel, (src_rel, text));
        }
    }
    assert!(files.len() > 40, "found only {} source files: is the layout still crates/*/src?", files.len());
    let graph = import_graph(&files);
    assert!(
        graph.values().map(BTreeSet::len).sum::<usize>() > 40,
        "the graph has too few edges to be read right: {graph:#?}"
    );
    let loops = find_loops(&graph);
    assert!(loops.is_empty(), "source files import each other in a loop:\n{}", loops.join("\n"));
}

#[test]
fn a_planted_loop_is_found_and_a_childs_use_of_its_parent_is_not_one() {
    let file = |text: &str| ("src".to_string(), text.to_string());
    let mut files = BTreeMap::new();
    files.insert("src/lib.rs".to_string(), file("pub mod ops;\npub mod tape;\npub mod var;\n"));
    files.insert(
        "src/ops/mod.rs".to_string(),
        file("mod loss;\npub use loss::Loss;\npub enum Op { L(loss::Loss) }\n// use crate::var::Var;\n"),
    );
    files.insert("src/ops/loss.rs".to_string(), file("use super::Op;\npub struct Loss;\n"));
    files.insert("src/tape.rs".to_string(), file("use crate::ops::{Op, Handle};\nconst S: &str = \"crate::var\";\n"));
    files.insert("src/var.rs".to_string(), file("use crate::{tape::Tape, ops::Op};\n"));
    let graph = import_graph(&files);
    assert_eq!(graph["src/ops/loss.rs"], BTreeSet::new(), "a child's use of its parent is no edge");
    assert!(graph["src/ops/mod.rs"].contains("src/ops/loss.rs"));
    assert_eq!(graph["src/var.rs"], BTreeSet::from(["src/tape.rs".to_string(), "src/ops/mod.rs".to_string()]));
    assert!(find_loops(&graph).is_empty(), "comments and strings are not read: {graph:#?}");

    // the loop of the issue: ops/loss.rs uses Var, var.rs uses the tape, the tape uses ops
    files.get_mut("src/ops/loss.rs").unwrap().1.push_str("impl crate::var::Var { }\n");
    let loops = find_loops(&import_graph(&files));
    assert_eq!(loops.len(), 1, "{loops:?}");
    for f in ["src/ops/loss.rs", "src/var.rs"] {
        assert!(loops[0].contains(f), "{loops:?}");
    }
}

/// The `.rs` files under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(dir).expect("a readable directory").map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    out
}

/// The module a file holds: `src/lib.rs` and `src/main.rs` are crate roots, as is each
/// `src/bin/NAME.rs` (its modules in `src/bin/NAME/`).
fn module_of(file: &str, src: &str) -> Module {
    let rel = file.strip_prefix(src).and_then(|r| r.strip_prefix('/')).expect("a file under its src/");
    let mut parts: Vec<String> = rel.trim_end_matches(".rs").split('/').map(str::to_string).collect();
    let mut krate = format!("{src}/lib.rs");
    if parts.first().is_some_and(|p| p == "bin") && parts.len() >= 2 {
        krate = format!("{src}/bin/{}.rs", parts[1]);
        parts.drain(..2);
    }
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    (krate, parts)
}

/// file -> the files it imports, by the rules in the header.
fn import_graph(files: &BTreeMap<String, (String, String)>) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeMap<Module, String> = files.iter().map(|(f, (src, _))| (module_of(f, src), f.clone())).collect();
    let mut graph = BTreeMap::new();
    for (file, (src, text)) in files {
        let (krate, here) = module_of(file, src);
        let tokens = tokens(text);
        let children: BTreeSet<&str> =
            tokens.windows(2).filter(|w| w[0] == "mod" && is_ident(&w[1])).map(|w| w[1].as_str()).collect();
        let mut edges = BTreeSet::new();
        for path in paths(&tokens) {
            // the absolute module path the first segments name
            let mut at: Vec<String> = match path[0].as_str() {
                "crate" => Vec::new(),
                "self" | "super" => here.clone(),
                first if children.contains(first) => here.clone(),
                _ => continue, // another crate, or a name in scope
            };
            let mut rest = &path[..];
            while let Some(first) = rest.first() {
                match first.as_str() {
                    "crate" | "self" => {}
                    "super" => {
                        at.pop();
                    }
                    _ => break,
                }
                rest = &rest[1..];
            }
            // the deepest module the path reaches
            let mut target = modules.get(&(krate.clone(), at.clone()));
            for seg in rest {
                at.push(seg.clone());
                match modules.get(&(krate.clone(), at.clone())) {
                    Some(f) => target = Some(f),
                    None => break,
                }
            }
            let Some(target) = target else { continue };
            let (_, there) = module_of(target, src);
            // a module containing this file (or the file itself) is no edge
            if target != file && !here.starts_with(&there) {
                edges.insert(target.clone());
            }
        }
        graph.insert(file.clone(), edges);
    }
    graph
}

/// Each loop of the graph once, as `a -> b -> a`.
fn find_loops(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    // 0: unseen, 1: on the current path, 2: done
    fn visit<'g>(
        f: &'g str,
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'g str, u8>,
        path: &mut Vec<&'g str>,
        loops: &mut Vec<String>,
    ) {
        state.insert(f, 1);
        path.push(f);
        for next in graph.get(f).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                0 => visit(next, graph, state, path, loops),
                1 => {
                    let from = path.iter().position(|p| p == next).expect("on the path");
                    let mut l: Vec<&str> = path[from..].to_vec();
                    l.push(next);
                    loops.push(l.join(" -> "));
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(f, 2);
    }
    let mut state = BTreeMap::new();
    let mut loops = Vec::new();
    for f in graph.keys() {
        if !state.contains_key(f.as_str()) {
            visit(f, graph, &mut state, &mut Vec::new(), &mut loops);
        }
    }
    loops
}

fn is_ident(t: &str) -> bool {
    t.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// The tokens of a source text that paths are made of (identifiers, `::`, braces, commas,
/// `*`, `;`), other punctuation as one-character tokens; comments, strings, character
/// literals, lifetimes and `#[cfg(test)]` modules left out.
fn tokens(text: &str) -> Vec<String> {
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    };
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if text[i..].starts_with("//") {
            i += text[i..].find('\n').unwrap_or(b.len() - i);
        } else if text[i..].starts_with("/*") {
            i += text[i..].find("*/").map_or(b.len() - i, |e| e + 2);
        } else if c == b'r' && (text[i..].starts_with("r\"") || text[i..].starts_with("r#")) {
            let hashes = text[i + 1..].bytes().take_while(|&h| h == b'#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let start = i + 2 + hashes;
            i = start + text[start..].find(&close).map_or(b.len() - start, |e| e + close.len());
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == b'\'' {
            // a character literal ('a', '\n', '"') or a lifetime ('t)
            let lit = text[i + 1..].chars().next().map_or(0, char::len_utf8);
            if b.get(i + 1) == Some(&b'\\') {
                i += 2 + text[i + 2..].find('\'').map_or(0, |e| e + 1);
            } else if b.get(i + 1 + lit) == Some(&b'\'') {
                i += lit + 2;
            } else {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let len = text[i..].find(|ch: char| !(ch.is_alphanumeric() || ch == '_')).unwrap_or(b.len() - i);
            out.push(text[i..i + len].to_string());
            i += len;
        } else if text[i..].starts_with("::") {
            out.push("::".to_string());
            i += 2;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else {
            let len = text[i..].chars().next().map_or(1, char::len_utf8);
            out.push(text[i..i + len].to_string());
            i += len;
        }
    }
    out
}

/// Every path of the token stream: the leaves of `use` trees (`use a::{b, c::d}` gives
/// `a::b` and `a::c::d`) and every other `a::b::c`, as lists of segments.
fn paths(t: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < t.len() {
        if t[i] == "use" {
            i = use_tree(t, i + 1, &mut Vec::new(), &mut out);
        } else if is_ident(&t[i]) && t.get(i + 1).is_some_and(|s| s == "::") && (i == 0 || t[i - 1] != "::") {
            let mut path = vec![t[i].clone()];
            i += 1;
            while t.get(i).is_some_and(|s| s == "::") && t.get(i + 1).is_some_and(|s| is_ident(s)) {
                path.push(t[i + 1].clone());
                i += 2;
            }
            out.push(path);
        } else {
            i += 1;
        }
    }
    out
}

/// Reads one use tree from `t[i]` under `prefix`, pushing its leaves; returns the index
/// after it (past a `;`, `,` or `}` that ends it is left to the caller).
fn use_tree(t: &[String], mut i: usize, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let depth = prefix.len();
    let mut grouped = false;
    while i < t.len() {
        match t[i].as_str() {
            "::" => i += 1,
            "{" => {
                i += 1;
                while i < t.len() && t[i] != "}" {
                    i = use_tree(t, i, prefix, out);
                    if t.get(i).is_some_and(|s| s == ",") {
                        i += 1;
                    }
                }
                i += 1; // the `}`
                grouped = true;
                break;
            }
            "*" => {
                i += 1;
                break;
            }
            "as" => i += 2,
            s if is_ident(s) => {
                prefix.push(s.to_string());
                i += 1;
            }
            _ => break,
        }
    }
    // a leaf: `a::b`, `a::b as c`, `a::*`, or the `self` of `a::{self}`
    if !grouped && prefix.len() + usize::from(depth == 0) > depth {
        out.push(prefix.clone());
    }
    prefix.truncate(depth);
    // past the end of a top-level use
    if depth == 0 && t.get(i).is_some_and(|s| s == ";") {
        i += 1;
    }
    i
}
