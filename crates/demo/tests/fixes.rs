//! `tapegrad-demo fixes` against PyTorch (`fixtures/make_fixes_reference.py`, commands in
//! `fixtures/README.md`): initial parameters bit for bit; every run's final parameters and
//! per-step losses within 1e-5 of the vector's largest magnitude, for SGD (plain, momentum,
//! weight decay), Adam (with and without L2 decay), AdamW, L1 and MSE losses, even and
//! uneven splits, gradient clipping (grad norms too) and BatchNorm / LayerNorm (BatchNorm's
//! running statistics too); the JSON layout; the table's verdicts; the plot; bad arguments.

use std::process::{Command, Output};

use serde_json::Value;
use tapegrad_demo::args::describe_optimizer;
use tapegrad_demo::fixes::answer::run_answer;
use tapegrad_demo::fixes::json::render_fixes_json;
use tapegrad_demo::fixes::{run_fixes, run_table, FixesConfig, LossKind, RUNS};
use tapegrad_nn::Norm;

mod common;
use common::{assert_close, f32s, optimizer_of};

const FIXTURES: [(&str, &str); 17] = [
    ("fixes-adam", include_str!("fixtures/fixes-adam.json")),
    ("fixes-sgd-wd-uneven", include_str!("fixtures/fixes-sgd-wd-uneven.json")),
    ("fixes-sgd-momentum", include_str!("fixtures/fixes-sgd-momentum.json")),
    ("fixes-sgd-momentum-wd-mse", include_str!("fixtures/fixes-sgd-momentum-wd-mse.json")),
    ("fixes-sgd-mse-wide", include_str!("fixtures/fixes-sgd-mse-wide.json")),
    ("fixes-adamw-uneven", include_str!("fixtures/fixes-adamw-uneven.json")),
    ("fixes-adamw-wd", include_str!("fixtures/fixes-adamw-wd.json")),
    ("fixes-adam-wd-mse", include_str!("fixtures/fixes-adam-wd-mse.json")),
    ("fixes-adam-k1", include_str!("fixtures/fixes-adam-k1.json")),
    ("fixes-adam", include_str!("fixtures/fixes-adam.json")),
    ("fixes-clip-adam", include_str!("fixtures/fixes-clip-adam.json")),
    ("fixes-batchnorm", include_str!("fixtures/fixes-batchnorm.json")),
    ("fixes-sgd-momentum-clip", include_str!("fixtures/fixes-sgd-momentum-clip.json")),
    ("fixes-adamw-layer", include_str!("fixtures/fixes-adamw-layer.json")),
    ("fixes-adam-batch-uneven", include_str!("fixtures/fixes-adam-batch-uneven.json")),
    ("fixes-sgd-wd-batch-clip-mse", include_str!("fixtures/fixes-sgd-wd-batch-clip-mse.json")),
    ("fixes-adam-layer-clip", include_str!("fixtures/fixes-adam-layer-clip.json")),
];

fn demo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tapegrad-demo")).args(args).output().unwrap()
}

/// The command-line arguments that reproduce a reference file.
fn args_of(r: &Value) -> Vec<String> {
    let join = |v: &Value| v.as_array().unwrap().iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",");
    let mut a: Vec<String> = vec!["fixes".into(), "--json".into()];
    let mut opt = |k: &str, v: String| {
        a.push(k.into());
        a.push(v);
    };
    opt("--optimizer", r["optimizer"].as_str().unwrap().into());
    opt("--lr", r["lr"].to_string());
    if r["optimizer"] == "sgd" {
        opt("--momentum", r["momentum"].to_string());
    } else {
        opt("--betas", join(&r["betas"]));
        opt("--eps", r["eps"].to_string());
    }
    opt("--weight-decay", r["weight_decay"].to_string());
    opt("--loss", r["loss"].as_str().unwrap().into());
    opt("--layers", join(&r["layers"]));
    for key in ["batch", "micro_batches", "steps", "data_seed", "model_seed"] {
        opt(&format!("--{}", key.replace('_', "-")), r[key].to_string());
    }
    if let Some(c) = r.get("clip_grad_norm") {
        opt("--clip-grad-norm", c.to_string());
    }
    if let Some(n) = r.get("norm") {
        opt("--norm", n.as_str().unwrap().into());
    }
    a
}

