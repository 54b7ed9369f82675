//! Helpers of the tests that run the examples as a user runs them.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The built example `name` (`cargo test` builds the examples).
pub fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(path.exists(), "{} not built (cargo test builds the examples)", path.display());
    path
}

/// Checks a refusal of `name`: status 2, one line on stderr starting with the program's
/// name and holding `needle`, nothing on stdout, no panic.
#[track_caller]
pub fn assert_refused(name: &str, o: &Output, what: &str, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: {err}");
    assert!(err.starts_with(&format!("{name}: ")) && err.contains(needle), "{what}: {err} should mention {needle:?}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(o.stdout.is_empty(), "{what}");
}

/// Runs example `name` with `args` and stdout on `/dev/full`: one line saying the output
/// cannot be written, status 2.
#[cfg(unix)]
#[track_caller]
pub fn assert_full_stdout_fails(name: &str, args: &[&str]) {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let o = Command::new(example(name)).args(args).stdout(full).stderr(Stdio::piped()).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{name} {args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{name} {args:?}: {err}");
    assert!(err.starts_with(&format!("{name}: cannot write the output")), "{name} {args:?}: {err}");
}

/// Runs example `name` with `args` (a run that writes after its first seconds) with its
/// stdout closed at once: it ends quietly with status 0.
#[track_caller]
pub fn assert_closed_pipe_is_quiet(name: &str, args: &[&str]) {
    let mut child =
        Command::new(example(name)).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{name}: {}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stderr.is_empty(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
}
