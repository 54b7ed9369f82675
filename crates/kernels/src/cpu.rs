//! The instruction set the kernels run with: detected once at run time, or forced (the
//! `TAPEGRAD_ISA` environment variable, read once, or [`set_isa`]) so that tests and
//! benchmarks can run every path the CPU supports.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction set the kernels have code for, from the least to the most capable: each
/// one includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Isa {
    /// Plain Rust compiled for the target's baseline (SSE2 on x86_64); any CPU.
    Portable,
    /// AVX2 and FMA (x86_64): 8-lane `f32` vectors, fused multiply-add.
    Avx2,
    /// AVX-512F (with AVX2 and FMA; x86_64): 16-lane `f32` vectors, 32 vector registers,
    /// lane masks.
    Avx512,
}

impl Isa {
    /// Every instruction set, least capable first.
    pub const ALL: [Isa; 3] = [Isa::Portable, Isa::Avx2, Isa::Avx512];

    /// The name `TAPEGRAD_ISA` and [`FromStr`] accept: `"portable"`, `"avx2"`, `"avx512"`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Whether the running CPU can execute this instruction set.
    pub fn is_supported(self) -> bool {
        self <= detected()
    }

    #[inline]
    fn code(self) -> u8 {
        match self {
            Isa::Portable => 1,
            Isa::Avx2 => 2,
            Isa::Avx512 => 3,
        }
    }

