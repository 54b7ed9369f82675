//! `TorchRng` against values recorded from PyTorch 2.15 (`tests/fixtures/rng.json`,
//! made by `make_rng.py`): raw mt19937 outputs, `torch.rand` in float32 and float64,
//! `torch.randint(0, 2**31)`, seed truncation and `nn.Linear` default init (the script
//! checks its own formulas against torch and fails if one does not hold); `randint` around
//! its 32/64-bit threshold (`tests/fixtures/randint.json`, made by `make_randint.py`).

use serde_json::Value;
use tapegrad::rng::{kaiming_uniform_bound, TorchRng};

const FIXTURE: &str = include_str!("fixtures/rng.json");

/// Rewrites every JSON number (outside strings) as a string holding its exact text, so
/// numbers are parsed by Rust's correctly rounded `str::parse` rather than serde_json's
/// default best-effort float parser (17-digit float64s could be off by one ulp).
fn quote_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    let mut escaped = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == '-' || c.is_ascii_digit() {
            out.push('"');
            out.push(c);
            while let Some(&d) = chars.peek() {
                if d.is_ascii_digit() || matches!(d, '.' | 'e' | 'E' | '+' | '-') {
                    out.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push('"');
        } else {
            out.push(c);
        }
    }
    out
}

fn fixture() -> Value {
    serde_json::from_str(&quote_numbers(FIXTURE)).expect("rng.json parses")
}

fn num<T: std::str::FromStr>(v: &Value) -> T
where
    T::Err: std::fmt::Debug,
{
    v.as_str().expect("number").parse().expect("number parses")
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(num::<f64>).collect()
}

/// Float32 values (stored as the exact value in decimal), flattening nested arrays.
fn f32s(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(items) => items.iter().flat_map(f32s).collect(),
        _ => {
            let x: f64 = num(v);
            let y = x as f32;
            assert_eq!(f64::from(y), x, "{x} is not a float32 value");
            vec![y]
        }
    }
}

fn seeds() -> Vec<Value> {
    fixture()["seeds"].as_array().expect("seeds").clone()
}

/// `randint` across the ranges around PyTorch's switch from 32-bit to 64-bit draws, up to
/// the whole i64 range, for several seeds, in one stream per seed
/// (`tests/fixtures/randint.json`, made by `make_randint.py`).
#[test]
fn randint_matches_pytorch_around_the_64_bit_threshold() {
    let fx: Value = serde_json::from_str(include_str!("fixtures/randint.json")).expect("randint.json parses");
    let ranges: Vec<(i64, i64)> = fx["ranges"]
        .as_array()
        .expect("ranges")
        .iter()
        .map(|r| (r[0].as_i64().expect("low"), r[1].as_i64().expect("high")))
        .collect();
    let seeds = fx["values"].as_object().expect("values");
    assert_eq!(seeds.len(), 4);
    for (seed, values) in seeds {
        let mut rng = TorchRng::manual_seed(seed.parse().expect("seed"));
        for (&(low, high), want) in ranges.iter().zip(values.as_array().expect("per range")) {
            let want: Vec<i64> = want.as_array().expect("draws").iter().map(|v| v.as_i64().expect("i64")).collect();
            let got: Vec<i64> = (0..want.len()).map(|_| rng.randint(low, high)).collect();
            assert_eq!(got, want, "seed {seed}, randint({low}, {high})");
        }
    }
}

#[test]
fn raw_mt19937_outputs() {
    for s in seeds() {
        let seed: u64 = num(&s["seed"]);
        let want: Vec<u32> = s["mt19937_u32"].as_array().unwrap().iter().map(num::<u32>).collect();
        assert_eq!(want.len(), 40);
        let mut rng = TorchRng::manual_seed(seed);
        let got: Vec<u32> = (0..want.len()).map(|_| rng.next_u32()).collect();
        assert_eq!(got, want, "seed {seed}");
    }
}

