//! examples/train_names as a user runs it (shortened to 2 epochs of 500 batches): the
//! token-count accumulation ends where the full batch ends (validation loss within 1e-3,
//! weights within 1e-3 relative, after the first epoch too), the 1/k scaling at least 10
//! times farther, the model beats the bigram baseline, the last two lines have the issue's
//! form, the plot is written, and bad arguments get one line on stderr and status 2.
//! (`cargo test` builds the example.)

use std::process::{Command, Output};

mod common;
use common::{assert_refused, example};

fn run(args: &[&str]) -> Output {
    Command::new(example("train_names")).args(args).output().unwrap()
}

/// The numbers after each `name ` in `line`, in order.
fn numbers(line: &str, names: &[&str]) -> Vec<f64> {
    names
        .iter()
        .map(|n| {
            let at = line.find(&format!("{n} ")).unwrap_or_else(|| panic!("{n} in {line}")) + n.len() + 1;
            let num: String = line[at..].chars().take_while(|c| !matches!(c, ',' | ';' | ' ')).collect();
            num.parse().unwrap_or_else(|_| panic!("{num:?} in {line}"))
        })
        .collect()
}

#[test]
fn token_count_accumulation_is_the_full_batch_and_beats_the_bigram() {
    let dir = std::env::temp_dir().join(format!("tapegrad-train-names-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("curves.svg");
    let o = run(&["--epochs", "2", "--batches", "500", "--seed", "1", "--plot", svg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(!out.contains('\r') && !out.contains('\x1b'), "no progress bar off a terminal");
    let lines: Vec<&str> = out.lines().collect();
    let n = lines.len();
    assert!(lines[n - 2].starts_with("final validation loss (nats/char): full-batch "), "{out}");
    assert!(lines[n - 1].starts_with("relative weight distance from full-batch: loss/k "), "{out}");
    let [x, y, z, w] = numbers(lines[n - 2], &["full-batch", "loss/k", "tokens/total", "bigram"])[..] else {
        unreachable!()
    };
    let [a, b] = numbers(lines[n - 1], &["loss/k", "tokens/total"])[..] else { unreachable!() };
    assert!((z - x).abs() <= 1e-3, "Z {z} vs X {x}");
    assert!(b <= 1e-3, "B {b}");
    assert!(a >= 10.0 * b, "A {a} vs B {b}");
    assert!(x < w, "X {x} vs bigram {w}");
    assert!(y > x, "loss/k {y} trails the full batch {x}");
    let epochs: Vec<&&str> = lines.iter().filter(|l| l.starts_with("epoch ")).collect();
    assert_eq!(epochs.len(), 2, "{out}");
    let distances = &epochs[0][epochs[0].find("weight distance").expect("distances")..];
    let [a1, b1] = numbers(distances, &["loss/k", "tokens/total"])[..] else { unreachable!() };
    assert!(b1 <= 1e-3 && a1 >= 10.0 * b1, "after the first epoch: A {a1}, B {b1}");
    let sampled = lines.iter().find(|l| l.starts_with("10 names sampled")).expect("samples");
    assert_eq!(sampled.split(": ").nth(1).unwrap().split(", ").count(), 10, "{sampled}");
    // the README shows the default run's lines in this same form
    let readme = include_str!("../README.md");
    let block = readme.split("--example train_names").nth(1).and_then(|s| s.split("```text\n").nth(1)).unwrap();
    let form = |l: &str| l.split(|c: char| c.is_ascii_digit()).next().unwrap().to_string();
    for line in block.split("```").next().unwrap().lines() {
        assert!(lines.iter().any(|l| form(l) == form(line)), "README line not in the output's form: {line}");
    }
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"));
    assert!(text.contains("tokens/total") && text.contains("bigram"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_arguments_get_one_line_and_status_2() {
    for (args, needle) in [
        (&["--epochs", "0"][..], "--epochs"),
        (&["--batches", "0"], "--batches"),
        (&["--optimizer", "rmsprop"], "sgd, adam or adamw"),
        (&["--lr", "-1"], "--lr"),
        (&["--lr", "nan"], "--lr"),
        (&["--seed", "x"], "--seed"),
        (&["--plot", "curves.png"], ".svg"),
        (&["--plot", "/nonexistent-dir/curves.svg"], "nonexistent-dir"),
        (&["--bogus"], "--bogus"),
    ] {
        assert_refused("train_names", &run(args), &format!("{args:?}"), needle);
    }
}

#[cfg(unix)]
#[test]
fn unwritable_stdout_does_not_panic() {
    common::assert_full_stdout_fails("train_names", &["--epochs", "1", "--batches", "1"]);
    common::assert_closed_pipe_is_quiet("train_names", &["--epochs", "1", "--batches", "1"]);
}
