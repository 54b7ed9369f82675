//! A steady-state training step (after one warm-up step, on a reset tape) makes zero heap
//! allocations: the seed network, mlp-mnist, seed-accum2, deep-narrow and the scalar
//! engine, and the seed network's step with every optimizer (SGD with momentum, Adam, AdamW:
//! their state is allocated at the first step only) and the MSE loss, and a classification
//! step (MLP, log_softmax + nll_loss as CrossEntropyLoss, fused gradients, SGD with momentum,
//! argmax); on two threads mlp-mnist, mlp-wide and split Adam / SGD-momentum updates; the
//! three runs of examples/train_names (embedding, padded token losses, 1 or 32 accumulated
//! micro-batches with either scaling), batch encoding included.
//!
//! Counted with a global allocator: every allocation of the thread inside [`allocations`]
//! and of each kernel pool worker goes to one process-wide counter (the test harness's own
//! threads, which start and report other tests meanwhile, are not counted). The pool's
//! workers are spawned and marked before the counted part starts. The warm-up step runs on
//! the calling thread alone ([`warm_up`]), also on two threads: the caller sizes the GEMM's
//! packing buffers for every part of a split product before handing the parts out, so a
//! worker needs no buffers of its own, whichever parts it claims.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tapegrad::kernels::threads::{par_chunks_mut, PARALLEL_MIN};
use tapegrad::{Tape, Tensor, TorchRng};
use tapegrad_bench::workloads::{Dense, ScalarMlp, Workload};
use tapegrad_nn::names::{self, NameBatch};
use tapegrad_nn::{
    Accumulation, Adam, AdamW, CrossEntropyLoss, L1Loss, Loss, LossScale, MSELoss, Module, Optimizer, Reduction,
    Sequential, Sgd,
};

struct Counting;

/// Allocations (and reallocations) made by counted threads.
static COUNT: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Whether this thread's allocations go to [`COUNT`]: set inside [`allocations`] and,
    /// for good, on the pool's workers.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count_one() {
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        COUNT.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: forwards every call to the system allocator unchanged; the counter never
// allocates (an atomic and a const-initialised thread-local Cell).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f(on_the_caller)` once on the calling thread and once on each pool worker, at the
/// same time: a job of `num_threads()` parts, each waiting until all have started, so no
/// thread can run two. Spawns the workers if the pool has none yet. (The pool keeps the
/// workers of the largest thread count used so far, and a job's parts may go to any of
/// them: every test in this file uses at most 2 threads, so there is one worker.)
fn on_every_pool_thread(f: impl Fn(bool) + Sync) {
    let threads = tapegrad::num_threads();
    let caller = std::thread::current().id();
    let started = AtomicUsize::new(0);
    let mut parts = vec![0u8; PARALLEL_MIN * threads];
    par_chunks_mut(&mut parts, |_, _| {
        f(std::thread::current().id() == caller);
        started.fetch_add(1, Ordering::SeqCst);
        // a guard against a hang, not a timing: the parts start within microseconds
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while started.load(Ordering::SeqCst) < threads {
            assert!(std::time::Instant::now() < deadline, "the pool did not run {threads} parts at once");
            std::thread::yield_now();
        }
    });
}

/// The heap allocations `f` makes on the calling thread and on the pool's workers. The
/// workers are started (their spawn allocates) and marked first, outside the count.
fn allocations(f: impl FnOnce()) -> u64 {
    if tapegrad::num_threads() > 1 {
        on_every_pool_thread(|caller| {
            if !caller {
                COUNTED.with(|c| c.set(true));
            }
        });
    }
    COUNTED.with(|c| c.set(true));
    let before = COUNT.load(Ordering::SeqCst);
    f();
    let n = COUNT.load(Ordering::SeqCst) - before;
    COUNTED.with(|c| c.set(false));
    n
}

/// Serialises this file's tests: the thread count is process-wide, and the first two-thread
/// call spawns the pool's worker (allocating on the calling thread), which must not land in
/// another test's counted steps.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A value handed to another thread although its type does not allow it.
struct AssertSend<T>(T);
// SAFETY: used only by `warm_up`, which calls the step on the thread that owns it.
unsafe impl<T> Send for AssertSend<T> {}

/// Runs the warm-up `step` on the calling thread alone. On more threads it runs inside a
/// pool job whose other parts wait on the workers meanwhile: the step's kernel calls find
/// the pool busy and run all their parts on the caller, so no worker has run a part of
/// any product before the counted steps, the adversarial case for buffers a worker would
/// otherwise grow the first time it claims a part of the largest product.
fn warm_up(mut step: impl FnMut()) {
    if tapegrad::num_threads() == 1 {
        return step();
    }
    let step = std::sync::Mutex::new(AssertSend(&mut step as &mut dyn FnMut()));
    on_every_pool_thread(|caller| {
        if caller {
            (step.lock().unwrap_or_else(|e| e.into_inner()).0)();
        }
    });
}

