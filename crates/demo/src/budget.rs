//! Sizes checked before anything is allocated: every size a user gives becomes a byte count
//! with checked arithmetic ([`Bytes`]), compared with the memory the machine can give
//! ([`Budget`]: `--max-memory`, else `MemAvailable` in `/proc/meminfo`), so a run that
//! cannot fit ends at once with one line naming the argument, instead of running for
//! seconds and aborting in the allocator.
//!
//! ```
//! use tapegrad_demo::budget::{Budget, Bytes};
//!
//! let budget = Budget::fixed(1 << 20); // as --max-memory 1M
//! let rows = Bytes::count(1000) * Bytes::count(1000) * Bytes::F32;
//! let err = budget.admit("--batch 1000", rows).unwrap_err();
//! assert!(err.starts_with("--batch 1000 needs 4.0 MB (4000000 bytes)"), "{err}");
//! assert!(budget.admit("--batch 1000", Bytes::count(usize::MAX) * Bytes::F32).unwrap_err().contains("overflows"));
//! ```

use std::ops::{Add, Mul};

/// A byte count from checked arithmetic: `None` once an operation overflows `u64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bytes(pub Option<u64>);

impl Bytes {
    /// Bytes of one `f32`.
    pub const F32: Bytes = Bytes(Some(4));
    /// Nothing.
    pub const ZERO: Bytes = Bytes(Some(0));

    /// A count (of elements, rows, ...) as a factor.
    pub fn count(n: usize) -> Bytes {
        Bytes(u64::try_from(n).ok())
    }

    /// The sum of `f(x)` over `items`, checked.
    pub fn sum<I: IntoIterator>(items: I, f: impl Fn(I::Item) -> Bytes) -> Bytes {
        items.into_iter().fold(Bytes::ZERO, |acc, x| acc + f(x))
    }
}

impl Add for Bytes {
    type Output = Bytes;
    fn add(self, o: Bytes) -> Bytes {
        Bytes(self.0.zip(o.0).and_then(|(a, b)| a.checked_add(b)))
    }
}

impl Mul for Bytes {
    type Output = Bytes;
    fn mul(self, o: Bytes) -> Bytes {
        Bytes(self.0.zip(o.0).and_then(|(a, b)| a.checked_mul(b)))
    }
}

/// Where the budget comes from (for the message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `--max-memory`.
    Option,
    /// `MemAvailable` in `/proc/meminfo`.
    MemAvailable,
    /// Neither: the address space's limit only (`isize::MAX`).
    AddressSpace,
}

/// The bytes a run may use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The limit in bytes.
    pub bytes: u64,
    /// Where it comes from.
    pub source: Source,
}

impl Budget {
    /// `--max-memory` if given, else the machine's available memory (`MemAvailable` in
    /// `/proc/meminfo`), else the address space's limit.
    pub fn detect(max_memory: Option<u64>) -> Budget {
        if let Some(bytes) = max_memory {
            return Budget::fixed(bytes);
        }
        match std::fs::read_to_string("/proc/meminfo").ok().as_deref().and_then(mem_available) {
            Some(bytes) => Budget { bytes, source: Source::MemAvailable },
            None => Budget { bytes: isize::MAX as u64, source: Source::AddressSpace },
        }
    }

    /// A budget of `bytes` (as `--max-memory` gives).
    pub fn fixed(bytes: u64) -> Budget {
        Budget { bytes, source: Source::Option }
    }

    /// `Ok` if `need` fits; else one line naming `arg` (e.g. `"--layers 100000,100000,2"`),
    /// the bytes needed and the budget.
    ///
    /// # Errors
    /// The line, when `need` overflows or exceeds the budget.
    pub fn admit(&self, arg: &str, need: Bytes) -> Result<(), String> {
        let budget = self.describe();
        match need.0 {
            None => Err(format!("{arg} is too large: its size in bytes overflows 64 bits, far more than {budget}")),
            Some(n) if n > self.bytes => Err(format!("{arg} needs {} of memory, more than {budget}", fmt_bytes(n))),
            Some(_) => Ok(()),
        }
    }

