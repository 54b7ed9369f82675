//! `TorchRng::fill_normal_f32` against torch's float32 `normal_` bit for bit
//! (`tests/fixtures/normal.json`, made by `tests/fixtures/make_normal.py`): both paths
//! (below 16 values in double precision, from 16 on the vectorised Box-Muller with the
//! Cephes polynomials), sizes not a multiple of 16, large sizes, calls in sequence (the
//! cached sine of the scalar path), and the raw outputs consumed.

use serde_json::Value;
use tapegrad::TorchRng;

#[test]
fn normal_matches_torch_bit_for_bit() {
    let fx: Value = serde_json::from_str(include_str!("fixtures/normal.json")).unwrap();
    let cases = fx["cases"].as_array().unwrap();
    let mut values = 0;
    for c in cases {
        let seed = c["seed"].as_u64().unwrap();
        let mut rng = TorchRng::manual_seed(seed);
        let mut got = Vec::new();
        for n in c["sizes"].as_array().unwrap() {
            let mut v = vec![0f32; n.as_u64().unwrap() as usize];
            rng.fill_normal_f32(&mut v, 0.0, 1.0);
            got.extend(v);
        }
        let want: Vec<u32> = c["bits"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u32).collect();
        assert_eq!(got.len(), want.len());
        for (i, (g, &w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g.to_bits(),
                w,
                "seed {seed} sizes {}: value {i}: {g} vs torch {}",
                c["sizes"],
                f32::from_bits(w)
            );
        }
        let after: Vec<f32> = (0..3).map(|_| rng.uniform_f32_unit()).collect();
        let want_after: Vec<f32> =
            c["then_rand"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        assert_eq!(after, want_after, "seed {seed} sizes {}: raw outputs consumed", c["sizes"]);
        values += want.len();
    }
    assert!(values > 8000, "{values}");
}
