//! `tapegrad-demo fixes` against hostile input, by issue 17's rules (as tests/hostile.rs
//! for the main demo): sizes that cannot fit or overflow, floats not finite in float32,
//! plot files through links, over read-only files, into missing folders or failing part
//! way, stdout that cannot be written, seeds of 2^32 and above, JSON without NaN. Every
//! refusal is one line on stderr and exit status 2 within two seconds, with no output
//! file, partial file or temporary file left behind.

use serde_json::Value;

mod common;
use common::{demo, refused, TempDir};

/// `fixes` followed by `args`.
fn fixes(args: &[&str]) -> Vec<String> {
    std::iter::once("fixes").chain(args.iter().copied()).map(String::from).collect()
}

#[track_caller]
fn fixes_refused(args: &[&str], needles: &[&str]) -> String {
    let all = fixes(args);
    refused(&all.iter().map(String::as_str).collect::<Vec<_>>(), needles)
}

#[track_caller]
fn fixes_ok(args: &[&str]) -> (Vec<u8>, String) {
    let all = fixes(args);
    let (out, _) = demo(&all.iter().map(String::as_str).collect::<Vec<_>>());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {stderr}");
    (out.stdout, stderr)
}

#[test]
fn sizes_that_cannot_fit_are_refused_at_once() {
    let budget = "--max-memory budget of 8.6 GB (8589934592 bytes)";
    for (args, arg) in [
        (&["--layers", "100000,100000,2"][..], "--layers 100000,100000,2 needs"),
        (&["--layers", "1000000000,2", "--optimizer", "adam"], "--layers 1000000000,2 needs"),
        (&["--batch", "1000000000"], "--batch 1000000000 needs"),
        (&["--batch", "4000000000", "--micro-batches", "1", "--json"], "--batch 4000000000 needs"),
        (&["--steps", "1000000000"], "--steps 1000000000 needs"),
        (&["--steps", "100000000", "--plot", "x.svg"], "--steps 100000000 needs"),
    ] {
        fixes_refused(&[args, &["--max-memory", "8GiB"]].concat(), &[arg, "bytes", budget]);
    }
    // each part fits, all together do not: the largest part (here the batch) is named first
    let line = fixes_refused(
        &["--layers", "4,3000,3000,2", "--batch", "2000", "--optimizer", "sgd", "--max-memory", "2500M"],
        &["--batch 2000 with --layers 4,3000,3000,2 with --steps 5 needs", "2.5 GB"],
    );
    assert!(line.contains("more than the --max-memory budget"), "{line}");
    // without --max-memory the budget is the memory available
    if std::fs::read_to_string("/proc/meminfo").is_ok_and(|m| m.contains("MemAvailable:")) {
        fixes_refused(&["--layers", "1000000,1000000,2"], &["--layers 1000000,1000000,2 needs", "MemAvailable"]);
    }
    // a small budget refuses what the default allows; the same run within it works
    fixes_refused(&["--layers", "1000,1000,2", "--max-memory", "1M"], &["--layers 1000,1000,2 needs"]);
    fixes_ok(&["--max-memory", "64M"]);
    fixes_refused(&["--max-memory", "lots"], &["--max-memory", "'lots' is not a size"]);
}

#[test]
fn sizes_whose_bytes_overflow_are_refused() {
    for layers in common::OVERFLOWING_LAYERS {
        fixes_refused(&["--layers", layers, "--optimizer", "adamw"], &[common::OVERFLOWS]);
    }
    for args in [
        &["--batch", "9223372036854775807", "--micro-batches", "1"][..],
        &["--steps", "18446744073709551615"],
        &["--steps", "4611686018427387904", "--batch", "4", "--micro-batches", "3"],
    ] {
        fixes_refused(args, &[common::OVERFLOWS]);
    }
}

#[test]
fn floats_must_be_finite_in_float32() {
    for args in [
        &["--lr", "1e39"][..],
        &["--lr=-inf"],
        &["--lr", "nan"],
        &["--momentum", "3.5e38"],
        &["--weight-decay", "1e39"],
        &["--optimizer", "adamw", "--weight-decay", "inf"],
        &["--optimizer", "adam", "--eps", "1e39"],
        &["--optimizer", "adam", "--eps", "-1e-8"],
    ] {
        let name = args.iter().rfind(|a| a.starts_with("--")).unwrap();
        let name = name.split('=').next().unwrap();
        fixes_refused(args, &[name, "finite in float32"]);
    }
    for betas in ["nan,0.999", "0.9,inf", "0.9,1"] {
        fixes_refused(&["--optimizer", "adam", "--betas", betas], &["--betas"]);
    }
    // the largest float32 is accepted
    fixes_ok(&["--weight-decay", "3.4e38", "--steps", "1", "--json"]);
}