fn steady_state(name: &str, mut w: Box<dyn Workload>) {
    warm_up(|| {
        w.step();
    });
    let n = allocations(|| {
        for _ in 0..3 {
            w.step();
        }
    });
    assert_eq!(n, 0, "{name}: {n} heap allocations in 3 steady-state steps");
}

#[test]
fn seed_step_allocates_nothing() {
    let _serial = serial();
    steady_state("seed", Box::new(Dense::seed()));
}

#[test]
fn seed_accum2_step_allocates_nothing() {
    let _serial = serial();
    steady_state("seed-accum2", Box::new(Dense::seed_accum2()));
}

#[test]
fn mlp_mnist_step_allocates_nothing() {
    let _serial = serial();
    steady_state("mlp-mnist", Box::new(Dense::mlp_mnist()));
}

#[test]
fn deep_narrow_step_allocates_nothing() {
    let _serial = serial();
    steady_state("deep-narrow", Box::new(Dense::deep_narrow()));
}

#[test]
fn scalar_engine_step_allocates_nothing() {
    let _serial = serial();
    steady_state("scalar-mlp", Box::new(ScalarMlp::new()));
}

/// The seed network (4-8-2, batch 2) trained with `opt` and `loss`: a warm-up step, then
/// three steps that must not allocate.
fn optimizer_steady_state(name: &str, opt: &mut dyn Optimizer<f32>, loss: &dyn Loss<f32>) {
    network_steady_state(name, &[4, 8, 2], 2, opt, loss);
}

/// An MLP of `layers` on a batch of `batch` trained with `opt` and `loss`: a warm-up step,
/// then three steps that must not allocate.
fn network_steady_state(
    name: &str,
    layers: &[usize],
    batch: usize,
    opt: &mut dyn Optimizer<f32>,
    loss: &dyn Loss<f32>,
) {
    let mut tape = Tape::<f32>::new();
    let model = Sequential::mlp(&tape, layers, &mut TorchRng::manual_seed(2));
    let mut rng = TorchRng::manual_seed(1);
    let (inp, out) = (layers[0], *layers.last().unwrap());
    let x = tape.parameter_with(Tensor::rand(&[batch, inp], &mut rng), false);
    let t = tape.parameter_with(Tensor::rand(&[batch, out], &mut rng), false);
    let mut step = |tape: &mut Tape<f32>| {
        opt.zero_grad(tape);
        tape.reset();
        loss.forward(model.forward(tape.var(x)), tape.var(t)).backward();
        tape.reset();
        opt.step(tape);
    };
    warm_up(|| {
        step(&mut tape);
    });
    let n = allocations(|| {
        for _ in 0..3 {
            step(&mut tape);
        }
    });
    assert_eq!(n, 0, "{name}: {n} heap allocations in 3 steady-state steps");
}

#[test]
fn optimizer_steps_allocate_nothing() {
    let _serial = serial();
    let l1 = L1Loss::new(Reduction::Mean);
    optimizer_steady_state("sgd momentum nesterov", &mut Sgd::new(0.1).nesterov(true).momentum(0.9), &l1);
    optimizer_steady_state("sgd weight decay", &mut Sgd::new(0.1).weight_decay(0.1), &l1);
    optimizer_steady_state("adam", &mut Adam::new(0.01).weight_decay(0.1), &l1);
    optimizer_steady_state("adamw", &mut AdamW::new(0.01), &l1);
    optimizer_steady_state("adam, mse", &mut Adam::new(0.01), &MSELoss::new(Reduction::Sum));
}

#[test]
fn the_counter_counts() {
    let _serial = serial();
    let n = allocations(|| {
        std::hint::black_box(vec![1u8; 100]);
    });
    assert_eq!(n, 1);
}

/// An allocation on a pool worker is counted as well.
#[test]
fn the_counter_counts_the_pool_workers() {
    let _serial = serial();
    tapegrad::set_num_threads(2);
    let n = allocations(|| {
        on_every_pool_thread(|caller| {
            if !caller {
                std::hint::black_box(vec![1u8; 4096]);
            }
        })
    });
    tapegrad::set_num_threads(1);
    // the job's own buffer, and the worker's vector
    assert_eq!(n, 2);
}

/// A steady-state classification step allocates nothing either.
#[test]
fn cross_entropy_step_allocates_nothing() {
    let _serial = serial();
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
    warm_up(|| {
        step(&mut tape);
    });
    let n = allocations(|| {
        for _ in 0..3 {
            step(&mut tape);
        }
    });
    assert_eq!(n, 0, "{n} heap allocations in 3 steady-state cross-entropy steps");
}

