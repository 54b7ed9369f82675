//! `tapegrad-demo tokens` against PyTorch (`fixtures/make_tokens_reference.py`, commands in
//! `fixtures/README.md`): the data (lengths and token counts) exactly, initial parameters
//! bit for bit (the embedding's `normal_` on both of torch's paths), every run's final
//! parameters and per-micro-batch losses within 1e-5 of the vector's largest magnitude
//! (NaN where PyTorch writes null), for SGD (momentum, weight decay), Adam and AdamW, even
//! and uneven splits, k = 1 and k = B, and micro-batches of padding only; the JSON layout.

use serde_json::Value;
use tapegrad_demo::tokens::json::render_tokens_json;
use tapegrad_demo::tokens::{run_table, run_tokens, TokensConfig, RUNS};

mod common;
use common::{demo, optimizer_of, refused, TempDir};

const FIXTURES: [(&str, &str); 6] = [
    ("tokens-adam", include_str!("fixtures/tokens-adam.json")),
    ("tokens-sgd-uneven", include_str!("fixtures/tokens-sgd-uneven.json")),
    ("tokens-adamw-min0", include_str!("fixtures/tokens-adamw-min0.json")),
    ("tokens-sgd-wd-k5", include_str!("fixtures/tokens-sgd-wd-k5.json")),
    ("tokens-adam-small", include_str!("fixtures/tokens-adam-small.json")),
    ("tokens-sgd-wide", include_str!("fixtures/tokens-sgd-wide.json")),
];

/// Numbers of a (nested) JSON list as f32, `null` as NaN.
fn f32s(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(a) => a.iter().flat_map(f32s).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap() as f32],
        Value::Null => vec![f32::NAN],
        _ => panic!("not a number list: {v}"),
    }
}

/// Each of `got` within 1e-5 of `want`'s largest magnitude; NaN exactly where `want` is.
#[track_caller]
fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().filter(|v| !v.is_nan()).fold(0.0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_nan() { g.is_nan() } else { (g - w).abs() <= 1e-5 * scale };
        assert!(ok, "{what}[{i}]: tapegrad {g}, PyTorch {w} (scale {scale})");
    }
}

fn config_of(r: &Value) -> TokensConfig {
    let u = |k: &str| r[k].as_u64().unwrap();
    TokensConfig {
        optimizer: optimizer_of(r),
        vocab: u("vocab") as usize,
        embed: u("embed") as usize,
        hidden: u("hidden") as usize,
        batch: u("batch") as usize,
        micro_batches: u("micro_batches") as usize,
        max_len: u("max_len") as usize,
        min_len: u("min_len") as usize,
        steps: u("steps") as usize,
        data_seed: u("data_seed"),
        model_seed: u("model_seed"),
    }
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

/// Our JSON `ours` against the reference file's.
fn check_against(name: &str, reference: &Value, ours: &Value) {
    assert_eq!(keys(ours), keys(reference), "{name}: keys and their order");
    for (key, v) in reference.as_object().unwrap() {
        if !["initial_params", "runs"].contains(&key.as_str()) {
            assert_eq!(&ours[key], v, "{name}: {key}");
        }
    }
    let bits = |v: &Value| f32s(v).iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&ours["initial_params"]), bits(&reference["initial_params"]), "{name}: initial_params bit for bit");
    let (rr, or) = (reference["runs"].as_array().unwrap(), ours["runs"].as_array().unwrap());
    assert_eq!(or.len(), RUNS.len());
    assert_eq!(rr.len(), RUNS.len());
    for (r, o) in rr.iter().zip(or) {
        let run = r["name"].as_str().unwrap();
        assert_eq!(keys(o), keys(r), "{name} {run}: keys");
        assert_eq!(o["name"], r["name"]);
        assert_eq!(o["lr"].as_f64(), r["lr"].as_f64(), "{name} {run}: lr");
        assert_close(&format!("{name} {run} params"), &f32s(&o["params"]), &f32s(&r["params"]));
        assert_close(&format!("{name} {run} losses"), &f32s(&o["losses"]), &f32s(&r["losses"]));
        assert_eq!(o["losses"].as_array().unwrap().len(), r["losses"].as_array().unwrap().len());
        assert_eq!(o["losses"][0].is_array(), r["losses"][0].is_array(), "{name} {run}: losses nesting");
        let (od, rd) = (o["max_rel_diff"].as_f64().unwrap(), r["max_rel_diff"].as_f64().unwrap());
        assert!((od - rd).abs() <= 2e-5, "{name} {run}: max_rel_diff {od} vs PyTorch {rd}");
        if rd > 1e-4 {
            assert_eq!(o["equal"], false, "{name} {run}: equal");
        }
    }
}

