//! `TorchRng::randperm` against `torch.randperm` (`tests/fixtures/randperm.json`, made by
//! `tests/fixtures/make_randperm.py`): the same permutation, and the same raw outputs
//! consumed (the next `torch.rand` draws agree).

use serde_json::Value;
use tapegrad::TorchRng;

#[test]
fn randperm_equals_torch() {
    let fixture: Value = serde_json::from_str(include_str!("fixtures/randperm.json")).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for c in cases {
        let seed = c["seed"].as_u64().unwrap();
        let n = c["n"].as_u64().unwrap() as usize;
        let want: Vec<usize> = c["perm"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let mut rng = TorchRng::manual_seed(seed);
        let got = rng.randperm(n);
        assert_eq!(got, want, "seed {seed}, n {n}");
        let after: Vec<f32> = (0..3).map(|_| rng.uniform_f32_unit()).collect();
        let want_after: Vec<f32> =
            c["then_rand"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert_eq!(after, want_after, "seed {seed}, n {n}: raw outputs consumed");
    }
}

#[test]
fn randperm_into_reuses_the_buffer_and_is_a_permutation() {
    let mut rng = TorchRng::manual_seed(9);
    let mut buf = vec![7usize; 1000];
    rng.randperm_into(&mut buf);
    let mut sorted = buf.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
    assert_ne!(buf, sorted, "shuffled");
}