/// On two threads (the kernels' parallel paths and the optimizers' split updates) the
/// calling thread allocates nothing either, once the pool's worker has started.
#[test]
fn two_thread_steps_allocate_nothing() {
    let _serial = serial();
    tapegrad::set_num_threads(2);
    steady_state("mlp-mnist", Box::new(Dense::mlp_mnist()));
    steady_state("mlp-wide", Box::new(Dense::mlp_wide()));
    // 512x256 weights: above the size from which updates are split between the threads
    let l1 = L1Loss::new(Reduction::Mean);
    let layers = [256, 512, 256];
    network_steady_state("adam, two threads", &layers, 64, &mut Adam::new(0.01).weight_decay(0.1), &l1);
    network_steady_state("sgd momentum, two threads", &layers, 64, &mut Sgd::new(0.1).momentum(0.9), &l1);
    tapegrad::set_num_threads(1);
}

/// A steady-state step of a network with BatchNorm1d or LayerNorm after each hidden layer,
/// two accumulated micro-batches (BatchNorm's running statistics updated in each forward),
/// gradient clipping by the 2-norm and the infinity norm, clipping by value, an Adam step,
/// and an evaluation-mode forward allocates nothing.
#[test]
fn norm_and_clipping_steps_allocate_nothing() {
    use tapegrad_nn::{clip_grad_norm, clip_grad_value, Norm, NormType};
    let _serial = serial();
    for norm in [Norm::Batch, Norm::Layer] {
        let mut rng = TorchRng::manual_seed(4);
        let mut tape = Tape::<f32>::new();
        let mut model = Sequential::mlp_norm(&tape, &[6, 16, 16, 3], norm, &mut rng);
        let mut opt = Adam::new(0.01);
        let l1 = L1Loss::new(Reduction::Mean);
        let halves: Vec<_> = (0..2)
            .map(|_| {
                let x = tape.parameter_with(Tensor::rand(&[4, 6], &mut rng), false);
                (x, tape.parameter_with(Tensor::rand(&[4, 3], &mut rng), false))
            })
            .collect();
        let mut step = |tape: &mut Tape<f32>, model: &mut Sequential<f32>| {
            model.set_training(true);
            opt.zero_grad(tape);
            for &(x, t) in &halves {
                tape.reset();
                l1.forward(model.forward(tape.var(x)), tape.var(t)).mul_scalar(0.5).backward();
            }
            tape.reset();
            let total = clip_grad_norm(tape, 0.5, NormType::L2) + clip_grad_norm(tape, 10.0, NormType::Inf);
            clip_grad_value(tape, 0.1);
            opt.step(tape);
            model.set_training(false);
            let y = model.forward(tape.var(halves[0].0));
            std::hint::black_box((total, y.with_value(|v| v[0])));
        };
        step(&mut tape, &mut model); // warm-up: buffers grow to their final sizes
        let n = allocations(|| {
            for _ in 0..3 {
                step(&mut tape, &mut model);
            }
        });
        assert_eq!(n, 0, "{norm:?}: {n} heap allocations in 3 steady-state steps");
        let tracked = model.named_buffers().iter().find(|(n, _)| n.ends_with("tracked")).map(|(_, b)| b.to_f64_vec());
        assert_eq!(tracked, (norm == Norm::Batch).then(|| vec![8.0]), "two forwards per step, four steps");
    }
}

/// One run of examples/train_names (32 names a step, `k` micro-batches scaled by `scale`):
/// a warm-up step on the longest batch, then three steps on other batches that must not
/// allocate, encoding the batch included.
fn names_steady_state(k: usize, scale: LossScale) {
    let _serial = serial();
    let all = names::surnames();
    let mut tape = Tape::<f32>::new();
    let model = names::char_mlp(&tape, 3, 10, 200, &mut TorchRng::manual_seed(0));
    let mut opt = Sgd::new(0.1);
    let ce = CrossEntropyLoss::new(Reduction::Mean);
    let acc = Accumulation::new(k, scale);
    let (mut batch, mut losses) = (NameBatch::<f32>::default(), Vec::with_capacity(k));
    let batches: Vec<&[&str]> = all.chunks(32).take(4).collect();
    let longest = batches.iter().max_by_key(|b| b.iter().map(|n| n.len()).max()).unwrap();
    let mut step = |tape: &mut Tape<f32>, names: &[&str]| {
        batch.fill(names.iter().copied(), 3);
        let data = (&batch.contexts, &batch.targets);
        acc.run_into((tape, &model, &ce), data, Some(&mut opt), &mut losses);
    };
    step(&mut tape, longest);
    let n = allocations(|| {
        for b in &batches[..3] {
            step(&mut tape, b);
        }
    });
    assert_eq!(n, 0, "names, {k} micro-batches ({scale:?}): {n} heap allocations in 3 steady-state steps");
}

#[test]
fn names_full_batch_step_allocates_nothing() {
    names_steady_state(1, LossScale::None);
}

#[test]
fn names_loss_over_k_step_allocates_nothing() {
    names_steady_state(32, LossScale::DivideByK);
}

#[test]
fn names_tokens_total_step_allocates_nothing() {
    names_steady_state(32, LossScale::PerLossTerm);
}
