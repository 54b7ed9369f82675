//! `--load FILE` and `--save FILE`: safetensors weights in and out of the demo.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tapegrad::{Tape, TorchRng};
use tapegrad_demo::forum::{run, Config};
use tapegrad_demo::model::flatten;
use tapegrad_nn::Sequential;

mod common;
use common::TempDir;

/// PyTorch's `save_file(model.state_dict())` of the forum post's 4-8-2 model after
/// `torch.manual_seed(2)`.
fn pytorch_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../nn/tests/fixtures/seed_model.safetensors")
}

fn demo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tapegrad-demo")).args(args).output().unwrap()
}

#[track_caller]
fn json_of(out: &Output) -> Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn f32s(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| (x.as_f64().unwrap() as f32).to_bits()).collect()
}

#[test]
fn loading_pytorchs_file_gives_the_default_run() {
    let default = demo(&["--json"]);
    let fixture = pytorch_fixture();
    // the file replaces the seed: a different --model-seed makes no difference
    let loaded = demo(&["--json", "--load", fixture.to_str().unwrap(), "--model-seed", "77"]);
    let (d, l) = (json_of(&default), json_of(&loaded));
    assert_eq!(f32s(&l["initial_params"]), f32s(&d["initial_params"]));
    for key in ["input", "target", "experiments", "micro_batch_sizes"] {
        assert_eq!(l[key], d[key], "{key}");
    }

    let text = demo(&["--load", fixture.to_str().unwrap()]);
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("weights loaded (--load)"), "{text}");
}

#[test]
fn save_then_load_continues_from_the_sum_step() {
    let dir = TempDir::new("save-load");
    let file = dir.join("after-sum.safetensors");
    let first = json_of(&demo(&["--json", "--save", &file]));
    let sum = first["experiments"].as_array().unwrap().iter().find(|e| e["name"] == "sum").unwrap();
    let stepped = f32s(&sum["batched"]["params"]);
    assert_ne!(stepped, f32s(&first["initial_params"]));

    // the file holds the weights after the batched sum step, under PyTorch's names
    let mut tape = Tape::<f32>::new();
    let model = Sequential::mlp(&tape, &[4, 8, 2], &mut TorchRng::manual_seed(0));
    tapegrad_nn::load(&mut tape, &model, &file).unwrap();
    let saved: Vec<u32> = flatten(&tape, &model, false).iter().map(|x| x.to_bits()).collect();
    assert_eq!(saved, stepped);

    // and --load starts every run from them
    let second = json_of(&demo(&["--json", "--load", &file]));
    assert_eq!(f32s(&second["initial_params"]), stepped);

    // the library agrees with the binary
    let config = Config { initial_params: Some(flatten(&tape, &model, false)), ..Config::default() };
    let report = run(&config);
    assert_eq!(report.initial_params.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), stepped);

    // saving again over the file replaces it, leaving nothing else in the folder
    json_of(&demo(&["--json", "--save", &file, "--model-seed", "5"]));
    let entries: Vec<_> = std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries, ["after-sum.safetensors"]);
}

#[test]
fn loading_and_saving_with_other_layer_sizes() {
    let dir = TempDir::new("layers");
    let file = dir.join("deep.safetensors");
    let args = ["--json", "--layers", "3,16,16,2", "--batch", "4", "--micro-batches", "2"];
    let first = json_of(&demo(&[&args[..], &["--save", &file]].concat()));
    let second = json_of(&demo(&[&args[..], &["--load", &file]].concat()));
    let sum = first["experiments"].as_array().unwrap().iter().find(|e| e["name"] == "sum").unwrap();
    assert_eq!(f32s(&second["initial_params"]), f32s(&sum["batched"]["params"]));
}

#[test]
fn bad_weight_files_get_one_line_and_exit_2() {
    let dir = TempDir::new("bad");
    let fixture = pytorch_fixture();
    let fixture = fixture.to_str().unwrap();
    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &std::fs::read(fixture).unwrap()[..300]).unwrap();
    let not_safetensors = dir.join("text.safetensors");
    std::fs::write(&not_safetensors, "this is not a safetensors file, just some text").unwrap();
    let nowhere = dir.join("no-such-folder/out.safetensors");
    let missing = dir.join("missing.safetensors");

    let cases: &[(&[&str], &[&str])] = &[
        (&["--load", &missing], &["--load", "missing.safetensors", "cannot read"]),
        (&["--load", &dir.join("")], &["--load", "cannot read"]),
        (&["--load", &truncated], &["--load", "truncated"]),
        (&["--load", &not_safetensors], &["--load", "not a valid safetensors file"]),
        (&["--load", fixture, "--layers", "4,16,2"], &["--load", "`0.weight`", "[8, 4]", "[16, 4]"]),
        (&["--load", fixture, "--layers", "4,8,8,2"], &["--load", "missing tensors `4.weight`, `4.bias`"]),
        (&["--load", fixture, "--layers", "4,2"], &["--load", "unexpected tensors"]),
        (&["--load"], &["--load"]),
        (&["--save", &nowhere], &["--save", "no-such-folder"]),
        (&["--save", &dir.join("")], &["--save", "it is a folder"]),
    ];
    for (args, needles) in cases {
        let out = demo(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: one line, got {stderr:?}");
        assert!(stderr.starts_with("tapegrad-demo: "), "{args:?}: {stderr}");
        for needle in *needles {
            assert!(stderr.contains(needle), "{args:?}: {stderr:?} should mention {needle}");
        }
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let mut left: Vec<_> = std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    left.sort();
    assert_eq!(left, ["text.safetensors", "truncated.safetensors"], "no temporary files left");
}
