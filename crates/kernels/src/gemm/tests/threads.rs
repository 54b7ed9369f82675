//! The GEMM on two threads: the panel and packed paths give the same bits as on one, and
//! the public entry points split over the pool.

use super::*;

#[test]
fn panel_path_two_threads() {
    let _threads = crate::threads::thread_count_guard();
    let mut rng = Rng(4242);
    let shapes = [(64, 256, 256), (70, 130, 150), (96, 300, 33), (130, 64, 70), (40, 512, 100)];
    for &(m, k, n) in &shapes {
        assert!(m * k * n >= PARALLEL_WORK, "{m}x{k}x{n} is below the parallel threshold");
        for t in 0..8 {
            let l = Layout { a_trans: false, b_trans: t & 4 == 0, pad: 3 * (t & 1), accumulate: t & 2 != 0 };
            let (a, b, c0, [rsa, csa, rsb, csb]) = operands::<f32>(m, k, n, l, &mut rng);
            let p = Args { m, k, n, a: &a, rsa, csa, b: &b, rsb, csb };
            let (mut one, mut two) = (c0.clone(), c0);
            set_num_threads(1);
            gemm_dispatch(Some(Path::Panel), &p, &mut one, l.accumulate);
            set_num_threads(2);
            gemm_dispatch(Some(Path::Panel), &p, &mut two, l.accumulate);
            set_num_threads(1);
            let same = one.iter().zip(&two).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{m}x{k}x{n} {l:?}: two threads differ from one");
            set_num_threads(2);
            check::<f32>(None, m, k, n, l, &mut rng);
            set_num_threads(1);
        }
    }
}

/// The packed path on two threads gives the one-thread result bit for bit, with every
/// micro-kernel the active instruction set allows (each element's sum runs in the same
/// order whichever thread computes its tile): splits along n and along m, edge tiles,
/// several depth blocks, every layout, accumulate on and off.
fn packed_two_threads<T: Real>(seed: u64) {
    let mut rng = Rng(seed);
    for isa in Isa::ALL.into_iter().filter(|&isa| isa_runs_here("packed_two_threads", isa)) {
        for &(m, k, n) in &[(70, 300, 150), (150, 40, 70), (13, 257, 33), (25, 9, 65)] {
            for (index, l) in all_layouts(m + n).enumerate() {
                let l = Layout { accumulate: index % 2 == 1, ..l };
                let (a, b, c0, [rsa, csa, rsb, csb]) = operands::<T>(m, k, n, l, &mut rng);
                let p = Args { m, k, n, a: &a, rsa, csa, b: &b, rsb, csb };
                let (mut one, mut two) = (c0.clone(), c0);
                gemm_dispatch(Some(Path::Packed { isa, threads: 1 }), &p, &mut one, l.accumulate);
                gemm_dispatch(Some(Path::Packed { isa, threads: 2 }), &p, &mut two, l.accumulate);
                let same = one.iter().zip(&two).all(|(x, y)| x.to_f64().to_bits() == y.to_f64().to_bits());
                assert!(same, "{isa} {m}x{k}x{n} {l:?}: two threads differ from one");
            }
        }
    }
}

#[test]
fn packed_two_threads_f32() {
    packed_two_threads::<f32>(31);
}

#[test]
fn packed_two_threads_f64() {
    packed_two_threads::<f64>(32);
}

/// An epilogue (bias, then ReLU) gives the product followed by the separate pass, bit
/// for bit, on every path (the panel path in its tiles, the others as a pass),
/// including k = 0 and the public entry points; NaN and -0.0 pass the ReLU unchanged.
#[test]
fn threads_public_api() {
    let _threads = crate::threads::thread_count_guard();
    let mut rng = Rng(99);
    set_num_threads(2);
    assert_eq!(num_threads(), 2);
    let layout = Layout { a_trans: false, b_trans: true, pad: 0, accumulate: false };
    check::<f32>(None, 70, 130, 150, layout, &mut rng);
    let layout = Layout { a_trans: true, b_trans: false, pad: 1, accumulate: true };
    check::<f64>(None, 150, 130, 70, layout, &mut rng);
    set_num_threads(1);
}