    fn describe(&self) -> String {
        match self.source {
            Source::Option => format!("the --max-memory budget of {}", fmt_bytes(self.bytes)),
            Source::MemAvailable => format!(
                "the {} this machine has available (MemAvailable in /proc/meminfo; --max-memory sets another budget)",
                fmt_bytes(self.bytes)
            ),
            Source::AddressSpace => format!("the address space of {}", fmt_bytes(self.bytes)),
        }
    }
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// `4.0 MB (4000000 bytes)`.
pub fn fmt_bytes(n: u64) -> String {
    let units = [("EB", 1e18), ("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)];
    match units.iter().find(|(_, s)| n as f64 >= *s) {
        Some((u, s)) => format!("{:.1} {u} ({n} bytes)", n as f64 / s),
        None => format!("{n} bytes"),
    }
}

/// A byte size as `--max-memory` takes it: a whole number of bytes with an optional unit,
/// `k`/`M`/`G`/`T` (powers of 1000) or `Ki`/`Mi`/`Gi`/`Ti` (powers of 1024), an optional
/// trailing `B`: `4096`, `512M`, `2GiB`.
///
/// # Errors
/// The text is not such a size, or it overflows 64 bits.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let unit = unit.trim();
    let unit = unit.strip_suffix(['B', 'b']).unwrap_or(unit);
    let factor: u64 = match unit {
        "" => 1,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return Err(format!("'{s}' is not a size (e.g. 4096, 512M, 2GiB)")),
    };
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is not a size (e.g. 4096, 512M, 2GiB)"))?;
    n.checked_mul(factor).ok_or_else(|| format!("'{s}' is more than 2^64 bytes"))
}

/// What one run of the demo holds at its peak, split by the arguments that drive it:
/// `(parameters part, batch part)`. Parameters: the live model (values, gradients and the
/// step's scratch, 3 copies), the report's 13 flat copies (initial, then gradients and
/// parameters of 6 runs), a save or load copy, and with `json` the text and tree of every
/// number (112 bytes each). Batch: every node's value and gradient on the tape, about 8
/// copies of each layer's activations, with the data in the report and, with `json`, as
/// text. Measured peaks (`/usr/bin/time -v`) stay below these estimates.
pub fn demo_needs(layers: &[usize], batch: usize, micro_batches: usize, json: bool) -> (Bytes, Bytes) {
    let params = Bytes::sum(layers.windows(2), |w| Bytes::count(w[0]) * Bytes::count(w[1]) + Bytes::count(w[1]));
    let width = Bytes::sum(layers, |&n| Bytes::count(n));
    let text = if json { Bytes(Some(112)) } else { Bytes::ZERO };
    let per_param = Bytes(Some(18)) * Bytes::F32 + Bytes(Some(13)) * text;
    let data = Bytes::count(batch) * (Bytes::count(layers[0]) + Bytes::count(*layers.last().unwrap_or(&0)));
    let per_batch = Bytes::count(batch) * width * Bytes(Some(8)) * Bytes::F32 + data * (Bytes::F32 + text);
    let per_split = Bytes::count(micro_batches) * (Bytes(Some(64)) + text);
    (params * per_param, per_batch + per_split)
}

/// What `tapegrad-demo fixes` holds at its peak, split by the arguments that drive it:
/// `[parameters part, batch part, steps part]`, for `reports` experiments (5 for the
/// table, else 1), with `json` text and a `plot`.
///
/// - Parameters: five live runs of 9 copies each (values, gradients, two optimizer state
///   vectors, flat copies and the step's scratch), the initial and batched copies, and
///   each finished report's 6 flat copies; with `json` the text and tree of its 6 copies
///   (112 bytes a number).
/// - Batch: five tapes of about 8 copies of each layer's activations (20 with a
///   normalisation layer, whose composition records 10 more nodes), the step's rows of
///   data, and 64 bytes of bookkeeping a micro-batch.
/// - Steps: the data of every step (`steps * batch` rows), and per step and run the
///   records (the micro-batch losses, a distance, 64 bytes of bookkeeping), their JSON
///   text, and 256 bytes of SVG a plotted point.
///
/// Measured peaks (`/usr/bin/time -v`) stay below these estimates: e.g. the table on
/// `--layers 4,1000,1000,2 --batch 64 --steps 2` peaks at 280 MB of an estimated 331 MB.
#[allow(clippy::too_many_arguments)]
pub fn fixes_needs(
    layers: &[usize],
    batch: usize,
    micro_batches: usize,
    steps: usize,
    reports: usize,
    json: bool,
    plot: bool,
    norm: bool,
) -> [Bytes; 3] {
    let n = |x: u64| Bytes(Some(x));
    let params = Bytes::sum(layers.windows(2), |w| Bytes::count(w[0]) * Bytes::count(w[1]) + Bytes::count(w[1]));
    let width = Bytes::sum(layers, |&l| Bytes::count(l));
    let row = Bytes::count(layers[0]) + Bytes::count(*layers.last().unwrap_or(&0));
    let (runs, reports) = (n(5), Bytes::count(reports));
    let text = if json { n(112) } else { Bytes::ZERO };
    let per_param = (runs * n(9) + n(2) + reports * n(6)) * Bytes::F32 + n(6) * text;
    let copies = n(if norm { 20 } else { 8 });
    let per_batch = runs * (Bytes::count(batch) * width * copies * Bytes::F32 + Bytes::count(micro_batches) * n(64))
        + Bytes::count(batch) * row * n(2) * Bytes::F32;
    let svg = if plot { n(256) } else { Bytes::ZERO };
    let record = Bytes::count(micro_batches) * (Bytes::F32 + text) + n(8 + 64) + svg;
    let per_step = Bytes::count(batch) * row * Bytes::F32 + reports * runs * record;
    [params * per_param, per_batch, Bytes::count(steps) * per_step]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512M"), Ok(512_000_000));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1kB"), Ok(1000));
        for bad in ["", "-1", "1.5G", "G", "12X", "99999999999999999999", "20000000000G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn meminfo_and_overflow() {
        assert_eq!(mem_available("MemTotal: 10 kB\nMemAvailable:   2048 kB\n"), Some(2 << 20));
        assert_eq!(mem_available("MemTotal: 10 kB\n"), None);
        let (p, _) = demo_needs(&[usize::MAX, 2], 2, 2, false);
        assert_eq!(p, Bytes(None));
        let (p, b) = demo_needs(&[4, 8, 2], 2, 2, false);
        assert_eq!(p, Bytes(Some(58 * 72)));
        assert_eq!(b, Bytes(Some(2 * 14 * 32 + 2 * 6 * 4 + 2 * 64)));
        let (p, b) = demo_needs(&[4, 8, 2], 1 << 62, 2, true);
        assert!(p.0.is_some());
        assert_eq!(b, Bytes(None));
        assert!(Budget::detect(None).bytes > 0);
        let [p, b, s] = fixes_needs(&[4, 8, 2], 2, 2, 5, 1, false, false, false);
        assert_eq!(p, Bytes(Some(58 * 53 * 4)));
        assert_eq!(b, Bytes(Some(5 * (2 * 14 * 32 + 2 * 64) + 2 * 6 * 8)));
        assert_eq!(s, Bytes(Some(5 * (2 * 6 * 4 + 5 * (2 * 4 + 72)))));
        let [p, b, s] = fixes_needs(&[usize::MAX, 2], 2, 2, usize::MAX, 5, true, true, true);
        assert_eq!((p, s), (Bytes(None), Bytes(None)));
        assert!(b.0.is_none());
    }
}
