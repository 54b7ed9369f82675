//! examples/train_digits as a user runs it: the default training reaches 95% test accuracy,
//! 4 accumulated micro-batches end within half a point of it, the plot is written; and the
//! demo's process rules: bad arguments, write errors and a full disk get one line on stderr
//! and exit status 2, a closed pipe ends quietly, nothing panics. (`cargo test` builds the
//! example.)

use std::path::PathBuf;
use std::process::{Command, Output};

mod common;

fn example() -> PathBuf {
    common::example("train_digits")
}

fn run(args: &[&str]) -> Output {
    Command::new(example()).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// The number on the last line, `test accuracy: 0.972`.
fn final_accuracy(o: &Output) -> f64 {
    let out = stdout(o);
    let last = out.lines().last().unwrap();
    last.strip_prefix("test accuracy: ").unwrap_or_else(|| panic!("last line: {last}")).parse().unwrap()
}

#[test]
fn default_run_reaches_95_percent_and_micro_batches_follow_it() {
    let full = run(&[]);
    assert!(full.status.success(), "{}", String::from_utf8_lossy(&full.stderr));
    let out = stdout(&full);
    assert_eq!(out.lines().filter(|l| l.starts_with("epoch")).count(), 20, "{out}");
    assert!(!out.contains('\r') && !out.contains('\x1b'), "no progress bar off a terminal");
    let a1 = final_accuracy(&full);
    assert!(a1 >= 0.95, "test accuracy {a1}");
    let acc = run(&["--micro-batches", "4"]);
    assert!(acc.status.success());
    let a4 = final_accuracy(&acc);
    assert!((a4 - a1).abs() <= 0.005, "{a4} vs {a1}");
    let adam = run(&["--optimizer", "adam"]);
    assert!(adam.status.success());
    assert!(final_accuracy(&adam) >= 0.95, "Adam: {}", final_accuracy(&adam));
    let note = stdout(&acc);
    let note = note.lines().find(|l| l.starts_with("4 micro-batches vs full batch")).unwrap();
    assert!(note.contains("final weights") && note.contains("apart"), "{note}");
}

#[test]
fn plot_is_written_whole_or_not_at_all() {
    let dir = std::env::temp_dir().join(format!("tapegrad-train-digits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("curves.svg");
    let o = run(&["--epochs", "2", "--seed", "3", "--plot", svg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") && text.contains("test accuracy") && text.contains("4 micro-batches"));
    // an unwritable place: refused before training, one line, nothing left behind
    let bad = dir.join("no-such-folder").join("x.svg");
    let o = run(&["--epochs", "1", "--plot", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(err.starts_with("train_digits: --plot: ") && err.lines().count() == 1, "{err}");
    assert!(o.stdout.is_empty(), "no training before the check");
    assert!(!bad.exists() && !dir.join("no-such-folder").exists());
    // a folder is not a plot file
    let folder = dir.join("folder.svg");
    std::fs::create_dir_all(&folder).unwrap();
    let o = run(&["--plot", folder.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("folder"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A refusal of train_digits (see `common::assert_refused`).
#[track_caller]
fn assert_refused(o: &Output, what: &str, needle: &str) {
    common::assert_refused("train_digits", o, what, needle);
}

#[test]
fn bad_arguments_get_one_line_and_status_2() {
    for (args, needle) in [
        (&["--epochs", "0"][..], "--epochs"),
        (&["--epochs", "many"], "--epochs"),
        (&["--epochs", "10001"], "--epochs"),
        (&["--micro-batches", "0"], "--micro-batches"),
        (&["--micro-batches", "65"], "--micro-batches"),
        (&["--optimizer", "lbfgs"], "sgd, adam or adamw"),
        (&["--lr", "nan"], "--lr"),
        (&["--lr", "0"], "--lr must be greater than 0"),
        (&["--lr", "1e39"], "finite in float32"),
        (&["--optimizer", "adam", "--lr", "-1e-3"], "--lr"),
        (&["--momentum", "-0.9"], "--momentum"),
        (&["--optimizer", "adam", "--momentum", "0.9"], "--momentum applies to sgd only"),
        (&["--betas", "0.9,0.99"], "--betas and --eps apply to adam and adamw only"),
        (&["--optimizer", "adamw", "--betas", "0.9,1"], "--betas"),
        (&["--optimizer", "adamw", "--weight-decay", "inf"], "--weight-decay"),
        (&["--seed", "-1"], "--seed"),
        (&["--plot", "curves.png"], "ending in .svg"),
        (&["--plot"], "--plot"),
        (&["--wat"], "--wat"),
        (&["extra"], "extra"),
        // a repeated option is refused, as the demo refuses it (not the last one silently)
        (&["--lr", "0.1", "--lr", "0.2"], "cannot be used multiple times"),
        (&["--epochs", "1", "--epochs", "2"], "cannot be used multiple times"),
        (&["--plot", "a.svg", "--plot", "b.svg"], "cannot be used multiple times"),
    ] {
        assert_refused(&run(args), &format!("{args:?}"), needle);
    }
    let help = run(&["--help"]);
    assert!(help.status.success());
    // the example's own description, then the options and its optimizers' defaults
    let text = stdout(&help);
    assert!(text.starts_with("Trains a 64-64-10 MLP on the 8x8 handwritten digits"), "{text}");
    for opt in ["--epochs", "--micro-batches", "--optimizer", "--lr", "--betas", "--weight-decay", "--seed", "--plot"] {
        assert!(text.contains(opt), "{opt}: {text}");
    }
    assert!(text.contains("Defaults: sgd lr 0.05, momentum 0.9"), "{text}");
}

/// Arguments that are not UTF-8: a plot path may be any bytes (it is written); text
/// options are refused with one line, never a panic.
#[cfg(unix)]
#[test]
fn non_utf8_arguments_do_not_panic() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let o = Command::new(example()).args(["--optimizer"]).arg(OsStr::from_bytes(b"ad\xffam")).output().unwrap();
    assert_refused(&o, "--optimizer non-UTF-8", "invalid UTF-8");
    let dir = std::env::temp_dir().join(format!("tapegrad-digits-bytes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join(OsStr::from_bytes(b"curves-\xff.svg"));
    let o = Command::new(example()).args(["--epochs", "1", "--plot"]).arg(&svg).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Any K up to the batch size works, though the epoch's last batch (1,437 = 22 x 64 + 29
/// rows) is shorter than K from 30 on: it splits into one micro-batch a row, no row is
/// dropped, and the run follows the full batch (the same steps up to float rounding).
#[test]
fn micro_batches_beyond_the_last_batch_follow_the_full_batch() {
    for k in ["30", "64"] {
        let o = run(&["--epochs", "1", "--micro-batches", k]);
        assert!(o.status.success(), "K {k}: {}", String::from_utf8_lossy(&o.stderr));
        let out = stdout(&o);
        let note = out.lines().find(|l| l.starts_with(&format!("{k} micro-batches vs full batch"))).unwrap();
        let number = |after: &str| -> f64 {
            let rest = note.split(after).nth(1).unwrap_or_else(|| panic!("{after}: {note}"));
            rest.split([' ', ')']).next().unwrap().parse().unwrap()
        };
        let (apart, norm) = (number("final weights "), number("the weights' norm is "));
        assert!(apart <= 1e-5 * norm, "K {k}: weights {apart} apart of {norm}: {note}");
    }
}

/// Stdout that cannot be written: `/dev/full` is one line and status 2; a closed pipe ends
/// quietly with status 0.
#[cfg(unix)]
#[test]
fn unwritable_stdout_does_not_panic() {
    for args in [&["--epochs", "1"][..], &["--help"]] {
        common::assert_full_stdout_fails("train_digits", args);
    }
    common::assert_closed_pipe_is_quiet("train_digits", &["--epochs", "1"]);
}

/// The plot written at the end on a full disk (a file size limit of one block, with
/// SIGXFSZ ignored so the write fails with EFBIG): one line, status 2, the old plot kept
/// and no temporary file left.
#[cfg(unix)]
#[test]
fn a_plot_failing_on_a_full_disk_exits_2() {
    let dir = std::env::temp_dir().join(format!("tapegrad-digits-full-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("curves.svg");
    std::fs::write(&svg, "the old plot\n").unwrap();
    let script = "trap '' XFSZ; ulimit -f 1; exec \"$0\" --epochs 1 --plot \"$1\"";
    let o = Command::new("sh").args(["-c", script]).arg(example()).arg(&svg).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("train_digits: --plot: ") && err.contains("curves.svg"), "{err}");
    assert_eq!(std::fs::read_to_string(&svg).unwrap(), "the old plot\n");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temporary file left");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// docs/training.md's "Train on real data" block is what the example prints (the epochs it
/// leaves out as `...`, the plot's path and the time aside).
#[test]
fn readme_shows_what_the_example_prints() {
    const README: &str = include_str!("../docs/training.md");
    let section = README.split("\n## Train on real data\n").nth(1).expect("a `## Train on real data` section");
    let block = section.split("```text\n").nth(1).and_then(|b| b.split("\n```").next()).expect("an output block");
    let command = "cargo run --release --example train_digits -- --plot docs/train_digits.svg";
    assert!(section.contains(command), "the section shows the command");
    let dir = std::env::temp_dir().join(format!("tapegrad-readme-digits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("train_digits.svg");
    let o = run(&["--plot", svg.to_str().unwrap()]);
    assert!(o.status.success());
    let out = stdout(&o).replace(svg.to_str().unwrap(), "docs/train_digits.svg");
    let mut lines = out.lines();
    for want in block.lines().filter(|l| *l != "...") {
        // the time differs from run to run
        let want = want.split(" in ").next().unwrap();
        assert!(lines.any(|l| l.starts_with(want)), "README line not printed (in order): {want}\n{out}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