#[test]
fn library_matches_every_reference_file() {
    let mut nulls = 0;
    for (name, text) in FIXTURES {
        let reference: Value = serde_json::from_str(text).unwrap();
        let report = run_tokens(&config_of(&reference));
        nulls += report.nan_losses();
        let ours: Value = serde_json::from_str(&render_tokens_json(&report)).unwrap();
        check_against(name, &reference, &ours);
        // tokens/total is the batched run up to rounding, in every file
        assert!(report.run("tokens/total").max_rel_diff < 1e-5, "{name}");
    }
    assert!(nulls > 0, "a fixture has micro-batches of padding only");
}

/// The command-line arguments that reproduce a reference file.
fn args_of(r: &Value) -> Vec<String> {
    let mut a: Vec<String> = vec!["tokens".into(), "--json".into()];
    let mut opt = |k: &str, v: String| {
        a.push(k.into());
        a.push(v);
    };
    opt("--optimizer", r["optimizer"].as_str().unwrap().into());
    opt("--lr", r["lr"].to_string());
    if r["optimizer"] == "sgd" {
        opt("--momentum", r["momentum"].to_string());
    } else {
        opt("--betas", format!("{},{}", r["betas"][0], r["betas"][1]));
        opt("--eps", r["eps"].to_string());
    }
    opt("--weight-decay", r["weight_decay"].to_string());
    for key in
        ["vocab", "embed", "hidden", "batch", "micro_batches", "max_len", "min_len", "steps", "data_seed", "model_seed"]
    {
        opt(&format!("--{}", key.replace('_', "-")), r[key].to_string());
    }
    a
}

