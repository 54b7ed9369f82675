//! `tapegrad-demo tokens` against PyTorch (`fixtures/make_tokens_reference.py`, commands in
//! `fixtures/README.md`): the data (lengths and token counts) exactly, initial parameters
//! bit for bit (the embedding's `normal_` on both of torch's paths), every run's final
//! parameters and per-micro-batch losses within 1e-5 of the vector's largest magnitude
//! (NaN where PyTorch writes null), for SGD (momentum, weight decay), Adam and AdamW, even
//! and uneven splits, k = 1 and k = B, and micro-batches of padding only; the JSON layout.

use serde_json::Value;
use tapegrad_demo::fixes::{OptimizerKind, OptimizerSpec};
use tapegrad_demo::tokens::{run_tokens, TokensConfig, RUNS};
use tapegrad_demo::tokens_json::render_tokens_json;

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
    let f = |k: &str| r[k].as_f64().unwrap();
    let u = |k: &str| r[k].as_u64().unwrap();
    let kind = match r["optimizer"].as_str().unwrap() {
        "sgd" => OptimizerKind::Sgd,
        "adam" => OptimizerKind::Adam,
        _ => OptimizerKind::AdamW,
    };
    let mut spec = OptimizerSpec { lr: f("lr"), weight_decay: f("weight_decay"), ..OptimizerSpec::defaults(kind) };
    if kind == OptimizerKind::Sgd {
        spec.momentum = f("momentum");
    } else {
        spec.betas = (r["betas"][0].as_f64().unwrap(), r["betas"][1].as_f64().unwrap());
        spec.eps = f("eps");
    }
    TokensConfig {
        optimizer: spec,
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