fn config_of(r: &Value) -> FixesConfig {
    let u = |k: &str| r[k].as_u64().unwrap();
    FixesConfig {
        optimizer: optimizer_of(r),
        loss: if r["loss"] == "l1" { LossKind::L1 } else { LossKind::Mse },
        layers: r["layers"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect(),
        batch: u("batch") as usize,
        micro_batches: u("micro_batches") as usize,
        steps: u("steps") as usize,
        data_seed: u("data_seed"),
        model_seed: u("model_seed"),
        clip_grad_norm: r.get("clip_grad_norm").map(|c| c.as_f64().unwrap()),
        norm: r.get("norm").map_or(Norm::None, |n| Norm::from_name(n.as_str().unwrap()).unwrap()),
    }
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn check_against(name: &str, reference: &Value, ours: &Value) {
    assert_eq!(keys(ours), keys(reference), "{name}: keys and their order");
    for key in [
        "experiment",
        "optimizer",
        "lr",
        "momentum",
        "betas",
        "eps",
        "weight_decay",
        "clip_grad_norm",
        "loss",
        "norm",
        "data_seed",
        "model_seed",
        "layers",
        "batch",
        "micro_batches",
        "micro_batch_sizes",
        "steps",
    ] {
        assert_eq!(ours[key], reference[key], "{name}: {key}");
    }
    let bits = |v: &Value| f32s(v).iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&ours["initial_params"]), bits(&reference["initial_params"]), "{name}: initial_params bit for bit");
    let (rr, or) = (reference["runs"].as_array().unwrap(), ours["runs"].as_array().unwrap());
    assert_eq!(rr.len(), 5);
    assert_eq!(or.len(), 5);
    for (r, o) in rr.iter().zip(or) {
        let run = r["name"].as_str().unwrap();
        assert_eq!(keys(o), keys(r), "{name} {run}: keys");
        assert_eq!(o["name"], r["name"]);
        assert_eq!(o["lr"].as_f64(), r["lr"].as_f64(), "{name} {run}: lr");
        assert_close(&format!("{name} {run} params"), &f32s(&o["params"]), &f32s(&r["params"]));
        assert_close(&format!("{name} {run} losses"), &f32s(&o["losses"]), &f32s(&r["losses"]));
        for key in ["grad_norms", "buffers"] {
            // present in both or in neither (the keys are compared above)
            if let Some(want) = r.get(key) {
                assert_close(&format!("{name} {run} {key}"), &f32s(&o[key]), &f32s(want));
            }
        }
        // the nesting: one loss per step for batched, k per step otherwise
        assert_eq!(o["losses"].as_array().unwrap().len(), r["losses"].as_array().unwrap().len());
        assert_eq!(o["losses"][0].is_array(), r["losses"][0].is_array(), "{name} {run}: losses nesting");
        // max_rel_diff is a difference of nearly equal numbers: compare it on the scale of
        // the parameters (1e-5 of the largest), not relative to itself
        let (od, rd) = (o["max_rel_diff"].as_f64().unwrap(), r["max_rel_diff"].as_f64().unwrap());
        assert!((od - rd).abs() <= 2e-5, "{name} {run}: max_rel_diff {od} vs PyTorch {rd}");
    }
    check_verdicts(name, rr, or);
}

