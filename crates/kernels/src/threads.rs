//! The worker pool and the helpers that split a kernel's output over it.
//!
//! [`set_num_threads`] sets how many threads a kernel may use (default 1). Large GEMMs and
//! elementwise kernels over at least [`PARALLEL_MIN`] elements split their output into
//! disjoint parts, one per thread; the caller runs part 0, pool workers the rest.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cpu::vectorized;

static NUM_THREADS: AtomicUsize = AtomicUsize::new(1);

/// Sets the number of threads the kernels may use (values below 1 are treated as 1).
pub fn set_num_threads(n: usize) {
    NUM_THREADS.store(n.max(1), Ordering::Relaxed);
}

/// Serialises the tests that change the process-wide thread count: the test harness runs
/// tests in parallel, and one test's `set_num_threads(1)` must not land inside another's
/// two-thread section. Each such test holds the guard for its whole body.
#[cfg(test)]
pub(crate) fn thread_count_guard() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Number of threads the kernels may use (default 1).
#[inline]
pub fn num_threads() -> usize {
    NUM_THREADS.load(Ordering::Relaxed).max(1)
}

/// Below this many elements an elementwise kernel stays on one thread: handing work to the
/// other thread costs a few microseconds.
pub const PARALLEL_MIN: usize = 1 << 16;

/// Arrays shorter than this skip the AVX2 build of an elementwise loop: for a handful of
/// elements the 8-lane loop's set-up and longer scalar tail cost more than they save
/// (`crates/kernels/README.md` has the measurements).
pub(crate) const VECTOR_MIN: usize = 1024;

/// Runs `f(0..parts)` on the persistent worker pool (the caller runs part 0) and waits.
pub(crate) fn run_parallel(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    pool::run(parts, f);
}

/// A raw pointer that may cross threads; each thread derives a disjoint sub-slice from it.
struct SendPtr<T>(*mut T);
impl<T> Clone for SendPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SendPtr<T> {}
impl<T> SendPtr<T> {
    /// The `len` elements from `start` as a slice.
    ///
    /// # Safety
    /// `start..start + len` lies inside the slice the pointer came from, which outlives the
    /// result, and no other reference to that range exists meanwhile.
    unsafe fn slice<'a>(self, start: usize, len: usize) -> &'a mut [T] {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), len) }
    }
}
// SAFETY: only used by `par_parts_sized` and `par_chunks_mut_n`, whose parts are disjoint
// ranges of each slice.
unsafe impl<T: Send> Send for SendPtr<T> {}
// SAFETY: as above; the pointer itself is only copied, never written through by two threads
// at the same index.
unsafe impl<T: Send> Sync for SendPtr<T> {}

/// Calls `f(offset, part)` on disjoint consecutive parts of `out`: on one thread, or split
/// across the configured threads ([`set_num_threads`]) when `out` is large. Arrays of
/// 1,024 elements or more run through an AVX2+FMA build of `f` when the CPU has them.
pub fn par_chunks_mut<T: Send>(out: &mut [T], f: impl Fn(usize, &mut [T]) + Sync) {
    par_parts(out, 16, f);
}

/// [`par_chunks_mut`] with parts made of whole rows of `row` elements (`out.len()` a
/// multiple of `row`, `row >= 1`).
pub fn par_rows_mut<T: Send>(out: &mut [T], row: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    debug_assert!(row >= 1 && out.len().is_multiple_of(row));
    par_parts(out, row, f);
}

/// Parts of whole `unit`s (16 elements is a cache line of `f32`).
fn par_parts<T: Send>(out: &mut [T], unit: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    par_parts_sized(out, unit, out.len(), f);
}