#[test]
fn binary_json_matches_the_reference_files() {
    for (name, text) in FIXTURES {
        let reference: Value = serde_json::from_str(text).unwrap();
        let args = args_of(&reference);
        let (out, _) = demo(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {err}");
        // micro-batches of padding only are announced on stderr, stdout stays JSON
        let nulls = reference["runs"].as_array().unwrap().iter().any(|r| f32s(&r["losses"]).iter().any(|x| x.is_nan()));
        assert_eq!(err.contains("NaN (null in the JSON)"), nulls, "{name}: {err}");
        let ours: Value = serde_json::from_slice(&out.stdout).unwrap();
        check_against(name, &reference, &ours);
    }
}

/// Without options: the table of the five optimizers of `fixes` by the five fixes, where
/// only the token count of the batch is exact; the same verdicts as the library's runs.
#[test]
fn the_table_shows_only_tokens_total_is_exact() {
    let (out, _) = demo(&["tokens"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| optimizer") && !l.starts_with("| ---"))
        .collect();
    assert_eq!(rows.len(), 5, "{text}");
    for (row, report) in rows.iter().zip(run_table(&TokensConfig::default())) {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(cells.len(), 6, "{row}");
        assert!(cells[5].starts_with("yes"), "{row}");
        for (cell, name) in cells[1..5].iter().zip(&RUNS[1..5]) {
            assert!(cell.starts_with("NO ("), "{row}: {name}");
            assert!(!report.run(name).equal);
        }
    }
    assert!(text.contains("Why (k = 2)") && text.contains("[8, 4]"), "{text}");
}

#[test]
fn padding_only_micro_batches_print_nan_and_training_goes_on() {
    let args = ["tokens", "--optimizer", "adamw", "--min-len", "0", "--max-len", "3", "--batch", "6"];
    let (out, _) = demo(&[&args[..], &["--micro-batches", "3", "--data-seed", "3", "--model-seed", "4"]].concat());
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("micro-batch losses are NaN: those micro-batches hold padding only"), "{err}");
    assert!(err.contains("their gradients are 0 and training goes on"), "{err}");
    let row = text.lines().find(|l| l.starts_with("| tokens/total")).unwrap();
    assert!(row.trim_end_matches(" |").rsplit(" | ").next().unwrap().starts_with("yes"), "{row}");
    assert!(text.lines().filter(|l| l.starts_with("| ")).all(|l| !l.contains("inf")), "{text}");
}

#[test]
fn plot_is_an_svg_of_every_fix() {
    let dir = TempDir::new("tokens-plot");
    let path = dir.join("tokens.svg");
    let (out, _) = demo(&["tokens", "--optimizer", "sgd", "--plot", &path]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8(out.stdout).unwrap().ends_with(&format!("plot written to {path}\n")));
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for name in &RUNS[1..] {
        assert!(svg.contains(name), "{name}");
    }
    assert_eq!(dir.entries(), vec!["tokens.svg".to_string()]);
}

#[test]
fn bad_arguments_get_one_line_and_status_2() {
    for (args, needle) in [
        (&["--vocab", "1"][..], "--vocab must be at least 2"),
        (&["--vocab", "0"], "--vocab"),
        (&["--embed", "0"], "--embed"),
        (&["--hidden", "0"], "--hidden"),
        (&["--max-len", "0"], "--max-len"),
        (&["--batch", "0"], "--batch"),
        (&["--micro-batches", "0"], "--micro-batches"),
        (&["--micro-batches", "5"], "--micro-batches"),
        (&["--steps", "0"], "--steps"),
        (&["--min-len", "7"], "--min-len"),
        (&["--optimizer", "rmsprop"], "sgd, adam or adamw"),
        (&["--lr", "-1"], "--lr"),
        (&["--vocab", "-3"], "--vocab"),
        (&["--vocab", "100000000000", "--embed", "100000000"], "overflows 64 bits"),
        (&["--vocab", "3000000", "--embed", "1000"], "--vocab 3000000 --embed 1000 --hidden 8 needs"),
        (&["--batch", "4000000000", "--max-len", "1000", "--micro-batches", "1"], "--batch 4000000000 --max-len 1000"),
        (&["--steps", "18446744073709551615"], "--steps 18446744073709551615 is too large"),
        (&["--plot", "x.png"], "--plot"),
        (
            &["--min-len", "0", "--max-len", "1", "--batch", "1", "--micro-batches", "1", "--steps", "20"],
            "no loss token",
        ),
        (&["--frobnicate"], "--frobnicate"),
    ] {
        refused(&[&["tokens"][..], args].concat(), &[needle]);
    }
}

#[test]
fn json_layout_is_the_generators_line_for_line() {
    let text = FIXTURES[0].1;
    let reference: Value = serde_json::from_str(text).unwrap();
    let ours = render_tokens_json(&run_tokens(&config_of(&reference)));
    // every line but the numbers' digits: the same keys, breaks and nesting
    let shape = |s: &str| s.lines().map(|l| l.split(':').next().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(shape(&ours), shape(text));
    assert_eq!(
        TokensConfig::default(),
        config_of(&serde_json::json!({
            "optimizer": "sgd", "lr": 0.1, "momentum": 0.0, "weight_decay": 0.0, "vocab": 8, "embed": 4, "hidden": 8,
            "batch": 4, "micro_batches": 2, "max_len": 6, "min_len": 1, "steps": 5, "data_seed": 1, "model_seed": 2
        }))
    );
}

/// The README's `tokens` block is the binary's output, exactly.
#[test]
fn readme_block_is_the_output() {
    let readme = include_str!("../../../README.md");
    let section = readme.split("\n## Token losses (`tapegrad-demo tokens`)\n").nth(1).expect("the tokens section");
    let block = section.split("```text\n").nth(1).and_then(|b| b.split("```").next()).expect("a text block");
    let (out, _) = demo(&["tokens"]);
    assert_eq!(block, String::from_utf8(out.stdout).unwrap(), "README.md's tokens block differs from the output");
}
