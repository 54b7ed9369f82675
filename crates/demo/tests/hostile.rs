//! The binary against hostile input (issue 17's table, one test per row, and more): every
//! bad argument or file ends within a second or two with one line on stderr and exit status
//! 2, without a panic, an abort, a hang, a partial output or a temporary file left behind;
//! an earlier output file survives every failed write.

use std::path::Path;
use std::process::Command;

mod common;
use common::{demo, refused, TempDir};

/// PyTorch's `save_file(model.state_dict())` of the forum post's 4-8-2 model.
fn pytorch_fixture() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../nn/tests/fixtures/seed_model.safetensors")).unwrap()
}

/// Row 1: sizes whose tensors cannot fit are refused before any allocation, naming the
/// argument, the bytes needed and the budget.
#[test]
fn sizes_that_cannot_fit_are_refused_at_once() {
    for (args, arg) in [
        (&["--layers", "1000000000,2"][..], "--layers 1000000000,2"),
        (&["--layers", "100000,100000,2"], "--layers 100000,100000,2"),
        (&["--batch", "1000000000"], "--batch 1000000000"),
        (&["--batch", "1000000000", "--micro-batches", "1000000000"], "--batch 1000000000"),
        (&["--layers", "4,10000000,2", "--json"], "--layers 4,10000000,2"),
    ] {
        let args = [args, &["--max-memory", "8GiB"]].concat();
        refused(&args, &[arg, "needs", "bytes", "--max-memory budget of 8.6 GB (8589934592 bytes)"]);
    }
    // without --max-memory the budget is the memory available (where /proc/meminfo says)
    if std::fs::read_to_string("/proc/meminfo").is_ok_and(|m| m.contains("MemAvailable:")) {
        refused(&["--batch", "100000000000000"], &["--batch 100000000000000 needs", "MemAvailable"]);
    }
    // a small budget refuses what the default budget allows; the same run within it works
    refused(&["--layers", "1000,1000,2", "--max-memory", "1M"], &["--layers 1000,1000,2 needs"]);
    let (out, _) = demo(&["--max-memory", "64M"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    refused(&["--max-memory", "lots"], &["--max-memory", "'lots' is not a size"]);
    refused(&["--max-memory", "99999999999999999999"], &["--max-memory"]);
}

/// Row 2: sizes whose byte count overflows 64 bits.
#[test]
fn sizes_whose_bytes_overflow_are_refused() {
    for layers in common::OVERFLOWING_LAYERS {
        refused(&["--layers", layers], &[common::OVERFLOWS]);
    }
    for args in [&["--batch", "9223372036854775807"][..], &["--batch", "18446744073709551615", "--micro-batches", "3"]]
    {
        refused(args, &[common::OVERFLOWS]);
    }
    refused(&["--batch", "18446744073709551616"], &["--batch"]);
}

/// Row 3: `--load` of a FIFO with no writer neither hangs nor reads.
#[cfg(unix)]
#[test]
fn loading_a_fifo_does_not_hang() {
    let dir = TempDir::new("fifo");
    let fifo = dir.join("pipe");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    refused(&["--load", &fifo], &["--load", "pipe", "not a regular file but a FIFO"]);
}

/// Row 4: devices and a 6 GB file with a tiny valid header are refused without reading
/// their data.
#[test]
fn loading_devices_and_huge_files_is_refused_without_reading() {
    for dev in ["/dev/zero", "/dev/urandom"] {
        if Path::new(dev).exists() {
            refused(&["--load", dev], &[dev, "not a regular file but a character device"]);
        }
    }
    let dir = TempDir::new("huge");
    let huge = dir.join("huge.safetensors");
    std::fs::write(&huge, pytorch_fixture()).unwrap();
    std::fs::OpenOptions::new().write(true).open(&huge).unwrap().set_len(6 << 30).unwrap(); // sparse
    refused(&["--load", &huge], &["huge.safetensors", "bytes after the end of the last tensor"]);
    refused(&["--load", dir.0.to_str().unwrap()], &["it is a folder"]);
    refused(&["--load", &dir.join("missing")], &["--load", "No such file"]);
}

/// Row 5: a learning rate that is finite in f64 but not in f32 is refused; a finite one
/// whose step overflows float32 gives valid JSON with `null` and a note saying so.
#[test]
fn learning_rates_must_be_finite_in_float32_and_json_stays_json() {
    for args in [&["--lr-sum", "1e39"][..], &["--lr-mean", "3.5e38"], &["--lr-sum", "-1e39"], &["--lr-mean=-inf"]] {
        refused(args, &[&args[0][..8], "finite in float32"]);
    }
    let (out, _) = demo(&["--lr-sum", "3e38", "--batch", "64", "--json"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("Infinity") && !text.contains("NaN"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let params = &json["experiments"][0]["batched"]["params"];
    assert!(params.as_array().unwrap().iter().any(|v| v.is_null()), "{params}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NaN or infinite") && stderr.contains("written as null"), "{stderr}");
    // the text report does not claim a difference of 0 between NaN values
    let (out, _) = demo(&["--lr-sum", "3e38", "--batch", "64"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let sum = text.split("[2]").next().unwrap();
    assert!(!sum.contains("parameters  equal: yes  largest difference 0\n"), "{sum}");
}

/// Row 6: `--load` of weights that are NaN or infinite is refused, naming the tensor.
#[test]
fn non_finite_weights_are_refused_naming_the_tensor() {
    let dir = TempDir::new("nan");
    for (i, bad) in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY].into_iter().enumerate() {
        let mut bytes = pytorch_fixture();
        let n = bytes.len();
        bytes[n - 4..].copy_from_slice(&bad.to_le_bytes());
        let path = dir.join(&format!("bad{i}.safetensors"));
        std::fs::write(&path, &bytes).unwrap();
        refused(&["--load", &path], &["--load", &path, "tensor `", "holds 1 non-finite value"]);
    }
}

/// Rows 7 and 9: a write that fails part way (the file size limit, with SIGXFSZ ignored so
/// the write fails with EFBIG) leaves the earlier file whole and no temporary file; a write
/// killed part way (SIGXFSZ's default action) leaves a temporary file that the next write
/// of the same file removes.
#[cfg(unix)]
#[test]
fn failed_and_killed_writes_keep_the_old_file() {
    let dir = TempDir::new("partial");
    let dot = dir.join("step.dot");
    std::fs::write(&dot, "the old graph\n").unwrap();
    // `ulimit -f 1`: at most 512 or 1024 bytes per file; the DOT graph is several kB
    let limited = |ignore_xfsz| common::run_with_file_limit(&["--dot", &dot], ignore_xfsz);
    let out = limited(true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--dot") && stderr.contains("step.dot"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&dot).unwrap(), "the old graph\n");
    assert_eq!(dir.entries(), ["step.dot"]);

    let out = limited(false);
    assert!(!out.status.success(), "killed by SIGXFSZ");
    assert_eq!(std::fs::read_to_string(&dot).unwrap(), "the old graph\n");
    assert_eq!(dir.entries(), [".step.dot.tapegrad-tmp", "step.dot"], "the killed write's leftover");
    let (out, _) = demo(&["--dot", &dot]);
    assert!(out.status.success());
    assert!(std::fs::read_to_string(&dot).unwrap().starts_with("digraph tape {"));
    assert_eq!(dir.entries(), ["step.dot"], "the next write removes the leftover");
}

/// Row 8: `--save` through a symbolic link replaces the link's target and keeps the link;
/// over a read-only file it keeps the file's mode.
#[cfg(unix)]
#[test]
fn saves_keep_symlinks_and_permissions() {
    common::assert_writes_keep_links_and_modes(&[], "--save", "safetensors", b"");
}

/// Row 10: a run either writes every output or none: bad output paths are refused before
/// any work.
#[test]
fn outputs_are_checked_before_any_work() {
    let dir = TempDir::new("all-or-nothing");
    let save = dir.join("after-sum.safetensors");
    let missing = dir.join("missing/dir/x.dot");
    refused(&["--save", &save, "--dot", &missing], &["--dot", "missing/dir"]);
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
    std::fs::write(&save, b"earlier").unwrap();
    refused(&["--save", &save, "--dot", &missing], &["--dot"]);
    refused(&["--save", &save, "--dot", dir.0.to_str().unwrap()], &["--dot", "it is a folder"]);
    refused(&["--save", &save, "--dot", &save], &["name the same file"]);
    refused(&["--dot", &format!("{}/", dir.join("new"))], &["--dot", "it is a folder"]);
    refused(&["--save", "/dev/null"], &["--save", "not a regular file"]);
    assert_eq!(std::fs::read(&save).unwrap(), b"earlier");
    assert_eq!(dir.entries(), ["after-sum.safetensors"]);
}

/// Row 11: a stdout that cannot be written: `/dev/full` is one line and status 2; a
/// closed pipe ends quietly with status 0.
#[cfg(unix)]
#[test]
fn unwritable_stdout_does_not_panic() {
    for args in [&[][..], &["--json"], &["--help"], &["--version"]] {
        common::assert_full_stdout_fails(args);
    }
    // more output than a pipe holds, so the write must meet the closed end
    common::assert_closed_pipe_is_quiet(&["--json", "--layers", "4,4000,2"]);
}

/// Row 12: seeds of 2^32 and above get a note (their low 32 bits are the seed), and
/// `--help` says so.
#[test]
fn seeds_beyond_32_bits_get_a_note() {
    let (out, _) = demo(&["--data-seed", "4294967297", "--model-seed", "18446744073709551615", "--json"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    assert!(stderr.contains("--data-seed 4294967297 is 2^32 or more") && stderr.contains("seed 1\n"), "{stderr}");
    assert!(stderr.contains("--model-seed 18446744073709551615") && stderr.contains("seed 4294967295"), "{stderr}");
    let low: serde_json::Value =
        serde_json::from_slice(&demo(&["--data-seed", "1", "--model-seed", "4294967295", "--json"]).0.stdout).unwrap();
    let high: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(high["input"], low["input"]);
    assert_eq!(high["initial_params"], low["initial_params"]);
    let (quiet, _) = demo(&["--data-seed", "4294967295"]);
    assert!(quiet.stderr.is_empty());
    let help = String::from_utf8(demo(&["--help"]).0.stdout).unwrap();
    assert!(help.contains("low 32 bits"), "{help}");
}

/// Odd values of every kind: empty, negative, huge, fractional, unicode, repeated or
/// missing; each gets one line and status 2.
#[test]
fn odd_arguments_get_one_line_and_status_2() {
    let dir = TempDir::new("odd");
    let cases: &[&[&str]] = &[
        &["--layers", ""],
        &["--layers", ",,"],
        &["--layers", "4,,2"],
        &["--layers", "-4,2"],
        &["--layers", "4.5,2"],
        &["--layers", "４,2"],
        &["--layers", "4,8,2,"],
        &["--layers"],
        &["--batch", ""],
        &["--batch", "-1"],
        &["--batch", "1e9"],
        &["--batch", "2", "--batch", "3"],
        &["--micro-batches", "-2"],
        &["--micro-batches", "99999999999999999999999"],
        &["--lr-sum", ""],
        &["--lr-sum", "0x10"],
        &["--lr-mean", "1,5"],
        &["--lr-mean", "∞"],
        &["--data-seed", "1.5"],
        &["--model-seed", "-0"],
        &["--json", "--json"],
        &["--load", ""],
        &["--save", ""],
        &["--dot", "/"],
        &["--max-memory", ""],
        &["--max-memory", "-1"],
        &["positional"],
        &["--layers", "é,ü"],
        // the forum experiment's options and a subcommand do not mix
        &["--batch", "3", "fixes"],
        &["--json", "fixes"],
        &["help"],
    ];
    for args in cases {
        refused(args, &[]);
    }
    let unicode = dir.join("ünïcødé.safetensors");
    refused(&["--load", &unicode], &["ünïcødé"]);
    assert!(dir.entries().is_empty());
}
