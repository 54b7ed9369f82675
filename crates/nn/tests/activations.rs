//! The Tanh and Sigmoid modules: what they compute, their gradients through a Sequential,
//! their names, and that they own no parameters.

use tapegrad::{gradcheck, Tape, Tensor, TorchRng};
use tapegrad_nn::{Linear, Module, Sequential, Sigmoid, Tanh};

#[test]
fn tanh_and_sigmoid_modules() {
    let tape = Tape::<f64>::new();
    let x = tape.input(Tensor::new(vec![-2.0, -0.5, 0.0, 0.5, 3.0], &[5]));
    let t = Module::<f64>::forward(&Tanh, x).value();
    let s = Module::<f64>::forward(&Sigmoid, x).value();
    for (i, &v) in x.value().data().iter().enumerate() {
        assert_eq!(t.data()[i], v.tanh());
        assert!((s.data()[i] - 1.0 / (1.0 + (-v).exp())).abs() < 1e-16);
    }
    assert!(Module::<f64>::named_parameters(&Tanh).is_empty() && Module::<f64>::named_parameters(&Sigmoid).is_empty());
    assert_eq!((Tanh.to_string(), Sigmoid.to_string()), ("Tanh()".to_string(), "Sigmoid()".to_string()));
}

#[test]
fn in_a_sequential_network() {
    let mut rng = TorchRng::manual_seed(1);
    let tape = Tape::<f64>::new();
    let l1 = Linear::new(&tape, 3, 4, &mut rng);
    let l2 = Linear::new(&tape, 4, 2, &mut rng);
    let net: Sequential<f64> = Sequential::new(vec![Box::new(l1), Box::new(Tanh), Box::new(l2), Box::new(Sigmoid)]);
    assert_eq!(net.to_string(), "Sequential(\n  (0): Linear(in_features=3, out_features=4, bias=True)\n  (1): Tanh()\n  (2): Linear(in_features=4, out_features=2, bias=True)\n  (3): Sigmoid()\n)");
    let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
    // the same as the ops written out
    let x = Tensor::uniform(&[5, 3], -1.0, 1.0, &mut rng);
    let xv = tape.input(x.clone());
    let (w1, b1, w2, b2) =
        (tape.var(l1.weight), tape.var(l1.bias.unwrap()), tape.var(l2.weight), tape.var(l2.bias.unwrap()));
    let want = xv.linear(w1, b1).tanh().linear(w2, b2).sigmoid().value();
    assert_eq!(net.forward(xv).value(), want);
    // and their gradients check against finite differences
    gradcheck(
        |_, v| v[0].linear(v[1], v[2]).tanh().linear(v[3], v[4]).sigmoid(),
        &[
            x,
            tape.param_value(l1.weight),
            tape.param_value(l1.bias.unwrap()),
            tape.param_value(l2.weight),
            tape.param_value(l2.bias.unwrap()),
        ],
    )
    .unwrap();
}
