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

/// `Sequential::mlp_with` is the network written out layer by layer with the activation
/// between the linear layers: same names, same initial weights from the same seed, same
/// outputs; `mlp` is `mlp_with` and ReLU.
#[test]
fn mlp_with_each_activation_is_the_network_written_out() {
    use tapegrad_nn::{Activation, ReLU};
    let x = Tensor::uniform(&[3, 4], -1.0, 1.0, &mut TorchRng::manual_seed(9));
    let run = |net: &Sequential<f64>, tape: &Tape<f64>| {
        let params: Vec<Tensor<f64>> = net.parameters().into_iter().map(|p| tape.param_value(p)).collect();
        (net.to_string(), params, net.forward(tape.input(&x)).value())
    };
    for activation in [Activation::ReLU, Activation::Tanh, Activation::Sigmoid] {
        let tape = Tape::<f64>::new();
        let built = Sequential::mlp_with(&tape, &[4, 6, 5, 2], activation, &mut TorchRng::manual_seed(3));
        let by_hand_tape = Tape::<f64>::new();
        let mut rng = TorchRng::manual_seed(3);
        let mut layers: Vec<Box<dyn Module<f64>>> = Vec::new();
        for (i, (a, b)) in [(4, 6), (6, 5), (5, 2)].into_iter().enumerate() {
            layers.push(Box::new(Linear::new(&by_hand_tape, a, b, &mut rng)));
            if i < 2 {
                layers.push(match activation {
                    Activation::ReLU => Box::new(ReLU),
                    Activation::Tanh => Box::new(Tanh),
                    Activation::Sigmoid => Box::new(Sigmoid),
                });
            }
        }
        let by_hand = Sequential::new(layers);
        assert_eq!(run(&built, &tape), run(&by_hand, &by_hand_tape), "{activation:?}");
        if activation == Activation::ReLU {
            let plain_tape = Tape::<f64>::new();
            let plain = Sequential::mlp(&plain_tape, &[4, 6, 5, 2], &mut TorchRng::manual_seed(3));
            assert_eq!(run(&plain, &plain_tape), run(&built, &tape));
        }
    }
    assert_eq!(Activation::default(), Activation::ReLU);
}