/// `equal` (torch.allclose with rtol 1e-5, atol 1e-8 against the batched run) as PyTorch
/// decided it, for every run whose verdict float rounding cannot flip: per element, the
/// noise is how far tapegrad's difference from the batched run is from PyTorch's, and the
/// verdict holds when PyTorch's difference is outside the bound by more than that noise
/// (some element beyond the bound for `false`, all within it for `true`).
fn check_verdicts(name: &str, rr: &[Value], or: &[Value]) {
    let (rb, ob) = (f32s(&rr[0]["params"]), f32s(&or[0]["params"]));
    for (r, o) in rr.iter().zip(or).skip(1) {
        let run = r["name"].as_str().unwrap();
        let (rp, op) = (f32s(&r["params"]), f32s(&o["params"]));
        let (mut beyond, mut within) = (false, true);
        for i in 0..rp.len() {
            let bound = 1e-8 + 1e-5 * f64::from(rb[i]).abs();
            let theirs = f64::from(rp[i]) - f64::from(rb[i]);
            let noise = (f64::from(op[i]) - f64::from(ob[i]) - theirs).abs();
            beyond |= theirs.abs() - noise > bound;
            within &= theirs.abs() + noise <= bound;
        }
        let pytorch = r["equal"].as_bool().unwrap();
        assert!(!(beyond && pytorch || within && !pytorch), "{name} {run}: the fixture's equal and params disagree");
        if beyond || within {
            assert_eq!(o["equal"], r["equal"], "{name} {run}: equal (PyTorch decides it outside float noise)");
        } else {
            eprintln!("{name} {run}: equal not compared (PyTorch's difference is within float noise of the bound)");
        }
    }
}

#[test]
fn library_matches_every_reference_file() {
    for (name, text) in FIXTURES {
        let reference: Value = serde_json::from_str(text).unwrap();
        let report = run_fixes(&config_of(&reference));
        let ours: Value = serde_json::from_str(&render_fixes_json(&report)).unwrap();
        check_against(name, &reference, &ours);
    }
}

#[test]
fn binary_json_matches_the_reference_files() {
    // three plain references, then clipping (fixes-clip-adam) and batch norm (fixes-batchnorm)
    for (name, text) in FIXTURES[..3].iter().chain(&FIXTURES[10..12]) {
        let reference: Value = serde_json::from_str(text).unwrap();
        let args = args_of(&reference);
        let out = Command::new(env!("CARGO_BIN_EXE_tapegrad-demo")).args(&args).output().unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let ours: Value = serde_json::from_slice(&out.stdout).unwrap();
        check_against(name, &reference, &ours);
    }
}

#[test]
fn json_layout_is_the_generators_line_for_line() {
    // same keys on the same lines as Python's dumps: compare the text with numbers masked
    let mask = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| match l.split_once(": ") {
                Some((k, v)) if v.starts_with('[') || v.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => {
                    format!("{k}: <{}>", v.matches(',').count())
                }
                _ => l.to_string(),
            })
            .collect()
    };
    for (name, text) in [FIXTURES[0], FIXTURES[10], FIXTURES[11]] {
        let args = args_of(&serde_json::from_str(text).unwrap());
        let out = Command::new(env!("CARGO_BIN_EXE_tapegrad-demo")).args(&args).output().unwrap();
        assert!(out.status.success());
        assert_eq!(mask(&String::from_utf8(out.stdout).unwrap()), mask(text), "{name}");
    }
}

