//! A steady-state classification step — MLP, log_softmax, nll_loss (CrossEntropyLoss),
//! backward through the fused gradients, SGD with momentum, and an argmax — makes zero heap
//! allocations after one warm-up step. Counted as in zero_alloc.rs, with a global allocator
//! that counts this thread's allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tapegrad::{Tape, Tensor, TorchRng};
use tapegrad_nn::{CrossEntropyLoss, Module, Optimizer, Reduction, Sequential, Sgd};

struct Counting;

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the thread-local counter
// itself never allocates (const-initialised Cell).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn cross_entropy_step_allocates_nothing() {
    let mut rng = TorchRng::manual_seed(3);
    let mut tape = Tape::<f32>::new();
    let model = Sequential::mlp(&tape, &[64, 64, 10], &mut rng);
    let mut opt = Sgd::new(0.05).momentum(0.9);
    let ce = CrossEntropyLoss::new(Reduction::Mean);
    let x = Tensor::<f32>::rand(&[64, 64], &mut rng);
    let t: Vec<f32> = (0..64).map(|_| rng.randint(0, 10) as f32).collect();
    let mut step = |tape: &mut Tape<f32>| {
        tape.reset();
        tape.zero_grad();
        let input = tape.leaf_from_slice(x.data(), x.shape(), false);
        let target = tape.leaf_from_slice(&t, &[64], false);
        let logits = model.forward(input);
        let loss = ce.forward(logits, target);
        loss.backward();
        let first = logits.argmax(1).with_value(|v| v[0]);
        tape.reset();
        opt.step(tape);
        first
    };
    step(&mut tape); // warm-up: buffers grow to their final sizes
    let before = COUNT.with(|c| c.get());
    for _ in 0..3 {
        step(&mut tape);
    }
    let n = COUNT.with(|c| c.get()) - before;
    assert_eq!(n, 0, "{n} heap allocations in 3 steady-state cross-entropy steps");
}
