//! The one model and data builder of every experiment, as PyTorch makes them: an MLP
//! (`Linear, ReLU, ..., Linear`) after `torch.manual_seed(model_seed)`, and data
//! `torch.rand(rows, layers[0])` then `torch.rand(rows, layers[-1])` after
//! `torch.manual_seed(data_seed)`; with the flat views of parameters and gradients the
//! reports hold, and PyTorch's `allclose`.

use tapegrad::{Tape, Tensor, TorchRng};
use tapegrad_nn::{Module, Sequential};

/// The MLP of `layers` on a fresh tape, initialised after `torch.manual_seed(model_seed)`,
/// or with `initial` (flat in `parameters()` order) instead when given.
///
/// # Panics
/// If `initial` does not hold exactly the model's number of parameters.
pub fn build_model(layers: &[usize], model_seed: u64, initial: Option<&[f32]>) -> (Tape<f32>, Sequential<f32>) {
    let mut tape = Tape::new();
    let model = Sequential::mlp(&tape, layers, &mut TorchRng::manual_seed(model_seed));
    if let Some(values) = initial {
        unflatten(&mut tape, &model, values);
    }
    (tape, model)
}

/// Inputs `[rows, layers[0]]` and targets `[rows, layers[-1]]`: `torch.rand` of each after
/// `torch.manual_seed(data_seed)`.
pub fn make_data(layers: &[usize], data_seed: u64, rows: usize) -> (Tensor<f32>, Tensor<f32>) {
    let mut rng = TorchRng::manual_seed(data_seed);
    let input = Tensor::rand(&[rows, layers[0]], &mut rng);
    let target = Tensor::rand(&[rows, *layers.last().expect("at least two layers")], &mut rng);
    (input, target)
}

/// All parameters (or all gradients) of a model, flat in `parameters()` order.
pub fn flatten(tape: &Tape<f32>, model: &dyn Module<f32>, grads: bool) -> Vec<f32> {
    let mut out = Vec::new();
    for p in model.parameters() {
        tape.with_param(p, |shape, value, grad| {
            let n: usize = shape.iter().product();
            match (grads, grad) {
                (false, _) => out.extend_from_slice(value),
                (true, Some(g)) => out.extend_from_slice(g),
                (true, None) => out.extend(std::iter::repeat_n(0.0, n)),
            }
        });
    }
    out
}

/// Sets all parameters of a model from `values`, flat in `parameters()` order (the
/// inverse of [`flatten`]).
///
/// # Panics
/// If `values` does not hold exactly the model's number of parameters.
pub fn unflatten(tape: &mut Tape<f32>, model: &dyn Module<f32>, values: &[f32]) {
    let mut rest = values;
    for p in model.parameters() {
        let shape = tape.with_param(p, |shape, _, _| shape.to_vec());
        let n: usize = shape.iter().product();
        assert!(rest.len() >= n, "unflatten: {} values for a model with more parameters", values.len());
        let (head, tail) = rest.split_at(n);
        tape.set_param_value(p, &Tensor::from_slice(head, &shape));
        rest = tail;
    }
    assert!(rest.is_empty(), "unflatten: {} values for a model with fewer parameters", values.len());
}

/// `torch.allclose(a, b)` with the default tolerances (rtol 1e-5, atol 1e-8): equal
/// infinities are close, NaN is close to nothing.
pub fn allclose(a: &[f32], b: &[f32]) -> bool {
    a.iter().zip(b).all(|(&x, &y)| x == y || ((x as f64) - (y as f64)).abs() <= 1e-8 + 1e-5 * (y as f64).abs())
}
