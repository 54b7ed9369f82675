//! One training step of a two-layer network: its Wengert list, its Graphviz picture and
//! its profile.
//!
//! `cargo run --release --example two_layer_step [graph.dot]`
//!
//! With a path the DOT graph is written there (all or nothing, checked before any work),
//! else printed. A bad path or a write error is one line on stderr and exit status 2.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tapegrad::{Tape, Tensor, TorchRng};
use tapegrad_demo::args::check_outputs;
use tapegrad_demo::output::{self, fail};
use tapegrad_nn::{L1Loss, Module, Optimizer, Reduction, Sequential, Sgd};

/// One training step of a 4-8-2 network: its Wengert list, its Graphviz picture and the
/// profile of 1000 steps.
#[derive(Parser, Debug)]
#[command(name = "two_layer_step")]
struct Cli {
    /// Write the DOT graph to this file instead of printing it.
    #[arg(value_name = "GRAPH.dot")]
    dot: Option<PathBuf>,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(end) => end,
    }
}

fn run() -> Result<(), ExitCode> {
    let cli: Cli = output::parse("two_layer_step")?;
    check_outputs(&[("the DOT file", cli.dot.as_deref())]).map_err(|e| fail(&e))?;
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
                output::write(&format!("step 0, loss {:.6}\n\n", loss.item()))?;
                output::write(&format!("{}\n", tape.listing().values(true).grads(true)))?;
                let dot = tape.to_dot(&model.named_parameters());
                match &cli.dot {
                    Some(path) => {
                        tapegrad_nn::files::write_atomic(path, dot.as_bytes())
                            .map_err(|e| fail(&format!("the DOT file: {}: {e}", path.display())))?;
                        let p = path.display();
                        output::write(&format!("graph written to {p} (render: dot -Tsvg {p} -o graph.svg)\n\n"))?;
                    }
                    None => output::write(&format!("{dot}\n"))?,
                }
            }
        }
        opt.step(&mut tape);
        tape.reset();
    }
    output::write(&format!(
        "profile of 1000 steps (forward = op kernels, backward = each op's rule):\n{}\n",
        tape.profile()
    ))
}
