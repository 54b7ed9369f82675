//! One training step of a two-layer network: its Wengert list, its Graphviz picture and
//! its profile.
//!
//! `cargo run --release --example two_layer_step [graph.dot]`

use tapegrad::{Tape, Tensor, TorchRng};
use tapegrad_nn::{L1Loss, Module, Optimizer, Reduction, Sequential, Sgd};

fn main() {
    let mut tape = Tape::<f32>::new();
    let model = Sequential::mlp(&tape, &[4, 8, 2], &mut TorchRng::manual_seed(2));
    let mut data = TorchRng::manual_seed(1);
    let x = Tensor::rand(&[2, 4], &mut data);
    let t = Tensor::rand(&[2, 2], &mut data);
    let mut opt = Sgd::new(0.1);
    let loss_fn = L1Loss::new(Reduction::Sum);

    tape.set_profiling(true);
    for step in 0..1000 {
        opt.zero_grad(&tape);
        {
            let loss = loss_fn.forward(model.forward(tape.input(x.clone())), tape.input(t.clone()));
            loss.backward();
            if step == 0 {
                println!("step 0, loss {:.6}\n", loss.item());
                println!("{}", tape.listing().values(true).grads(true));
                let dot = tape.to_dot(&model.named_parameters());
                match std::env::args().nth(1) {
                    Some(path) => {
                        std::fs::write(&path, dot).expect("write the DOT file");
                        println!("graph written to {path} (render: dot -Tsvg {path} -o graph.svg)\n");
                    }
                    None => println!("{dot}"),
                }
            }
        }
        opt.step(&mut tape);
        tape.reset();
    }
    println!("profile of 1000 steps (forward = op kernels, backward = each op's rule):\n{}", tape.profile());
}