    #[inline]
    fn from_code(code: u8) -> Option<Isa> {
        match code {
            1 => Some(Isa::Portable),
            2 => Some(Isa::Avx2),
            3 => Some(Isa::Avx512),
            _ => None,
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Isa {
    type Err = String;

    fn from_str(s: &str) -> Result<Isa, String> {
        let names: Vec<_> = Isa::ALL.iter().map(|isa| isa.name()).collect();
        Isa::ALL
            .into_iter()
            .find(|isa| isa.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown instruction set '{s}' (one of {})", names.join(", ")))
    }
}

/// The most capable instruction set the running CPU supports (detected once, then cached).
pub fn detected() -> Isa {
    static DETECTED: AtomicU8 = AtomicU8::new(0);
    if let Some(isa) = Isa::from_code(DETECTED.load(Ordering::Relaxed)) {
        return isa;
    }
    let isa = detect();
    DETECTED.store(isa.code(), Ordering::Relaxed);
    isa
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Isa {
    let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    if avx2 && is_x86_feature_detected!("avx512f") {
        Isa::Avx512
    } else if avx2 {
        Isa::Avx2
    } else {
        Isa::Portable
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Isa {
    Isa::Portable
}

/// The active instruction set (0 until first read).
static ACTIVE: AtomicU8 = AtomicU8::new(0);

/// The instruction set the kernels use: the one forced by [`set_isa`], else the one named
/// by `TAPEGRAD_ISA` (read on the first call) if the CPU supports it, else [`detected`].
#[inline]
pub fn isa() -> Isa {
    match Isa::from_code(ACTIVE.load(Ordering::Relaxed)) {
        Some(isa) => isa,
        None => first_isa(),
    }
}

/// `tapegrad: MSG` on stderr; dropped if stderr cannot be written (`2>/dev/full`, a
/// closed pipe), since a warning must never end the program.
pub fn warn(msg: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "tapegrad: {msg}");
}

#[cold]
fn first_isa() -> Isa {
    let best = detected();
    let isa = match std::env::var("TAPEGRAD_ISA") {
        Ok(name) => match name.parse::<Isa>() {
            Ok(isa) if isa <= best => isa,
            Ok(isa) => {
                warn(format_args!("TAPEGRAD_ISA={isa} is not supported by this CPU; using {best}"));
                best
            }
            Err(e) => {
                warn(format_args!("TAPEGRAD_ISA: {e}; using {best}"));
                best
            }
        },
        Err(_) => best,
    };
    // Another thread may have set it meanwhile (`set_isa`); keep theirs.
    match ACTIVE.compare_exchange(0, isa.code(), Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => isa,
        Err(code) => Isa::from_code(code).unwrap_or(isa),
    }
}

/// Makes the kernels use `isa` from now on (in every thread), or returns an error naming
/// it if the CPU does not support it. Results of one call depend on the instruction set
/// (the fused multiply-adds round differently), so switch between calls, not during them.
pub fn set_isa(isa: Isa) -> Result<(), String> {
    if !isa.is_supported() {
        return Err(format!("instruction set {isa} is not supported by this CPU (best: {})", detected()));
    }
    ACTIVE.store(isa.code(), Ordering::Relaxed);
    Ok(())
}

/// Whether the active instruction set has AVX2 and FMA.
#[inline]
pub(crate) fn has_avx2() -> bool {
    // (the codes rise with the instruction sets, so this is `isa() >= Isa::Avx2`)
    match ACTIVE.load(Ordering::Relaxed) {
        0 => first_isa() >= Isa::Avx2,
        code => code >= Isa::Avx2.code(),
    }
}

/// Whether the active instruction set has AVX-512F.
#[inline]
pub(crate) fn has_avx512() -> bool {
    match ACTIVE.load(Ordering::Relaxed) {
        0 => first_isa() >= Isa::Avx512,
        code => code >= Isa::Avx512.code(),
    }
}

/// Runs `f` compiled with AVX2 and FMA enabled when the active instruction set has them,
/// so the plain loops inlined into it use 8-lane vectors instead of the baseline's 4, and
/// each `mul_add` is one `vfmadd` instruction instead of a call into the C library (about
/// 3 ns an element). Floating-point results are unchanged: `mul_add` rounds once either
/// way, and Rust never fuses a separate multiply and add. The optimizers' update loops run
/// through it.
#[inline(always)]
pub fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 and FMA (`set_isa` and `first_isa` only activate a
        // supported instruction set).
        return unsafe { run_avx2(f) };
    }
    f()
}

/// `f()` compiled with AVX2 and FMA (see [`vectorized`]).
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(test)]
    let _inside = InAvx2Build::enter();
    f()
}

/// Test builds mark the calling thread while it runs inside [`run_avx2`], so a test can
/// check which loops take the AVX2 build.
#[cfg(test)]
pub(crate) struct InAvx2Build(bool);

#[cfg(test)]
thread_local! {
    static IN_AVX2_BUILD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
impl InAvx2Build {
    fn enter() -> Self {
        InAvx2Build(IN_AVX2_BUILD.replace(true))
    }

    /// Whether the calling thread is inside the AVX2 build of a closure.
    pub(crate) fn active() -> bool {
        IN_AVX2_BUILD.get()
    }
}

#[cfg(test)]
impl Drop for InAvx2Build {
    fn drop(&mut self) {
        IN_AVX2_BUILD.set(self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_errors() {
        for isa in Isa::ALL {
            assert_eq!(isa.name().parse::<Isa>(), Ok(isa));
            assert_eq!(isa.to_string().to_uppercase().parse::<Isa>(), Ok(isa));
        }
        let err = "avx9".parse::<Isa>().unwrap_err();
        assert!(err.contains("avx9") && err.contains("portable, avx2, avx512"), "{err}");
        assert!(Isa::Portable.is_supported());
        assert!(detected().is_supported() && isa() <= detected());
    }

    /// A warning that cannot be written is dropped: this crate's tests in a child process
    /// with a bad `TAPEGRAD_ISA` (a warning on the first kernel call) and stderr on
    /// `/dev/full`, output not captured, pass.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_warning_to_a_full_stderr_is_dropped() {
        let exe = std::env::current_exe().expect("test binary path");
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
        let out = std::process::Command::new(&exe)
            .env("TAPEGRAD_ISA", "garbage")
            .args(["--exact", "cpu::tests::names_round_trip_and_bad_names_are_errors", "--nocapture"])
            .stderr(full)
            .output()
            .expect("run the test binary");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && stdout.contains("1 passed"), "{stdout}");
    }

    /// The instruction set in use is a supported `TAPEGRAD_ISA`, else the best the CPU has
    /// (the child processes of `every_supported_isa_passes_the_kernel_tests` check the
    /// first for each other instruction set, a plain run the second).
    #[test]
    fn isa_follows_the_environment() {
        let chosen = std::env::var("TAPEGRAD_ISA").ok().and_then(|name| name.parse::<Isa>().ok());
        let want = chosen.filter(|isa| isa.is_supported()).unwrap_or_else(detected);
        assert_eq!(self::isa(), want, "TAPEGRAD_ISA={chosen:?}");
    }

    /// Runs this crate's other tests again in a child process under each other
    /// instruction set the CPU supports (`TAPEGRAD_ISA`), so every path is tested on
    /// every run.
    #[test]
    fn every_supported_isa_passes_the_kernel_tests() {
        let exe = std::env::current_exe().expect("test binary path");
        let others: Vec<Isa> = Isa::ALL.into_iter().filter(|&other| other.is_supported() && other != isa()).collect();
        for other in others {
            let out = std::process::Command::new(&exe)
                .env("TAPEGRAD_ISA", other.name())
                .args(["--skip", "every_supported_isa_passes_the_kernel_tests", "--test-threads", "2"])
                .output()
                .expect("run the test binary");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("test gemm::tests::odd_sizes_f32 ... ok"),
                "kernel tests under TAPEGRAD_ISA={other}:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
