//! The token-loss pieces of tapegrad-nn: `Embedding`'s initialisation against
//! `nn.Embedding` bit for bit (`tests/fixtures/embedding.json`, made by
//! `tests/fixtures/make_embedding.py`), `CrossEntropyLoss` over `[..., C]` logits with
//! padding ignored, and `LossScale::PerLossTerm`: k micro-batches of sequences of different
//! lengths give the batched gradient, where `DivideByK` and `SizeOverBatch` do not.

use serde_json::Value;
use tapegrad::{Tape, Tensor, TorchRng};
use tapegrad_nn::{Accumulation, CrossEntropyLoss, Embedding, Linear, LossScale, Module, Reduction, Sequential, Tanh};

#[test]
fn embedding_init_is_pytorchs_bit_for_bit() {
    let fx: Value = serde_json::from_str(include_str!("fixtures/embedding.json")).unwrap();
    for c in fx["cases"].as_array().unwrap() {
        let (v, d, seed) =
            (c["v"].as_u64().unwrap() as usize, c["d"].as_u64().unwrap() as usize, c["seed"].as_u64().unwrap());
        let tape = Tape::<f32>::new();
        let mut rng = TorchRng::manual_seed(seed);
        let emb = Embedding::new(&tape, v, d, &mut rng);
        let lin = Linear::new(&tape, d, 3, &mut rng);
        let got = tape.param_value(emb.weight);
        assert_eq!(got.shape(), &[v, d]);
        let want: Vec<u32> = c["bits"].as_array().unwrap().iter().map(|b| b.as_u64().unwrap() as u32).collect();
        let bits: Vec<u32> = got.data().iter().map(|x| x.to_bits()).collect();
        assert_eq!(bits, want, "Embedding({v}, {d}) after seed {seed}");
        let lin_got: Vec<f32> = [lin.weight, lin.bias.expect("Linear::new has a bias")]
            .iter()
            .flat_map(|&p| tape.param_value(p).into_vec())
            .collect();
        let lin_want: Vec<f32> = c["linear"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        assert_eq!(lin_got, lin_want, "the Linear drawn after Embedding({v}, {d}), seed {seed}");
        assert_eq!(emb.to_string(), format!("Embedding({v}, {d})"));
    }
}

/// `[B, T]` token sequences of lengths `lens` (padding: token 0, target -100).
fn sequences(rng: &mut TorchRng, lens: &[usize], t: usize, vocab: usize) -> (Tensor<f64>, Tensor<f64>) {
    let b = lens.len();
    let mut tok = Tensor::zeros(&[b, t]);
    let mut tgt = Tensor::zeros(&[b, t]);
    for (i, &len) in lens.iter().enumerate() {
        for j in 0..t {
            let (x, y) = (rng.randint(0, vocab as i64) as f64, rng.randint(0, vocab as i64) as f64);
            tok.data_mut()[i * t + j] = if j < len { x } else { 0.0 };
            tgt.data_mut()[i * t + j] = if j < len { y } else { -100.0 };
        }
    }
    (tok, tgt)
}

fn token_model(tape: &Tape<f64>, vocab: usize, seed: u64) -> Sequential<f64> {
    let mut rng = TorchRng::manual_seed(seed);
    Sequential::new(vec![
        Box::new(Embedding::new(tape, vocab, 3, &mut rng)),
        Box::new(Linear::new(tape, 3, 5, &mut rng)),
        Box::new(Tanh),
        Box::new(Linear::new(tape, 5, vocab, &mut rng)),
    ])
}

fn grads(tape: &Tape<f64>, model: &dyn Module<f64>) -> Vec<f64> {
    model.parameters().iter().flat_map(|&p| tape.param_grad(p).map(|g| g.into_vec()).unwrap_or_default()).collect()
}

fn max_rel_diff(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn per_loss_term_accumulation_gives_the_batched_gradient() {
    let (vocab, t) = (6, 5);
    let ce = CrossEntropyLoss::new(Reduction::Mean);
    for (case, lens) in
        [vec![5, 1, 2, 4, 3], vec![1, 1, 5, 5], vec![0, 0, 3, 2, 4, 1], vec![2, 2, 2, 2]].iter().enumerate()
    {
        let (tok, tgt) = sequences(&mut TorchRng::manual_seed(30 + case as u64), lens, t, vocab);
        let run = |k: usize, scale: LossScale| {
            let mut tape = Tape::<f64>::new();
            let model = token_model(&tape, vocab, 7);
            let losses = Accumulation::new(k, scale).run(&mut tape, &model, &ce, &tok, &tgt, None);
            (grads(&tape, &model), losses)
        };
        let (batched, whole) = run(1, LossScale::None);
        let n: usize = lens.iter().sum();
        for k in 2..=lens.len() {
            let (g, losses) = run(k, LossScale::PerLossTerm);
            assert!(max_rel_diff(&g, &batched) < 1e-12, "case {case}, k {k}: {}", max_rel_diff(&g, &batched));
            // the reported losses are each micro-batch's token mean; a micro-batch of padding only is NaN
            let sizes = tapegrad_nn::split_sizes(lens.len(), k);
            let mut start = 0;
            let mut total = 0.0;
            for (s, loss) in sizes.iter().zip(&losses) {
                let tokens: usize = lens[start..start + s].iter().sum();
                assert_eq!(loss.is_nan(), tokens == 0, "case {case}, k {k}");
                total += if tokens == 0 { 0.0 } else { loss * tokens as f64 };
                start += s;
            }
            assert!((total / n as f64 - whole[0]).abs() < 1e-12, "case {case}, k {k}");
            assert!(g.iter().all(|v| v.is_finite()));
            // token means weighted per micro-batch (loss/k) are exact only when every
            // micro-batch holds the same number of tokens, weighted per sequence
            // (size/batch) only when the tokens are proportional to the sequences
            let mut start = 0;
            let counts: Vec<(usize, usize)> = sizes
                .iter()
                .map(|&s| {
                    start += s;
                    (s, lens[start - s..start].iter().sum())
                })
                .collect();
            let b = lens.len();
            for wrong in [LossScale::DivideByK, LossScale::SizeOverBatch] {
                let exact = match wrong {
                    LossScale::DivideByK => counts.iter().all(|&(_, c)| c == counts[0].1),
                    _ => counts.iter().all(|&(s, c)| s * n == c * b),
                };
                if counts.iter().any(|&(_, c)| c == 0) {
                    continue; // a NaN micro-batch mean: its zero gradient drops its sequences
                }
                let off = max_rel_diff(&run(k, wrong).0, &batched);
                assert_eq!(off < 1e-12, exact, "case {case}, k {k}, {wrong:?}: {off}");
                if !exact {
                    assert!(off > 1e-3, "case {case}, k {k}, {wrong:?}: {off}");
                }
            }
        }
    }
}

#[test]
#[should_panic(expected = "accumulate: the batch holds no loss term to divide by")]
fn per_loss_term_refuses_a_batch_without_loss_terms() {
    let (tok, tgt) = sequences(&mut TorchRng::manual_seed(1), &[0, 0], 3, 4);
    let mut tape = Tape::<f64>::new();
    let model = token_model(&tape, 4, 1);
    Accumulation::new(2, LossScale::PerLossTerm).run(
        &mut tape,
        &model,
        &CrossEntropyLoss::new(Reduction::Mean),
        &tok,
        &tgt,
        None,
    );
}

#[test]
fn cross_entropy_over_sequences_is_the_flattened_loss() {
    let (tok, tgt) = sequences(&mut TorchRng::manual_seed(2), &[3, 1, 4], 4, 5);
    let tape = Tape::<f64>::new();
    let model = token_model(&tape, 5, 3);
    let logits = model.forward(tape.input(tok));
    assert_eq!(logits.shape().as_slice(), &[3, 4, 5]);
    let t = tape.input(tgt);
    for red in [Reduction::Sum, Reduction::Mean, Reduction::None] {
        let ce = CrossEntropyLoss::new(red);
        let a = ce.forward(logits, t).value();
        let b = ce.forward(logits.reshape(&[12, 5]), t.reshape(&[12])).value();
        assert_eq!(a.data(), b.data());
        let want: &[usize] = if red == Reduction::None { &[3, 4] } else { &[] };
        assert_eq!(a.shape(), want);
    }
    assert_eq!(CrossEntropyLoss::new(Reduction::Mean).forward(logits, t).item(), {
        let s = CrossEntropyLoss::new(Reduction::Sum).forward(logits, t).item();
        s / 8.0
    });
}
