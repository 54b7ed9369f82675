//! examples/train_digits as a user runs it: the default training reaches 95% test accuracy,
//! 4 accumulated micro-batches end within half a point of it, the plot is written, and bad
//! arguments get one line on stderr and exit status 2. (`cargo test` builds the example.)

use std::path::PathBuf;
use std::process::{Command, Output};

fn example() -> PathBuf {
    // target/<profile>/deps/<this test> -> target/<profile>/examples/train_digits
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(format!("train_digits{}", std::env::consts::EXE_SUFFIX));
    assert!(path.exists(), "{} not built (cargo test builds the examples)", path.display());
    path
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
    assert!(err.starts_with("train_digits: --plot ") && err.lines().count() == 1, "{err}");
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

#[test]
fn bad_arguments_get_one_line_and_status_2() {
    for args in [
        &["--epochs", "0"][..],
        &["--epochs", "many"],
        &["--micro-batches", "0"],
        &["--micro-batches", "65"],
        &["--optimizer", "lbfgs"],
        &["--lr", "nan"],
        &["--seed", "-1"],
        &["--plot", "curves.png"],
        &["--plot"],
        &["--wat"],
        &["extra"],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("train_digits: "), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    let help = run(&["--help"]);
    assert!(help.status.success() && stdout(&help).starts_with("usage: train_digits"));
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