/// [`par_parts`] for a kernel that touches `work` elements in all (at least `out.len()`),
/// which decides whether it is vectorised and split.
pub(crate) fn par_parts_sized<T: Send>(out: &mut [T], unit: usize, work: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let ptr = SendPtr(out.as_mut_ptr());
    split(out.len(), unit, work, |start, end| {
        // SAFETY: `split` hands out disjoint ranges inside `0..out.len()`, each once, and
        // returns after all of them: each part is exclusive while it lives.
        f(start, unsafe { ptr.slice(start, end - start) })
    });
}

/// [`par_chunks_mut`] over `N` slices of one length at once: `f(offset, parts)` receives
/// the same range of each (e.g. an optimizer's parameter, moment and state buffers, which
/// an elementwise update walks together).
///
/// # Panics
/// If the slices' lengths differ.
pub fn par_chunks_mut_n<T: Send, const N: usize>(outs: [&mut [T]; N], f: impl Fn(usize, [&mut [T]; N]) + Sync) {
    let n = outs.first().map_or(0, |o| o.len());
    assert!(
        outs.iter().all(|o| o.len() == n),
        "par_chunks_mut_n: slices of lengths {:?} differ",
        outs.iter().map(|o| o.len()).collect::<Vec<_>>()
    );
    let ptrs = outs.map(|o| SendPtr(o.as_mut_ptr()));
    split(n, 16, n, |start, end| {
        // SAFETY: as in `par_parts_sized`, for each of the N slices (all of length n).
        f(start, ptrs.map(|p| unsafe { p.slice(start, end - start) }))
    });
}

/// Cuts `0..n` into one range of whole `unit`s per thread and calls `part(start, end)` for
/// each (the caller's thread takes the first), vectorised from [`VECTOR_MIN`] elements of
/// `work` and split from [`PARALLEL_MIN`]; returns when every range is done. On one thread
/// the range is all of `0..n`, even when empty; split, empty ranges are skipped.
fn split(n: usize, unit: usize, work: usize, part: impl Fn(usize, usize) + Sync) {
    let threads = num_threads();
    if work < VECTOR_MIN {
        part(0, n);
        return;
    }
    if threads <= 1 || work < PARALLEL_MIN {
        vectorized(|| part(0, n));
        return;
    }
    let chunk = n.div_ceil(threads).next_multiple_of(unit);
    run_parallel(threads, &|t| {
        let start = (t * chunk).min(n);
        let end = ((t + 1) * chunk).min(n);
        if start < end {
            vectorized(|| part(start, end));
        }
    });
}

/// Persistent pool of worker threads, started lazily and grown (never per call) when
/// more threads are requested.
///
/// A job is a borrowed `&dyn Fn(usize)` called with indices `0..n`: the caller runs
/// index 0 and workers `1..n` run the rest; `run` returns only after every part has
/// finished, which is what makes lending the (lifetime-erased) closure sound.
///
/// Hand-off allocates nothing: the job is published under a `Mutex` and announced by
/// bumping an atomic epoch. Workers spin briefly on the epoch after each job (kernel
/// calls tend to come in bursts) and then park on a `Condvar`; the caller likewise
/// spins briefly on the completion counter before parking.
mod pool {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
    use std::time::{Duration, Instant};

    /// How long an idle worker (or a waiting caller) spins before parking.
    const SPIN: Duration = Duration::from_micros(100);

    type Job<'a> = dyn Fn(usize) + Sync + 'a;

