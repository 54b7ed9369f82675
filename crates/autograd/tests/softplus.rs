//! `softplus`, the worked example of `docs/design.md` ("Adding an op"): values and
//! gradients against PyTorch 2.15 in f64 and f32, from far negative (where `e^x` underflows)
//! to far positive (where it overflows), and gradcheck of its first and second derivatives.
//!
//! The references come from (`x` the inputs below, `dtype` float64 or float32):
//! `y = torch.nn.functional.softplus(x); y.backward(torch.ones_like(y)); print(y, x.grad)`.

use tapegrad::{gradcheck, gradgradcheck, Float, Tape, Tensor};

const X: [f64; 11] = [-800.0, -40.0, -3.0, -0.5, 0.0, 1e-8, 0.5, 3.0, 19.0, 25.0, 800.0];

fn run<T: Float>(x: &[T]) -> (Vec<T>, Vec<T>) {
    let tape = Tape::<T>::new();
    let v = tape.leaf_from_slice(x, &[x.len()], true);
    let y = v.softplus();
    y.sum().backward();
    (y.value().into_vec(), v.grad().unwrap().into_vec())
}

#[track_caller]
fn close(what: &str, got: &[f64], want: &[f64], rel: f64) {
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= rel * w.abs(), "{what}[{i}] (x = {}): {g:e}, PyTorch {w:e}", X[i]);
    }
}

#[test]
fn softplus_matches_pytorch_f64() {
    let (y, g) = run(&X);
    let want_y = [
        0.0,
        4.248354255291589e-18,
        0.04858735157374206,
        0.4740769841801067,
        std::f64::consts::LN_2, // 0.6931471805599453
        0.6931471855599453,
        0.9740769841801067,
        3.048587351573742,
        19.000000005602796,
        25.0,
        800.0,
    ];
    let want_g = [
        0.0,
        4.248354255291589e-18,
        0.04742587317756679,
        0.37754066879814546,
        0.5,
        0.5000000025,
        0.6224593312018546,
        0.9525741268224333,
        0.9999999943972036,
        1.0,
        1.0,
    ];
    // above 20 PyTorch returns x itself and a gradient of 1, where the stable formula adds
    // ln(1 + e^-x) < 2.1e-9 and the gradient is σ(x), 1 - 1.4e-11 at 25: 1e-10 relative
    close("softplus", &y, &want_y, 1e-10);
    close("d softplus", &g, &want_g, 1e-10);
}

#[test]
fn softplus_matches_pytorch_f32() {
    let x: Vec<f32> = X.iter().map(|&v| v as f32).collect();
    let (y, g) = run(&x);
    let want_y = [
        0.0,
        4.24835413113866e-18,
        0.04858735203742981,
        0.4740769863128662,
        std::f32::consts::LN_2 as f64, // 0.6931471824645996
        0.6931471824645996,
        0.9740769863128662,
        3.0485873222351074,
        19.0,
        25.0,
        800.0,
    ];
    let want_g = [
        0.0,
        4.24835413113866e-18,
        0.04742587357759476,
        0.3775406777858734,
        0.5,
        0.5,
        0.622459352016449,
        0.9525741338729858,
        1.0,
        1.0,
        1.0,
    ];
    let widen = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<_>>();
    close("softplus", &widen(y), &want_y, 1e-6);
    close("d softplus", &widen(g), &want_g, 1e-6);
}

#[test]
fn softplus_first_and_second_derivatives() {
    let x = Tensor::new(vec![-3.0, -0.7, 0.0, 0.4, 2.5, 6.0], &[2, 3]);
    gradcheck(|_, v| v[0].softplus().sum(), std::slice::from_ref(&x)).unwrap();
    gradgradcheck(|_, v| v[0].softplus().sum(), &[x]).unwrap();
}
