//! The optimizers' update loops split large parameters over the kernel threads: on two
//! threads every optimizer gives the same bits as on one. (One test in its own binary, as
//! the thread count is process-wide.)

use tapegrad::{Tape, Tensor, TorchRng};
use tapegrad_nn::{Adam, AdamW, Optimizer, Sgd};

/// Makes a fresh optimizer.
type Make = fn() -> Box<dyn Optimizer<f32>>;

/// Three steps of `opt` on one parameter of `n` elements with random gradients, on
/// `threads` kernel threads; the parameter after each step.
fn run(mut opt: Box<dyn Optimizer<f32>>, n: usize, threads: usize) -> Vec<Vec<f32>> {
    tapegrad::set_num_threads(threads);
    let mut rng = TorchRng::manual_seed(7);
    let mut tape = Tape::<f32>::new();
    let p = tape.parameter(Tensor::<f32>::rand(&[n], &mut rng));
    let mut out = Vec::new();
    for _ in 0..3 {
        opt.zero_grad(&tape);
        let g: Vec<f32> = Tensor::<f32>::rand(&[n], &mut rng).data().iter().map(|u| 2.0 * u - 1.0).collect();
        let g = Tensor::from_slice(&g, &[n]);
        {
            let w = tape.var(p);
            (w * tape.input(g)).sum().backward(); // gradient exactly g
        }
        tape.reset();
        opt.step(&mut tape);
        out.push(tape.param_value(p).into_vec());
    }
    tapegrad::set_num_threads(1);
    out
}

#[test]
fn two_threads_update_to_the_same_bits_as_one() {
    let optimizers: [(&str, Make); 6] = [
        ("sgd", || Box::new(Sgd::new(0.1))),
        ("sgd weight decay", || Box::new(Sgd::new(0.1).weight_decay(0.01))),
        ("sgd momentum", || Box::new(Sgd::new(0.1).momentum(0.9).dampening(0.1))),
        ("sgd nesterov weight decay", || Box::new(Sgd::new(0.1).momentum(0.9).nesterov(true).weight_decay(0.01))),
        ("adam weight decay", || Box::new(Adam::new(1e-3).weight_decay(0.01))),
        ("adamw", || Box::new(AdamW::new(1e-3))),
    ];
    // above the split threshold (65,536 elements), not a multiple of the 16-element unit
    let n = 3 * 65_536 + 37;
    for (name, make) in optimizers {
        let (one, two) = (run(make(), n, 1), run(make(), n, 2));
        for (step, (a, b)) in one.iter().zip(&two).enumerate() {
            let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{name}: step {} differs between one and two threads", step + 1);
        }
        assert_ne!(one[0], one[2], "{name}: the parameter did not move");
    }
}