#[test]
fn rand_f32_bit_exact() {
    for s in seeds() {
        let seed: u64 = num(&s["seed"]);
        let want = f32s(&s["rand_f32"]);
        assert_eq!(want.len(), 20);
        let mut rng = TorchRng::manual_seed(seed);
        for (i, w) in want.iter().enumerate() {
            let got = rng.uniform_f32_unit();
            assert_eq!(got.to_bits(), w.to_bits(), "seed {seed} element {i}");
        }
        // uniform_(0, 1) is the same draw
        let mut rng = TorchRng::manual_seed(seed);
        let mut buf = vec![0f32; want.len()];
        rng.fill_uniform_f32(&mut buf, 0.0, 1.0);
        assert_eq!(buf, want, "seed {seed} fill_uniform_f32");
    }
}

#[test]
fn rand_f64_bit_exact() {
    for s in seeds() {
        let seed: u64 = num(&s["seed"]);
        let want = f64s(&s["rand_f64"]);
        assert_eq!(want.len(), 20);
        let mut rng = TorchRng::manual_seed(seed);
        for (i, w) in want.iter().enumerate() {
            let got = rng.uniform_f64_unit();
            assert_eq!(got.to_bits(), w.to_bits(), "seed {seed} element {i}");
        }
        let mut rng = TorchRng::manual_seed(seed);
        let mut buf = vec![0f64; want.len()];
        rng.fill_uniform_f64(&mut buf, 0.0, 1.0);
        assert_eq!(buf, want, "seed {seed} fill_uniform_f64");
    }
}

#[test]
fn randint31_equal() {
    for s in seeds() {
        let seed: u64 = num(&s["seed"]);
        let want: Vec<i64> = s["randint31"].as_array().unwrap().iter().map(num::<i64>).collect();
        assert_eq!(want.len(), 8);
        let mut rng = TorchRng::manual_seed(seed);
        let got: Vec<i64> = (0..want.len()).map(|_| rng.randint(0, 1 << 31)).collect();
        assert_eq!(got, want, "seed {seed}");
    }
}

#[test]
fn seed_truncated_to_32_bits() {
    let mut a = TorchRng::manual_seed((1 << 32) + 5);
    let mut b = TorchRng::manual_seed(5);
    for _ in 0..100 {
        assert_eq!(a.next_u32(), b.next_u32());
    }
    // and the fixture's 2**32 + 5 record equals a seed-5 generator
    let s = seeds().into_iter().find(|s| num::<u64>(&s["seed"]) == (1 << 32) + 5).expect("seed 2**32 + 5 in fixture");
    let mut rng = TorchRng::manual_seed(5);
    let want = f32s(&s["rand_f32"]);
    for w in want {
        assert_eq!(rng.uniform_f32_unit().to_bits(), w.to_bits());
    }
}

#[test]
fn linear_after_manual_seed_2() {
    let fx = fixture();
    let lin = &fx["linear_after_manual_seed_2"];
    let mut rng = TorchRng::manual_seed(2);
    // (name, fan_in, numel, weight?) in nn.Linear(4, 8), nn.Linear(8, 2) creation order
    let params = [
        ("l1.weight", 4usize, 32usize, true),
        ("l1.bias", 4, 8, false),
        ("l2.weight", 8, 16, true),
        ("l2.bias", 8, 2, false),
    ];
    for (name, fan_in, numel, is_weight) in params {
        let bound =
            if is_weight { kaiming_uniform_bound(fan_in) as f32 } else { (1.0 / (fan_in as f64).sqrt()) as f32 };
        let want_bound = f32s(&lin[format!("{name}_bound_f32")]);
        assert_eq!(bound.to_bits(), want_bound[0].to_bits(), "{name} bound");
        let want = f32s(&lin[name]);
        assert_eq!(want.len(), numel, "{name} size");
        let mut got = vec![0f32; numel];
        rng.fill_uniform_f32(&mut got, -bound, bound);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.to_bits(), w.to_bits(), "{name}[{i}]: {g} vs {w}");
        }
    }
}

#[test]
fn kaiming_bound_f32_equals_inv_sqrt_up_to_4096() {
    let fx = fixture();
    let listed = fx["fan_in_1_to_4096_where_f32_kaiming_bound_differs_from_f32_inv_sqrt"].as_array().expect("array");
    assert!(listed.is_empty());
    for fan_in in 1..=4096usize {
        let k = kaiming_uniform_bound(fan_in) as f32;
        let inv = (1.0 / (fan_in as f64).sqrt()) as f32;
        assert_eq!(k.to_bits(), inv.to_bits(), "fan_in {fan_in}");
    }
}
