//! The small examples the README tells users to run, held to the demo's process rules
//! (`tapegrad_demo::output`): an unknown argument is one line and status 2, `--help`
//! prints their description, a stdout that cannot be written is one line and status 2, a
//! closed pipe ends quietly, a DOT path that cannot be written is refused before any work.

use std::process::Command;

mod common;
use common::{assert_refused, example};

const EXAMPLES: [&str; 4] = ["scalar_micrograd", "custom_op", "hessian_vector", "two_layer_step"];

#[test]
fn bad_arguments_get_one_line_and_help_describes() {
    for name in EXAMPLES {
        for (args, needle) in [(&["--wat"][..], "'--wat'"), (&["a.dot", "b.dot"], "unexpected argument")] {
            let o = Command::new(example(name)).args(args).output().unwrap();
            assert_refused(name, &o, &format!("{name} {args:?}"), needle);
        }
        let o = Command::new(example(name)).arg("--help").output().unwrap();
        assert!(o.status.success(), "{name}");
        let help = String::from_utf8(o.stdout).unwrap();
        assert!(help.contains(&format!("Usage: {name}")), "{name}: {help}");
    }
    // the examples without arguments take no positional either
    for name in ["scalar_micrograd", "custom_op", "hessian_vector"] {
        let o = Command::new(example(name)).arg("x").output().unwrap();
        assert_refused(name, &o, &format!("{name} x"), "'x'");
    }
}

#[cfg(unix)]
#[test]
fn unwritable_stdout_does_not_panic() {
    for name in EXAMPLES {
        common::assert_full_stdout_fails(name, &[]);
        common::assert_full_stdout_fails(name, &["--help"]);
    }
    // two_layer_step writes its profile after 1000 steps, well after the pipe closed
    common::assert_closed_pipe_is_quiet("two_layer_step", &[]);
}

#[test]
fn the_dot_file_is_checked_first_and_written_whole() {
    let dir = std::env::temp_dir().join(format!("tapegrad-two-layer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("no-such-folder").join("g.dot");
    let o = Command::new(example("two_layer_step")).arg(&missing).output().unwrap();
    assert_refused("two_layer_step", &o, "missing folder", "no-such-folder");
    let o = Command::new(example("two_layer_step")).arg(&dir).output().unwrap();
    assert_refused("two_layer_step", &o, "a folder", "it is a folder");
    let dot = dir.join("g.dot");
    let o = Command::new(example("two_layer_step")).arg(&dot).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read_to_string(&dot).unwrap().starts_with("digraph tape {"));
    assert!(String::from_utf8(o.stdout).unwrap().contains(&format!("graph written to {}", dot.display())));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left");
    std::fs::remove_dir_all(&dir).unwrap();
}
