//! Smoke test of `scripts/peers_table.py`, the summary table of `scripts/compare-peers.sh`,
//! on canned rows (no peer is built or run): the fastest of repeated rows counts, the best
//! peer and tapegrad's speed-up over it, the dense workloads' share of the FMA peak, the
//! Adam and digits-training rows, and a clear error on a malformed row.

use std::path::Path;
use std::process::Command;

fn table(args: &[&str]) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::new("python3")
        .arg(root.join("scripts/peers_table.py"))
        .args(args.iter().map(|a| root.join(a)))
        .output()
        .expect("python3 runs scripts/peers_table.py")
}

#[test]
fn canned_rows_give_the_expected_table() {
    let out = table(&["tests/fixtures/peers/rows.tsv"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let expected = include_str!("fixtures/peers/table.md");
    assert_eq!(text, expected);
    // The figures the table is for, spelled out: 77.5 MFLOP in 500 µs on a 250 GFLOP/s core
    // is 62%; pytorch's faster mlp-mnist row (775 of 800) is its best; dfdx beats pytorch on
    // two threads.
    assert!(text.contains("| mlp-mnist | 1 | 500 | 775 | – | – | pytorch | 1.55x | 62% | 40% |"));
    assert!(text.contains("| mlp-wide | 2 | 10,000 | 25,000 | 20,000 | – | dfdx | 2.00x | 86% | 43% |"));
    assert!(text.contains("| train-digits | 1 | 40.0 | 320 | 8.00x | 1,600,000 | 200,000 |"));
}

#[test]
fn a_malformed_row_is_an_error_naming_its_line() {
    let dir = std::env::temp_dir().join(format!("tapegrad-peers-table-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.tsv");
    std::fs::write(&bad, "engine\tworkload\tthreads\tstep_us\tfwd_us\tbwd_us\ntapegrad\tseed\t1\n").unwrap();
    let out = table(&[bad.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2: expected 6 tab-separated fields, got 3"), "{err}");
}