#[test]
fn defaults_are_the_issues() {
    let json: Value = serde_json::from_slice(&demo(&["fixes", "--json"]).stdout).unwrap();
    for (key, want) in [
        ("optimizer", "\"sgd\""),
        ("lr", "0.1"),
        ("momentum", "0.0"),
        ("betas", "null"),
        ("weight_decay", "0.0"),
        ("loss", "\"l1\""),
        ("layers", "[4,8,2]"),
        ("batch", "2"),
        ("micro_batches", "2"),
        ("steps", "5"),
        ("data_seed", "1"),
        ("model_seed", "2"),
    ] {
        assert_eq!(json[key].to_string(), want, "{key}");
    }
    let adamw: Value = serde_json::from_slice(&demo(&["fixes", "--optimizer", "adamw", "--json"]).stdout).unwrap();
    assert_eq!((adamw["lr"].as_f64(), adamw["weight_decay"].as_f64()), (Some(0.01), Some(0.01)));
    assert_eq!((adamw["betas"].to_string(), adamw["eps"].as_f64()), ("[0.9,0.999]".to_string(), Some(1e-8)));
    let adam: Value = serde_json::from_slice(&demo(&["fixes", "--optimizer", "adam", "--json"]).stdout).unwrap();
    assert_eq!((adam["lr"].as_f64(), adam["weight_decay"].as_f64()), (Some(0.01), Some(0.0)));
}

/// The issue's table: which fix holds (true) for SGD, SGD momentum, SGD weight decay, Adam,
/// AdamW; columns none, lr/k, loss/k, size/batch.
const PATTERN: [[bool; 4]; 5] = [
    [false, true, true, true],
    [false, true, true, true],
    [false, false, true, true],
    [true, false, true, true],
    [true, false, true, true],
];

