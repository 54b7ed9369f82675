//! The protocol, end to end: a scripted exchange of messages with the binary (stdin in,
//! stdout out), including malformed messages and a line of tens of megabytes.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

/// Sends `lines` to the binary and returns its answers, one JSON value per line.
fn exchange(lines: &[String]) -> Vec<Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tapegrad-gradbench"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = lines.join("\n") + "\n";
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "exit status {:?}", out.status);
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn a_session_of_every_kind_of_message() {
    let lines: Vec<String> = [
        json!({"id": 0, "kind": "start", "eval": "hello"}),
        json!({"id": 1, "kind": "define", "module": "hello"}),
        json!({"id": 2, "kind": "evaluate", "module": "hello", "function": "square", "input": 3.0}),
        json!({"id": 3, "kind": "analysis", "of": 2, "valid": true}),
        json!({"id": 4, "kind": "evaluate", "module": "hello", "function": "double", "input": 3.0}),
        json!({"id": 5, "kind": "define", "module": "no-such-eval"}),
        json!({"id": 6, "kind": "evaluate", "module": "lse", "function": "gradient",
               "input": {"x": [0.0, 0.0], "min_runs": 4, "min_seconds": 0.0}}),
        json!({"id": 7, "kind": "something-new"}),
    ]
    .iter()
    .map(|v| v.to_string())
    .collect();
    let answers = exchange(&lines);
    assert_eq!(answers.len(), 8);
    assert_eq!(answers[0], json!({"id": 0, "tool": "tapegrad"}));
    assert_eq!(answers[1], json!({"id": 1, "success": true}));
    assert_eq!(answers[2]["output"], json!(9.0));
    assert_eq!(answers[2]["success"], json!(true));
    assert_eq!(answers[2]["timings"][0]["name"], json!("evaluate"));
    assert!(answers[2]["timings"][0]["nanoseconds"].is_u64());
    assert_eq!(answers[3], json!({"id": 3}));
    assert_eq!(answers[4]["output"], json!(6.0));
    assert_eq!(answers[5]["success"], json!(false));
    assert!(answers[5]["error"].as_str().unwrap().contains("no-such-eval"));
    assert_eq!(answers[6]["output"], json!([0.5, 0.5]));
    assert_eq!(answers[6]["timings"].as_array().unwrap().len(), 4, "one timing per run, min_runs = 4");
    assert_eq!(answers[7], json!({"id": 7}));
}

#[test]
fn bad_messages_get_error_answers_and_the_session_goes_on() {
    let lines = vec![
        "this is not json".to_string(),
        json!({"id": 1, "kind": "evaluate", "module": "lse", "function": "gradient", "input": {"y": [1.0]}}).to_string(),
        json!({"id": 2, "kind": "evaluate", "module": "lse", "function": "hessian", "input": {"x": [1.0]}}).to_string(),
        json!({"id": 3, "kind": "evaluate", "module": "gmm", "function": "objective", "input": {"d": 2, "k": 1, "n": 1, "x": [[1.0]]}}).to_string(),
        json!({"id": 4, "kind": "evaluate", "module": "det", "function": "primal", "input": {"A": [1.0, 2.0], "ell": 2}}).to_string(),
        json!({"id": 5, "kind": "evaluate", "module": "lse", "function": "primal", "input": {"x": [1.0], "min_runs": 0}}).to_string(),
        json!({"id": 6, "kind": "evaluate", "module": "ht", "function": "objective", "input": {"theta": []}}).to_string(),
        json!({"id": 7, "kind": "evaluate", "module": "hello", "function": "square", "input": 2.0}).to_string(),
    ];
    let answers = exchange(&lines);
    assert_eq!(answers.len(), lines.len());
    assert_eq!(answers[0]["id"], Value::Null);
    for a in &answers[..7] {
        assert_eq!(a["success"], json!(false), "{a}");
        assert!(!a["error"].as_str().unwrap().is_empty(), "{a}");
    }
    assert!(answers[1]["error"].as_str().unwrap().contains("\"x\""), "{}", answers[1]);
    assert!(answers[2]["error"].as_str().unwrap().contains("hessian"), "{}", answers[2]);
    assert_eq!(answers[7]["output"], json!(4.0), "the session goes on");
}

#[test]
fn a_line_of_tens_of_megabytes_is_read_whole() {
    let n = 1_500_000;
    let x: Vec<f64> = (0..n).map(|i| (i % 1000) as f64 * 1e-3 + 0.123456789012345).collect();
    let line =
        json!({"id": 9, "kind": "evaluate", "module": "lse", "function": "gradient", "input": {"x": x}}).to_string();
    assert!(line.len() > 20_000_000, "{} bytes", line.len());
    let answers = exchange(&[line]);
    let g = answers[0]["output"].as_array().unwrap();
    assert_eq!(g.len(), n);
    let total: f64 = g.iter().map(|v| v.as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-9, "softmax sums to {total}");
}