    /// Lifetime-erased pointer to the current job.
    #[derive(Clone, Copy)]
    struct JobPtr(*const Job<'static>);

    // SAFETY: the pointee is `Sync` and outlives every use (see `run`).
    unsafe impl Send for JobPtr {}

    struct State {
        job: Option<JobPtr>,
        /// Participants of the current job, caller included.
        active: usize,
        spawned: usize,
        /// Workers currently parked on `work`.
        sleepers: usize,
    }

    struct Pool {
        state: Mutex<State>,
        /// Bumped (under `state`) each time a job is published.
        epoch: AtomicU64,
        /// Workers of the current job that have not finished yet.
        remaining: AtomicUsize,
        panicked: AtomicBool,
        work: Condvar,
        done: Condvar,
        /// Held for a whole job, so concurrent callers do not interleave.
        submit: Mutex<()>,
    }

    fn pool() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        POOL.get_or_init(|| Pool {
            state: Mutex::new(State { job: None, active: 0, spawned: 0, sleepers: 0 }),
            epoch: AtomicU64::new(0),
            remaining: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            work: Condvar::new(),
            done: Condvar::new(),
            submit: Mutex::new(()),
        })
    }

    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spins until `ready()` or until [`SPIN`] has elapsed; returns whether it is ready.
    fn spin_until(ready: impl Fn() -> bool) -> bool {
        let start = Instant::now();
        loop {
            for _ in 0..64 {
                if ready() {
                    return true;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() > SPIN {
                return ready();
            }
        }
    }

    /// Runs `f(0..n)` on `n` threads (the caller plus `n - 1` workers) and waits. If the
    /// pool is busy with another caller's job, runs all parts on the calling thread.
    pub(crate) fn run(n: usize, f: &Job<'_>) {
        let pool = pool();
        let Ok(_submit) = pool.submit.try_lock() else {
            (0..n).for_each(f);
            return;
        };
        {
            let mut st = lock(&pool.state);
            while st.spawned < n - 1 {
                st.spawned += 1;
                let index = st.spawned;
                std::thread::Builder::new()
                    .name(format!("tapegrad-worker-{index}"))
                    .spawn(move || worker(index))
                    .expect("tapegrad: failed to spawn worker thread");
            }
            // SAFETY: only the lifetime is erased; `run` waits below until no worker
            // uses the pointer any more (`remaining == 0`) and then clears it.
            let ptr: *const Job<'static> = unsafe { std::mem::transmute::<&Job<'_>, &'static Job<'static>>(f) };
            st.job = Some(JobPtr(ptr));
            st.active = n;
            pool.remaining.store(n - 1, Ordering::SeqCst);
            pool.epoch.fetch_add(1, Ordering::SeqCst);
            if st.sleepers > 0 {
                pool.work.notify_all();
            }
        }
        let mine = catch_unwind(AssertUnwindSafe(|| f(0)));
        let finished = || pool.remaining.load(Ordering::Acquire) == 0;
        if !spin_until(finished) {
            let mut st = lock(&pool.state);
            while !finished() {
                st = pool.done.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        }
        lock(&pool.state).job = None;
        let worker_panicked = pool.panicked.swap(false, Ordering::AcqRel);
        if let Err(payload) = mine {
            std::panic::resume_unwind(payload);
        }
        assert!(!worker_panicked, "tapegrad: a kernel worker thread panicked");
    }

    fn worker(index: usize) {
        let pool = pool();
        let mut seen = 0;
        loop {
            let published = || pool.epoch.load(Ordering::Acquire) != seen;
            let job = {
                let spun = spin_until(published);
                let mut st = lock(&pool.state);
                if !spun {
                    st.sleepers += 1;
                    while !published() {
                        st = pool.work.wait(st).unwrap_or_else(|e| e.into_inner());
                    }
                    st.sleepers -= 1;
                }
                seen = pool.epoch.load(Ordering::Acquire);
                match st.job {
                    Some(job) if index < st.active => job,
                    _ => continue,
                }
            };
            // SAFETY: the caller of `run` keeps the closure alive until `remaining`
            // drops to zero, which happens only after this call returns.
            let result = catch_unwind(AssertUnwindSafe(|| unsafe { (*job.0)(index) }));
            if result.is_err() {
                pool.panicked.store(true, Ordering::Release);
            }
            if pool.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                // Taking the lock orders this notification after a caller that saw
                // `remaining != 0` under the lock has started waiting.
                let _st = lock(&pool.state);
                pool.done.notify_one();
            }
        }
    }
}