#[test]
fn the_table_has_the_issues_verdicts() {
    let reports = run_table(&FixesConfig::default());
    for (report, want) in reports.iter().zip(PATTERN) {
        let got: Vec<bool> = RUNS[1..].iter().map(|n| report.run(n).equal).collect();
        assert_eq!(got, want, "{}", describe_optimizer(&report.config.optimizer));
    }
    // and the printed table says so, row by row
    let out = demo(&["fixes"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let (table, _answer) = text.split_once("The answer:").expect("the answer after the table");
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| SGD") || l.starts_with("| Adam")).collect();
    assert_eq!(rows.len(), 5, "{text}");
    for (row, want) in rows.iter().zip(PATTERN) {
        let cells: Vec<bool> = row.split(" | ").skip(1).map(|c| c.trim_end_matches(" |").starts_with("yes")).collect();
        assert_eq!(cells, want, "{row}");
    }
    assert!(text.contains("Why"), "{text}");
}

/// The answer's rows: the five optimizers as above, then clipping (Adam: no fix no longer
/// works, the loss fixes still do), BatchNorm (nothing works), LayerNorm (as plain SGD),
/// token-mean losses (no fix of `fixes` works: they need tokens/total).
const ANSWER: [[bool; 4]; 9] = [
    PATTERN[0],
    PATTERN[1],
    PATTERN[2],
    PATTERN[3],
    PATTERN[4],
    [false, false, true, true],
    [false, false, false, false],
    [false, true, true, true],
    [false, false, false, false],
];

#[test]
fn the_answer_is_measured_for_every_setup() {
    let out = demo(&["fixes"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let answer = text.split_once("The answer:").expect("the answer").1;
    let rows: Vec<&str> = answer.lines().filter(|l| l.starts_with("| ") && !l.starts_with("| setup")).skip(1).collect();
    let labels: Vec<&str> = rows.iter().map(|r| r.split(" | ").next().unwrap().trim_start_matches("| ")).collect();
    assert_eq!(
        labels,
        [
            "plain SGD",
            "SGD, momentum 0.9",
            "SGD, weight decay 0.1",
            "Adam",
            "AdamW, weight decay 0.1",
            "Adam, clip_grad_norm 0.63",
            "SGD, BatchNorm1d",
            "SGD, LayerNorm",
            "SGD, token-mean loss"
        ]
    );
    assert!(answer.contains("(tokens/total): yes"), "the token row's own fix: {answer}");
    for (row, want) in rows.iter().zip(ANSWER) {
        let cells: Vec<bool> = row.split(" | ").skip(1).map(|c| c.trim_end_matches(" |").starts_with("yes")).collect();
        assert_eq!(cells, want, "{row}");
    }
    // the cells are the runs' own verdicts, not text
    let measured = run_answer();
    for ((_, report), want) in measured.rows.iter().zip(ANSWER) {
        let got: Vec<bool> = RUNS[1..].iter().map(|n| report.run(n).equal).collect();
        assert_eq!(got, want);
    }
    let got: Vec<bool> = RUNS[1..].iter().map(|n| measured.tokens.run(n).equal).collect();
    assert_eq!(got, ANSWER[8]);
    assert!(measured.tokens.run("tokens/total").equal);
    // with an option the answer is left out: the table shows the asked setup
    let clip = String::from_utf8(demo(&["fixes", "--clip-grad-norm", "0.63"]).stdout).unwrap();
    assert!(!clip.contains("The answer") && clip.contains("clip    clip_grad_norm_(parameters, 0.63)"), "{clip}");
    assert!(clip.contains("Steps clipped of 5 with SGD (lr 0.1): batched 4, none 5, lr/k 5, loss/k 4, size/batch 4."));
    let batch = demo(&["fixes", "--norm", "batch", "--batch", "4", "--layers", "4,8,8,2"]);
    let batch = String::from_utf8(batch.stdout).unwrap();
    assert!(
        batch.contains("BatchNorm normalises each micro-batch") && batch.contains("Linear without bias"),
        "{batch}"
    );
}

#[test]
fn the_main_demo_points_to_fixes() {
    let out = demo(&[]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.trim_end().lines().last().unwrap().contains("tapegrad-demo fixes"), "{text}");
    assert!(text.starts_with("Gradient accumulation vs one big batch"));
    // --json stays pure JSON
    let json = demo(&["--json"]);
    assert!(serde_json::from_slice::<Value>(&json.stdout).is_ok());
}

#[test]
fn plot_is_an_svg_written_whole() {
    let dir = std::env::temp_dir().join(format!("tapegrad-fixes-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fixes.svg");
    let setup = vec!["fixes", "--optimizer", "sgd", "--norm", "layer", "--clip-grad-norm", "0.5", "--steps", "1"];
    for args in [vec!["fixes"], vec!["fixes", "--optimizer", "adamw", "--steps", "1"], setup] {
        let mut args: Vec<&str> = args;
        let p = path.to_str().unwrap();
        args.extend(["--plot", p]);
        let out = demo(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{svg}");
        let texts: Vec<&str> = svg
            .split("<text")
            .skip(1)
            .map(|t| t.split_once('>').unwrap().1.split("</text>").next().unwrap().trim())
            .collect();
        for label in ["none", "lr/k", "loss/k", "size/batch", "step"] {
            assert!(texts.contains(&label), "label {label}: {texts:?}");
        }
        let panels = texts.iter().filter(|t| t.ends_with("k = 2")).count();
        if args.contains(&"layer") {
            // the panel names the setup
            assert!(texts.contains(&"SGD (lr 0.1), LayerNorm, clip 0.5, k = 2"), "{texts:?}");
        }
        assert_eq!(panels, if args.len() == 3 { 5 } else { 1 });
        // nothing else is left in the folder (no temporary file)
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        // the last line says where the plot went
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.lines().last(), Some(format!("plot written to {p}").as_str()), "{text}");
        assert!(out.stderr.is_empty());
    }
    // with --json the line goes to stderr and stdout stays JSON
    let p = path.to_str().unwrap();
    let out = demo(&["fixes", "--json", "--steps", "1", "--plot", p]);
    assert!(out.status.success());
    assert!(serde_json::from_slice::<Value>(&out.stdout).is_ok());
    assert_eq!(String::from_utf8_lossy(&out.stderr), format!("tapegrad-demo: plot written to {p}\n"));
    // an unwritable target: one line, status 2, no file
    let bad = dir.join("no-such-folder").join("x.svg");
    let out = demo(&["fixes", "--plot", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    assert!(!bad.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_arguments_get_one_line_and_status_2() {
    for (args, needle) in [
        (&["--steps", "0"][..], "--steps"),
        (&["--optimizer", "rmsprop"], "sgd, adam or adamw"),
        (&["--optimizer", "adam", "--betas", "0.9,1"], "--betas"),
        (&["--optimizer", "adam", "--betas", "1.5,0.9"], "--betas"),
        (&["--optimizer", "adamw", "--betas", "-0.1,0.9"], "--betas"),
        (&["--optimizer", "adam", "--betas", "0.9"], "--betas"),
        (&["--optimizer", "adam", "--betas", "0.9,x"], "--betas"),
        (&["--optimizer", "adam", "--eps", "-1e-8"], "--eps"),
        (&["--optimizer", "adam", "--eps", "nan"], "--eps"),
        (&["--weight-decay", "-0.1"], "--weight-decay"),
        (&["--lr", "-1"], "--lr"),
        (&["--lr", "inf"], "--lr"),
        (&["--lr", "0"], "--lr must be greater than 0 and finite in float32, got 0"),
        (&["--lr", "1e-46"], "--lr must be greater than 0"),
        (&["--lr", "1.4e-45"], "as lr / k with --micro-batches 2"),
        (&["--momentum", "-0.9"], "--momentum"),
        (&["--optimizer", "adam", "--momentum", "0.9"], "--momentum"),
        (&["--betas", "0.9,0.99"], "--betas"),
        (&["--loss", "huber"], "l1 or mse"),
        (&["--layers", "4"], "--layers"),
        (&["--layers", "4,0,2"], "--layers"),
        (&["--batch", "0"], "--batch"),
        (&["--micro-batches", "3"], "--micro-batches"),
        (&["--micro-batches", "0"], "--micro-batches"),
        (&["--steps", "-1"], "--steps"),
        (&["--layers", "100000,100000,2"], "--layers 100000,100000,2 needs"),
        (&["--steps", "18446744073709551615"], "--steps 18446744073709551615 is too large"),
        (&["--layers", "18446744073709551615,18446744073709551615"], "overflows 64 bits"),
        (&["--batch", "4000000000", "--micro-batches", "1"], "--batch 4000000000 needs"),
        (&["--frobnicate"], "--frobnicate"),
        (&["--clip-grad-norm", "-1"], "finite number > 0"),
        (&["--clip-grad-norm", "0"], "finite number > 0"),
        (&["--clip-grad-norm", "nan"], "finite number > 0"),
        (&["--clip-grad-norm", "inf"], "finite number > 0"),
        (&["--clip-grad-norm", "x"], "finite number > 0"),
        (&["--norm", "group"], "none, batch or layer"),
        (&["--norm", "batch"], "--norm batch needs at least 2 rows in every micro-batch, but --batch 2 split into 2"),
        (&["--norm", "batch", "--batch", "5", "--micro-batches", "3"], "gives a micro-batch of 1"),
    ] {
        let mut all = vec!["fixes"];
        all.extend_from_slice(args);
        let out = demo(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn help_lists_the_options() {
    let out = demo(&["fixes", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // its own description first (not the main program's), then the defaults at the end
    assert!(text.starts_with("Which fix (lr / k, loss / k, loss x size / batch) makes accumulation"), "{text}");
    assert!(text.trim_end().ends_with("betas 0.9,0.999 and eps 1e-8."), "{text}");
    assert!(text.contains("distance from the large-batch run"), "fixes' own --plot help: {text}");
    for opt in [
        "--optimizer",
        "--lr",
        "--momentum",
        "--betas",
        "--eps",
        "--weight-decay",
        "--loss",
        "--layers",
        "--batch",
        "--micro-batches",
        "--steps",
        "--clip-grad-norm",
        "--norm",
        "--data-seed",
        "--model-seed",
        "--json",
        "--plot",
    ] {
        assert!(text.contains(opt), "{opt}");
    }
}
