//! The machine's f32 FMA peak: GFLOP/s of independent fused multiply-adds on 1 and 2 threads,
//! with 512-bit vectors if the CPU has AVX-512 and with 256-bit ones (AVX2 + FMA; AVX-512
//! cores may run these at a higher clock), measured by the loop tapegrad's benchmark uses
//! (`tapegrad_bench::peak`). Prints `peak<TAB>isa<TAB>threads<TAB>gflops`, widest first.

use tapegrad_bench::peak::{cpu_model, gflops, Width};

fn main() {
    let widths: Vec<Width> = [Width::Avx512, Width::Avx2].into_iter().filter(|w| w.is_supported()).collect();
    if widths.is_empty() {
        eprintln!("peak: this CPU has neither AVX-512 nor AVX2 + FMA");
        std::process::exit(1);
    }
    eprintln!("# CPU: {}", cpu_model());
    for width in widths {
        for threads in [1usize, 2] {
            println!("peak\t{}\t{threads}\t{:.1}", width.name(), gflops(width, threads));
        }
    }
}
