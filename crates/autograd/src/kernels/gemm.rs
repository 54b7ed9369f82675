//! Temporary naive gemm (replaced by the packed kernel).
use std::sync::atomic::{AtomicUsize, Ordering};
static THREADS: AtomicUsize = AtomicUsize::new(1);
/// Threads.
pub fn set_num_threads(n: usize) {
    THREADS.store(n.max(1), Ordering::Relaxed);
}
/// Threads.
pub fn num_threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}
macro_rules! naive {
    ($name:ident, $t:ty) => {
        /// C = op(A)·op(B) (+ C).
        #[allow(clippy::too_many_arguments)]
        pub fn $name(
            m: usize,
            k: usize,
            n: usize,
            a: &[$t],
            rsa: usize,
            csa: usize,
            b: &[$t],
            rsb: usize,
            csb: usize,
            c: &mut [$t],
            accumulate: bool,
        ) {
            for i in 0..m {
                for j in 0..n {
                    let mut s = 0.0;
                    for p in 0..k {
                        s += a[i * rsa + p * csa] * b[p * rsb + j * csb];
                    }
                    c[i * n + j] = if accumulate { c[i * n + j] + s } else { s };
                }
            }
        }
    };
}
naive!(sgemm, f32);
naive!(dgemm, f64);