/// `--eps 0` divides 0 by 0 where a gradient is 0 (a dead ReLU), and a learning rate near
/// float32's largest overflows: the JSON stays JSON (`null`, never NaN or Infinity) and a
/// note on stderr says so.
#[test]
fn json_never_holds_nan_or_infinity() {
    for args in [&["--optimizer", "adam", "--eps", "0", "--json"][..], &["--lr", "3e38", "--json"]] {
        let (stdout, stderr) = fixes_ok(args);
        let text = String::from_utf8(stdout).unwrap();
        assert!(!text.contains("NaN") && !text.contains("Infinity"), "{args:?}: {text}");
        let json: Value = serde_json::from_str(&text).unwrap();
        let params = json["runs"][0]["params"].as_array().unwrap();
        assert!(params.iter().any(Value::is_null), "{args:?}: {params:?}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("NaN or infinite") && stderr.contains("written as null"), "{stderr}");
    }
    // the text report names NaN and never calls a NaN run equal
    let (stdout, stderr) = fixes_ok(&["--optimizer", "adam", "--eps", "0"]);
    let text = String::from_utf8(stdout).unwrap();
    assert!(text.contains("NO (NaN)") && !text.contains("| yes"), "{text}");
    assert!(stderr.contains("NaN or infinite") && !stderr.contains("null"), "{stderr}");
    // a finite run has no note
    assert!(fixes_ok(&["--json"]).1.is_empty());
}

/// `--plot` through a symbolic link replaces the link's target and keeps the link; over a
/// read-only file it keeps the mode; a killed write's leftover is removed.
#[cfg(unix)]
#[test]
fn plots_keep_symlinks_and_permissions_and_leave_no_temporary_file() {
    common::assert_writes_keep_links_and_modes(&["fixes", "--steps", "1"], "--plot", "svg", b"<svg");
}

/// Bad plot paths are refused before any work (nothing on stdout, no file); an earlier
/// plot survives.
#[test]
fn plot_paths_are_checked_before_any_work() {
    let dir = TempDir::new("fixes-plot-bad");
    let missing = dir.join("missing/dir/x.svg");
    fixes_refused(&["--plot", &missing], &["--plot", "missing/dir"]);
    let folder = dir.join("folder.svg");
    std::fs::create_dir(&folder).unwrap();
    fixes_refused(&["--plot", &folder], &["--plot", "it is a folder"]);
    fixes_refused(&["--plot", &format!("{}/", dir.join("new.svg"))], &["--plot", "it is a folder"]);
    fixes_refused(&["--plot", "/dev/null"], &["--plot", "ending in .svg"]);
    fixes_refused(&["--plot", ""], &["--plot"]);
    // the plot is SVG: any other name is refused, whatever the folder
    for name in ["x.png", "x", "svg", "x.svg.png", ".svg"] {
        fixes_refused(&["--plot", &dir.join(name)], &["--plot", "ending in .svg"]);
    }
    std::fs::remove_dir(&folder).unwrap();
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
    let earlier = dir.join("earlier.svg");
    std::fs::write(&earlier, b"earlier").unwrap();
    fixes_refused(&["--plot", &earlier, "--lr", "1e39"], &["--lr"]);
    fixes_refused(&["--plot", &earlier, "--layers", "100000,100000,2", "--max-memory", "1G"], &["--layers"]);
    assert_eq!(std::fs::read(&earlier).unwrap(), b"earlier");
    assert_eq!(dir.entries(), ["earlier.svg"]);
}

/// A plot write that fails part way (the file size limit with SIGXFSZ ignored: EFBIG)
/// leaves the earlier file whole and no temporary file; one killed part way leaves a
/// temporary file that the next write removes.
#[cfg(unix)]
#[test]
fn a_plot_write_failing_part_way_keeps_the_old_file() {
    let dir = TempDir::new("fixes-plot-partial");
    let svg = dir.join("fixes.svg");
    std::fs::write(&svg, "the old plot\n").unwrap();
    // `ulimit -f 1`: at most 512 or 1024 bytes per file; the plot is tens of kB
    let out = common::run_with_file_limit(&["fixes", "--plot", &svg], true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("tapegrad-demo: --plot") && stderr.contains("fixes.svg"), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&svg).unwrap(), "the old plot\n");
    assert_eq!(dir.entries(), ["fixes.svg"]);
    // killed part way (SIGXFSZ): the old file stays, and the next write removes the leftover
    let out = common::run_with_file_limit(&["fixes", "--plot", &svg], false);
    assert!(!out.status.success(), "killed by SIGXFSZ");
    assert_eq!(std::fs::read_to_string(&svg).unwrap(), "the old plot\n");
    assert_eq!(dir.entries(), [".fixes.svg.tapegrad-tmp", "fixes.svg"], "the killed write's leftover");
    fixes_ok(&["--steps", "1", "--plot", &svg]);
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
    assert_eq!(dir.entries(), ["fixes.svg"], "the next write removes the leftover");
}

