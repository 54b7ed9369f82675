//! The binary's file rules: an output may be no input and no other output (by device and
//! inode: a symbolic or hard link to `--load`'s file is refused too), names up to the
//! 255-byte limit can be written, a user's file that looks like a temporary file is left
//! alone, and a path with a newline keeps the error on one line.

use std::path::Path;

mod common;
use common::{demo, refused, TempDir};

/// PyTorch's `save_file(model.state_dict())` of the forum post's 4-8-2 model.
fn weights() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../nn/tests/fixtures/seed_model.safetensors")).unwrap()
}

#[test]
fn an_output_may_not_replace_an_input_through_any_name() {
    let dir = TempDir::new("output-is-input");
    let a = dir.join("a.st");
    std::fs::write(&a, weights()).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("a.st", dir.join("soft.st")).unwrap();
    std::fs::hard_link(&a, dir.join("hard.st")).unwrap();
    let mut aliases = vec![a.clone(), dir.join("hard.st"), format!("{}/./a.st", dir.0.display())];
    if cfg!(unix) {
        aliases.push(dir.join("soft.st"));
    }
    for alias in &aliases {
        for option in ["--dot", "--save"] {
            refused(
                &["--load", &a, option, alias],
                &[&format!("{option} names the file that --load reads"), "an output may not replace an input"],
            );
        }
        refused(&["--save", &a, "--dot", alias], &["--save and --dot name the same file"]);
    }
    assert_eq!(std::fs::read(&a).unwrap(), weights(), "the weights are untouched");
    // a copy is another file: loading one and saving over the other works
    let copy = dir.join("copy.st");
    std::fs::write(&copy, weights()).unwrap();
    let (out, _) = demo(&["--load", &a, "--save", &copy]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_ne!(std::fs::read(&copy).unwrap(), weights());
}

#[test]
fn names_up_to_255_bytes_are_written() {
    let dir = TempDir::new("long-names");
    for len in [242, 250, 255] {
        let dot = dir.join(&format!("{}.dot", "d".repeat(len - 4)));
        let (out, _) = demo(&["--dot", &dot]);
        assert!(out.status.success(), "{len}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(std::fs::read_to_string(&dot).unwrap().starts_with("digraph tape {"));
        let svg = dir.join(&format!("{}.svg", "s".repeat(len - 4)));
        let (out, _) = demo(&["fixes", "--steps", "1", "--plot", &svg]);
        assert!(out.status.success(), "{len}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
    }
    assert_eq!(dir.entries().len(), 6, "nothing else is left: {:?}", dir.entries());
    refused(&["--dot", &dir.join(&"d".repeat(256))], &["--dot"]);
}

#[test]
fn a_users_look_alike_file_is_not_a_leftover() {
    let dir = TempDir::new("look-alike");
    let mine = dir.join(".x.st.tapegrad-tmp");
    std::fs::write(&mine, b"the user's notes").unwrap();
    let (out, _) = demo(&["--save", &dir.join("x.st")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&mine).unwrap(), b"the user's notes");
    assert_eq!(dir.entries(), [".x.st.tapegrad-tmp", "x.st"]);
}

#[test]
fn a_path_with_a_newline_keeps_the_message_on_one_line() {
    let dir = TempDir::new("newline");
    let line = refused(&["--dot", &dir.join("new\nline/x.dot")], &["--dot", "new\\nline"]);
    assert!(!line.trim_end().contains('\n'));
    refused(&["--load", &dir.join("a\nb.st")], &["--load", "a\\nb.st"]);
    refused(&["fixes", "--plot", &dir.join("p\rq/x.svg")], &["--plot", "p\\rq"]);
    refused(&["--save", &dir.join("e\u{1b}[31m/x.st")], &["--save", "e\\u{1b}[31m"]);
}
