//! The worker pool and the helpers that split a kernel's output over it.
//!
//! [`set_num_threads`] sets how many threads a kernel may use (default 1). Large GEMMs and
//! elementwise kernels over at least [`PARALLEL_MIN`] elements split their output into
//! disjoint parts, one per thread; the caller runs the first, and it and the pool workers
//! claim the others in turn.

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
/// (`docs/kernels.md` has the measurements).
pub(crate) const VECTOR_MIN: usize = 1024;

/// Runs `f(0..parts)` on the persistent worker pool (the caller runs part 0, and it and the
/// workers claim the rest) and waits.
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
    if work < VECTOR_MIN {
        // the common case of small tensors, without the detour through a raw pointer
        return f(0, out);
    }
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
/// each (the first on the calling thread, the others on whichever thread claims them),
/// vectorised from [`VECTOR_MIN`] elements of `work` and split from [`PARALLEL_MIN`];
/// returns when every range is done. On one thread the range is all of `0..n`, even when
/// empty; split, empty ranges are skipped.
fn split(n: usize, unit: usize, work: usize, part: impl Fn(usize, usize) + Sync) {
    if work < VECTOR_MIN {
        part(0, n);
        return;
    }
    let threads = num_threads();
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

/// How [`split`] cuts an array: whole below [`PARALLEL_MIN`] elements, one part per thread
/// from it on.
#[cfg(test)]
mod split_tests {
    use super::*;
    use std::sync::Mutex;

    /// The parts `par_chunks_mut` (or `par_rows_mut` with rows of `row`) hands out for `n`
    /// elements on `threads` threads, as sorted (offset, length) pairs.
    fn parts_of(threads: usize, n: usize, row: Option<usize>) -> Vec<(usize, usize)> {
        let _guard = thread_count_guard();
        set_num_threads(threads);
        let seen = Mutex::new(Vec::new());
        let record = |at: usize, part: &mut [u8]| seen.lock().unwrap().push((at, part.len()));
        match row {
            Some(row) => par_rows_mut(&mut vec![0u8; n], row, record),
            None => par_chunks_mut(&mut vec![0u8; n], record),
        }
        set_num_threads(1);
        let mut parts = seen.into_inner().unwrap();
        parts.sort();
        parts
    }

    fn parts(threads: usize, n: usize) -> Vec<(usize, usize)> {
        parts_of(threads, n, None)
    }

    #[test]
    fn small_arrays_stay_whole_and_large_ones_split() {
        for n in [0, 1, VECTOR_MIN - 1, VECTOR_MIN, PARALLEL_MIN - 16] {
            assert_eq!(parts(2, n), [(0, n)], "{n} elements on two threads");
        }
        let half = PARALLEL_MIN / 2;
        assert_eq!(parts(2, PARALLEL_MIN), [(0, half), (half, half)]);
        assert_eq!(parts(2, PARALLEL_MIN + 20), [(0, half + 16), (half + 16, half + 4)], "parts of whole units");
        assert_eq!(parts(1, 4 * PARALLEL_MIN), [(0, 4 * PARALLEL_MIN)]);
        // one row cannot be split: the second thread's part is empty and not run
        assert_eq!(parts_of(2, 2 * PARALLEL_MIN, Some(2 * PARALLEL_MIN)), [(0, 2 * PARALLEL_MIN)]);
    }

    /// Arrays of [`VECTOR_MIN`] elements or more run through the AVX2 build of the loop
    /// when the instruction set in use has AVX2, on every thread; shorter ones never do.
    #[test]
    fn arrays_from_vector_min_run_the_avx2_build() {
        use crate::cpu::{has_avx2, InAvx2Build};
        let _guard = thread_count_guard();
        if !has_avx2() {
            eprintln!("SKIPPED: the AVX2 build of the elementwise loops (no AVX2 in the instruction set in use)");
        }
        for threads in [1, 2] {
            set_num_threads(threads);
            for n in [VECTOR_MIN - 1, VECTOR_MIN, PARALLEL_MIN] {
                let seen = Mutex::new(Vec::new());
                par_chunks_mut(&mut vec![0u8; n], |_, _| seen.lock().unwrap().push(InAvx2Build::active()));
                let expected = n >= VECTOR_MIN && has_avx2();
                let seen = seen.into_inner().unwrap();
                assert!(seen.iter().all(|&v| v == expected), "{n} elements on {threads} threads: {seen:?}");
            }
        }
        set_num_threads(1);
    }
}

/// Persistent pool of worker threads, started lazily and grown (never per call) when
/// more threads are requested.
///
/// A job is a borrowed `&dyn Fn(usize)` called once with each index of `0..n`. The caller
/// runs part 0 (so per-thread scratch sized by part 0, the largest, is ready on the calling
/// thread whatever else it runs); the other parts are claimed, not assigned: the caller
/// and the workers each take the next unclaimed index until none is left, so a worker that
/// wakes late (a parked thread, or a virtual CPU the host has descheduled) leaves its part
/// to the caller instead of holding the whole call up. Which thread runs a part never changes what the part computes. `run` returns only
/// after every part has finished, which is what makes lending the (lifetime-erased)
/// closure sound.
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
        /// Parts of the current job.
        parts: usize,
        spawned: usize,
        /// Workers currently parked on `work`.
        sleepers: usize,
    }

    struct Pool {
        state: Mutex<State>,
        /// Bumped (under `state`) each time a job is published.
        epoch: AtomicU64,
        /// The current job's generation (the epoch, 48 bits) above the next unclaimed part
        /// (16 bits): a claim succeeds only for the job it was made for, so a worker that
        /// read an older job never runs a newer job's part with the older closure (the
        /// generation repeats after 2^48 jobs).
        claims: AtomicU64,
        /// Parts of the current job that have not finished yet.
        remaining: AtomicUsize,
        panicked: AtomicBool,
        work: Condvar,
        done: Condvar,
        /// Held for a whole job, so concurrent callers do not interleave.
        submit: Mutex<()>,
    }

    impl Pool {
        fn new() -> Self {
            Pool {
                state: Mutex::new(State { job: None, parts: 0, spawned: 0, sleepers: 0 }),
                epoch: AtomicU64::new(0),
                claims: AtomicU64::new(0),
                remaining: AtomicUsize::new(0),
                panicked: AtomicBool::new(false),
                work: Condvar::new(),
                done: Condvar::new(),
                submit: Mutex::new(()),
            }
        }
    }

    /// The process's pool (in test builds watched for deadlocks by `tests::watch`).
    fn pool() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        let mut created = false;
        let pool = POOL.get_or_init(|| {
            created = true;
            Pool::new()
        });
        #[cfg(test)]
        if created {
            tests::watch(pool);
        }
        let _ = created;
        pool
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

    /// Bits of [`Pool::claims`] that count parts.
    const PART_BITS: u32 = 16;

    /// The generation of the job published at `epoch`, as kept in [`Pool::claims`].
    fn generation(epoch: u64) -> u64 {
        epoch & (u64::MAX >> PART_BITS)
    }

    /// Takes the next unclaimed part of the job of generation `generation` (of `parts`
    /// parts), or `None` when they are all taken or that job is no longer current.
    fn claim(pool: &Pool, generation: u64, parts: usize) -> Option<usize> {
        let mut current = pool.claims.load(Ordering::Acquire);
        loop {
            let next = (current & ((1 << PART_BITS) - 1)) as usize;
            if current >> PART_BITS != generation || next >= parts {
                return None;
            }
            match pool.claims.compare_exchange_weak(current, current + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(next),
                Err(seen) => current = seen,
            }
        }
    }

    /// Runs the parts of the job of `generation` that this thread can claim. Returns
    /// whether it finished the job's last part, and the first panic of its parts (also
    /// recorded in `pool.panicked`).
    fn run_claimed(pool: &Pool, job: JobPtr, generation: u64, parts: usize) -> (bool, Option<Panic>) {
        let (mut last, mut panic) = (false, None);
        while let Some(i) = claim(pool, generation, parts) {
            // SAFETY: the claim succeeded for the current job, whose part `i` is not
            // finished yet, so its caller is still inside `run` and the closure alive.
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| unsafe { (*job.0)(i) })) {
                pool.panicked.store(true, Ordering::Release);
                panic.get_or_insert(payload);
            }
            last = pool.remaining.fetch_sub(1, Ordering::AcqRel) == 1;
        }
        (last, panic)
    }

    /// A caught panic's payload.
    type Panic = Box<dyn std::any::Any + Send>;

    /// Runs `f(0..n)` on up to `n` threads (the caller plus `n - 1` workers) and waits.
    /// If the pool is busy with another caller's job, runs all parts on the calling thread.
    pub(crate) fn run(n: usize, f: &Job<'_>) {
        run_on(pool(), n, f);
    }

    /// [`run`] on `pool`.
    fn run_on(pool: &'static Pool, n: usize, f: &Job<'_>) {
        assert!(n < 1 << PART_BITS, "tapegrad: {n} parts for the thread pool");
        let Ok(_submit) = pool.submit.try_lock() else {
            (0..n).for_each(f);
            return;
        };
        // SAFETY: only the lifetime is erased; `run` returns only once every part has
        // finished (`remaining == 0`), and a part is only started after a successful claim
        // for this job, which cannot happen once all parts are taken.
        let job = JobPtr(unsafe { std::mem::transmute::<&Job<'_>, &'static Job<'static>>(f) });
        let generation = {
            let mut st = lock(&pool.state);
            while st.spawned < n - 1 {
                st.spawned += 1;
                let index = st.spawned;
                std::thread::Builder::new()
                    .name(format!("tapegrad-worker-{index}"))
                    .spawn(move || worker(pool))
                    .expect("tapegrad: failed to spawn worker thread");
            }
            st.job = Some(job);
            st.parts = n;
            pool.remaining.store(n, Ordering::SeqCst);
            let generation = generation(pool.epoch.fetch_add(1, Ordering::SeqCst).wrapping_add(1));
            // part 0 is the caller's; the claims start at 1
            pool.claims.store(generation << PART_BITS | 1, Ordering::SeqCst);
            if st.sleepers > 0 {
                pool.work.notify_all();
            }
            generation
        };
        let mut mine = catch_unwind(AssertUnwindSafe(|| f(0))).err();
        if mine.is_some() {
            pool.panicked.store(true, Ordering::Release);
        }
        pool.remaining.fetch_sub(1, Ordering::AcqRel);
        let (_, other) = run_claimed(pool, job, generation, n);
        mine = mine.or(other);
        let finished = || pool.remaining.load(Ordering::Acquire) == 0;
        if !spin_until(finished) {
            let mut st = lock(&pool.state);
            while !finished() {
                st = pool.done.wait(st).unwrap_or_else(|e| e.into_inner());
            }
        }
        lock(&pool.state).job = None;
        let panicked = pool.panicked.swap(false, Ordering::AcqRel);
        if let Some(payload) = mine {
            std::panic::resume_unwind(payload);
        }
        assert!(!panicked, "tapegrad: a kernel worker thread panicked");
    }

    fn worker(pool: &'static Pool) {
        let mut seen = 0;
        loop {
            let published = || pool.epoch.load(Ordering::Acquire) != seen;
            let spun = spin_until(published);
            let (job, generation, parts) = {
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
                    Some(job) => (job, generation(seen), st.parts),
                    None => continue,
                }
            };
            if let (true, _) = run_claimed(pool, job, generation, parts) {
                // Taking the lock orders this notification after a caller that saw
                // `remaining != 0` under the lock has started waiting.
                let _st = lock(&pool.state);
                pool.done.notify_one();
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::sync::atomic::AtomicU32;
        use std::sync::TryLockError;
        use std::thread::{self, ThreadId};

        /// How long a test waits for something that takes microseconds (a woken worker to
        /// start a part, an idle one to park): a deadlock guard, not a timing (a correct pool
        /// passes unless a runnable thread gets no CPU for this long; docs/testing.md).
        const GUARD: Duration = Duration::from_secs(30);

        /// Watches `pool` from a thread of its own: a job still in flight twice [`GUARD`]
        /// after it was published (a test job's parts take milliseconds, seconds under
        /// valgrind) has deadlocked, and the test process is aborted with a message, so a
        /// hang fails the run instead of stalling it, whichever test's job it is.
        pub(super) fn watch(pool: &'static Pool) {
            let watchdog = move || {
                let mut oldest: Option<(u64, Instant)> = None;
                loop {
                    thread::sleep(Duration::from_millis(200));
                    // never block: the watchdog must not change how the pool runs
                    let in_flight = match pool.state.try_lock() {
                        Ok(st) => st.job.is_some(),
                        Err(TryLockError::Poisoned(st)) => st.into_inner().job.is_some(),
                        Err(TryLockError::WouldBlock) => continue,
                    };
                    let epoch = pool.epoch.load(Ordering::Acquire);
                    oldest = match oldest {
                        Some((e, since)) if in_flight && e == epoch => {
                            if since.elapsed() > 2 * GUARD {
                                // not `eprintln!`, which the harness captures (lost in the abort)
                                let line =
                                    format!("tapegrad pool: job {epoch} unfinished after {:?}: deadlock\n", 2 * GUARD);
                                let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
                                std::process::abort();
                            }
                            oldest
                        }
                        _ if in_flight => Some((epoch, Instant::now())),
                        _ => None,
                    };
                }
            };
            thread::Builder::new().name("tapegrad-pool-watchdog".into()).spawn(watchdog).expect("watchdog thread");
        }

        /// A watched pool of the test's own, which no other test's job can hold.
        fn private_pool() -> &'static Pool {
            let pool = Box::leak(Box::new(Pool::new()));
            watch(pool);
            pool
        }

        /// Waits (bounded by [`GUARD`]) until `ready()`; panics with `what` if it never is.
        fn wait_until(what: &str, ready: impl Fn() -> bool) {
            let start = Instant::now();
            while !ready() {
                assert!(start.elapsed() < GUARD, "{what}: not after {GUARD:?}");
                thread::sleep(Duration::from_millis(1));
            }
        }

        /// Every part of every job runs exactly once, whoever claims it (on the shared
        /// pool, where other tests' jobs also make some run on the caller alone).
        #[test]
        fn each_part_runs_once() {
            for n in [2, 3, 4] {
                for _ in 0..200 {
                    let counts: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
                    run(n, &|i| {
                        counts[i].fetch_add(1, Ordering::Relaxed);
                    });
                    assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1), "n = {n}");
                }
            }
        }

        /// A job of n parts starts the workers it needs, n - 1 besides the caller, and
        /// no more (too few, and the caller runs the parts left over, with the same
        /// results).
        #[test]
        fn a_job_of_n_parts_has_n_minus_1_workers() {
            let pool = private_pool();
            // (parts, workers afterwards): the pool keeps the workers it has
            for (n, workers) in [(1, 0), (2, 1), (4, 3), (2, 3)] {
                run_on(pool, n, &|_| {});
                assert_eq!(lock(&pool.state).spawned, workers, "after a job of {n} parts");
            }
        }

        /// The workers run parts: the caller's part 0 waits until every other part has
        /// started on another thread, which a pool whose workers never run (or are never
        /// woken) cannot do. Between jobs the idle workers park and are counted as parked,
        /// so the later jobs check that parked workers are woken.
        #[test]
        fn workers_run_parts_while_the_caller_runs_its_own() {
            let pool = private_pool();
            let caller = thread::current().id();
            for job in 0..3 {
                let n = 3;
                if job > 0 {
                    wait_until("the idle workers parked", || lock(&pool.state).sleepers == n - 1);
                }
                let started: Mutex<Vec<ThreadId>> = Mutex::new(Vec::new());
                let others = Condvar::new();
                run_on(pool, n, &|i| {
                    let me = thread::current().id();
                    if i == 0 {
                        assert_eq!(me, caller, "part 0 is the caller's");
                        let st = lock(&started);
                        let (st, wait) = others.wait_timeout_while(st, GUARD, |s| s.len() < n - 1).unwrap();
                        assert!(
                            !wait.timed_out(),
                            "job {job}: {} of {} other parts started in {GUARD:?}",
                            st.len(),
                            n - 1
                        );
                        assert!(st.iter().all(|&t| t != caller), "job {job}: another thread runs the other parts");
                    } else {
                        lock(&started).push(me);
                        others.notify_all();
                    }
                });
            }
        }

        /// `run` returns only after every part has finished, also a part a worker is still
        /// running when the caller is done with its own (the caller first spins, then waits
        /// on the condition variable).
        #[test]
        fn run_returns_after_every_part_has_finished() {
            let pool = private_pool();
            for _ in 0..3 {
                let (started, finished) = (AtomicBool::new(false), AtomicU32::new(0));
                run_on(pool, 2, &|i| {
                    if i == 1 {
                        started.store(true, Ordering::SeqCst);
                        // longer than the caller's spin before it waits
                        thread::sleep(Duration::from_millis(20));
                    } else {
                        // leave part 1 to a worker
                        wait_until("a worker started part 1", || started.load(Ordering::SeqCst));
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                });
                assert_eq!(finished.load(Ordering::SeqCst), 2);
            }
        }

        /// A claim holds only for the job it names, and only while parts are left.
        #[test]
        fn claims_are_tied_to_their_job() {
            let pool = Pool::new();
            pool.claims.store(7 << PART_BITS, Ordering::SeqCst);
            assert_eq!(claim(&pool, 6, 2), None, "an older job's claim");
            assert_eq!(claim(&pool, 7, 2), Some(0));
            assert_eq!(claim(&pool, 7, 2), Some(1));
            assert_eq!(claim(&pool, 7, 2), None, "all parts taken");
            assert_eq!(generation(u64::MAX), u64::MAX >> PART_BITS);
        }

        /// A panicking part reaches the caller (its own message when the caller ran it),
        /// and the pool keeps working.
        #[test]
        fn a_panicking_part_reaches_the_caller() {
            let result = catch_unwind(|| {
                run(2, &|i| {
                    if i == 1 {
                        panic!("part one fails");
                    }
                })
            });
            let payload = result.expect_err("the panic reaches the caller");
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            assert!(message == "part one fails" || message.contains("worker thread panicked"), "{message}");
            let count = AtomicU32::new(0);
            run(2, &|_| {
                count.fetch_add(1, Ordering::Relaxed);
            });
            assert_eq!(count.load(Ordering::Relaxed), 2);
        }
    }
}