#[cfg(unix)]
#[test]
fn unwritable_stdout_does_not_panic() {
    for args in [&["fixes"][..], &["fixes", "--json"], &["fixes", "--optimizer", "adam"], &["fixes", "--help"]] {
        common::assert_full_stdout_fails(args);
    }
    // more output than a pipe holds (3.6 MB of JSON)
    common::assert_closed_pipe_is_quiet(&["fixes", "--json", "--layers", "4,4000,2"]);
}

#[test]
fn seeds_beyond_32_bits_get_a_note() {
    let (high, stderr) = fixes_ok(&["--data-seed", "4294967297", "--model-seed", "18446744073709551615", "--json"]);
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    assert!(stderr.contains("--data-seed 4294967297 is 2^32 or more") && stderr.contains("seed 1\n"), "{stderr}");
    assert!(stderr.contains("--model-seed 18446744073709551615") && stderr.contains("seed 4294967295"), "{stderr}");
    let (low, quiet) = fixes_ok(&["--data-seed", "1", "--model-seed", "4294967295", "--json"]);
    assert!(quiet.is_empty(), "{quiet}");
    let (high, low): (Value, Value) = (serde_json::from_slice(&high).unwrap(), serde_json::from_slice(&low).unwrap());
    assert_eq!(high["initial_params"], low["initial_params"]);
    assert_eq!(high["runs"], low["runs"]);
    let help = String::from_utf8(fixes_ok(&["--help"]).0).unwrap();
    assert!(help.contains("low 32 bits") && help.contains("--max-memory"), "{help}");
}

/// The main `--help` lists the `fixes` subcommand with its one-line description.
#[test]
fn main_help_mentions_the_fixes_subcommand() {
    let (out, _) = demo(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let line = help.lines().find(|l| l.trim_start().starts_with("fixes ")).unwrap_or_else(|| panic!("{help}"));
    assert!(line.contains("accumulation"), "{line}");
    assert!(help.contains("tapegrad-demo fixes --help"), "{help}");
}

/// Odd values of the subcommand's options: one line and status 2 each.
#[test]
fn odd_arguments_get_one_line_and_status_2() {
    let cases: &[&[&str]] = &[
        &["--lr", ""],
        &["--lr", "0x10"],
        &["--lr", "1,5"],
        &["--lr", "∞"],
        &["--betas", "", "--optimizer", "adam"],
        &["--betas", "0.9,0.99,0.9", "--optimizer", "adam"],
        &["--steps", ""],
        &["--steps", "1e9"],
        &["--micro-batches", "99999999999999999999999"],
        &["--data-seed", "1.5"],
        &["--model-seed", "-1"],
        &["--optimizer", "ADAM"],
        &["--loss", ""],
        &["--layers", "４,2"],
        &["--max-memory", "-1"],
        &["positional"],
        &["--lr", "0.1", "--lr", "0.2"],
        &["--plot", "a.svg", "--plot", "b.svg"],
        &["--json", "--json"],
        &["--steps", "2", "--steps", "3"],
        &["fixes"],
    ];
    for args in cases {
        fixes_refused(args, &[]);
    }
}
