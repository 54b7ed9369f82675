//! Sizes checked before anything is allocated: every size a user gives becomes a byte count
//! with checked arithmetic ([`Bytes`]), compared with the memory the process can get
//! ([`Budget`]: `--max-memory`, else the smallest of `MemAvailable` in `/proc/meminfo`, the
//! room left under `RLIMIT_AS` and `RLIMIT_DATA` (`ulimit -v`, `ulimit -d`) and under the
//! memory limit of the process's control group (a container's `memory.max`)), so a run
//! that cannot fit ends at once with one line naming the argument, instead of running for
//! seconds and aborting in the allocator. What the estimates miss ends in one line too
//! ([`crate::oom`]).
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
use std::path::{Path, PathBuf};

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `--max-memory`.
    Option,
    /// `MemAvailable` in `/proc/meminfo`.
    MemAvailable,
    /// The room left under the address-space limit `RLIMIT_AS` (`ulimit -v`).
    AddressSpaceLimit,
    /// The room left under the data-segment limit `RLIMIT_DATA` (`ulimit -d`).
    DataLimit,
    /// The room left under the control group's memory limit (cgroup v2 `memory.max`, or
    /// v1 `memory.limit_in_bytes`, less the group's usage).
    Cgroup,
    /// None of these: the address space's size only (`isize::MAX`).
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
    /// `--max-memory` if given, else the smallest of the machine's available memory, the
    /// room under the process's `RLIMIT_AS` and `RLIMIT_DATA`, and the room under its
    /// control group's memory limit (each where the system says), else the address space.
    pub fn detect(max_memory: Option<u64>) -> Budget {
        if let Some(bytes) = max_memory {
            return Budget::fixed(bytes);
        }
        let read = |p: &Path| std::fs::read_to_string(p).ok();
        let status = read(Path::new("/proc/self/status")).unwrap_or_default();
        let candidates = [
            (Source::MemAvailable, read(Path::new("/proc/meminfo")).as_deref().and_then(mem_available)),
            (Source::AddressSpaceLimit, rlimit_room(Limit::AddressSpace, &status)),
            (Source::DataLimit, rlimit_room(Limit::Data, &status)),
            (Source::Cgroup, cgroup_room(read)),
        ];
        let smallest = candidates.into_iter().filter_map(|(source, b)| Some((b?, source))).min_by_key(|&(b, _)| b);
        match smallest {
            Some((bytes, source)) => Budget { bytes, source },
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
        let other = "--max-memory sets another budget";
        let b = fmt_bytes(self.bytes);
        match self.source {
            Source::Option => format!("the --max-memory budget of {b}"),
            Source::MemAvailable => {
                format!("the {b} this machine has available (MemAvailable in /proc/meminfo; {other})")
            }
            Source::AddressSpaceLimit => {
                format!("the {b} the process's address-space limit leaves (RLIMIT_AS, ulimit -v; {other})")
            }
            Source::DataLimit => format!("the {b} the process's data limit leaves (RLIMIT_DATA, ulimit -d; {other})"),
            Source::Cgroup => format!("the {b} the control group's memory limit leaves (memory.max; {other})"),
            Source::AddressSpace => format!("the address space of {b}"),
        }
    }
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    kib_field(meminfo, "MemAvailable:")
}

/// A `NAME: N kB` line of `/proc/meminfo` or `/proc/self/status`, in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// The process limits the budget respects.
#[derive(Clone, Copy)]
enum Limit {
    AddressSpace,
    Data,
}

/// The room under a process limit: the soft limit less what the process already uses
/// (`VmSize` or `VmData` in `/proc/self/status`); `None` when unlimited.
#[cfg(unix)]
fn rlimit_room(limit: Limit, status: &str) -> Option<u64> {
    let (resource, used) = match limit {
        Limit::AddressSpace => (libc::RLIMIT_AS, "VmSize:"),
        Limit::Data => (libc::RLIMIT_DATA, "VmData:"),
    };
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct it is given
    if unsafe { libc::getrlimit(resource, &mut r) } != 0 || r.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not everywhere
    let limit = r.rlim_cur as u64;
    Some(limit.saturating_sub(kib_field(status, used).unwrap_or(0)))
}

#[cfg(not(unix))]
fn rlimit_room(_: Limit, _: &str) -> Option<u64> {
    None
}

/// The room under the memory limit of the process's control group and of each group above
/// it: the smallest limit less usage (cgroup v2 `memory.max` and `memory.current`, or v1
/// `memory.limit_in_bytes` and `memory.usage_in_bytes`); `None` without a limit. `read`
/// reads a file (`/proc/self/cgroup`, `/proc/self/mountinfo` and the group's files).
fn cgroup_room(read: impl Fn(&Path) -> Option<String>) -> Option<u64> {
    let groups = read(Path::new("/proc/self/cgroup"))?;
    let mounts = read(Path::new("/proc/self/mountinfo"))?;
    let mut room: Option<u64> = None;
    for line in groups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, group) = (parts.next(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let (fstype, files) = if controllers.is_empty() {
            ("cgroup2", ["memory.max", "memory.current"])
        } else if controllers.split(',').any(|c| c == "memory") {
            ("cgroup", ["memory.limit_in_bytes", "memory.usage_in_bytes"])
        } else {
            continue;
        };
        let Some((root, mount_point)) = cgroup_mount(&mounts, fstype) else { continue };
        // the group's path below the mount (a namespaced mount's root is a group itself)
        let below = Path::new(group).strip_prefix(&root).unwrap_or(Path::new(""));
        let mut dir = Some(mount_point.join(below));
        while let Some(d) = dir {
            let number = |name: &str| read(&d.join(name)).and_then(|t| t.trim().parse::<u64>().ok());
            // "max", or v1's page-rounded 2^63 for no limit
            if let (Some(max), Some(used)) = (number(files[0]).filter(|&m| m < 1 << 62), number(files[1])) {
                let r = max.saturating_sub(used);
                room = Some(room.map_or(r, |x| x.min(r)));
            }
            dir = d.parent().filter(|p| p.starts_with(&mount_point)).map(Path::to_path_buf);
        }
    }
    room
}

/// The root and mount point of the first mount of `fstype` in a `/proc/self/mountinfo`
/// text (`cgroup2`, or `cgroup` with the memory controller).
fn cgroup_mount(mountinfo: &str, fstype: &str) -> Option<(PathBuf, PathBuf)> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut after = right.split_whitespace();
        let (fs, _source, options) = (after.next()?, after.next()?, after.next().unwrap_or(""));
        if fs != fstype || (fs == "cgroup" && !options.split(',').any(|o| o == "memory")) {
            return None;
        }
        let fields: Vec<&str> = left.split_whitespace().collect();
        Some((PathBuf::from(fields.get(3)?), PathBuf::from(fields.get(4)?)))
    })
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
        assert_eq!(kib_field("Name:\tx\nVmSize:\t  1000 kB\n", "VmSize:"), Some(1_024_000));
        let [p, b, s] = fixes_needs(&[4, 8, 2], 2, 2, 5, 1, false, false, false);
        assert_eq!(p, Bytes(Some(58 * 53 * 4)));
        assert_eq!(b, Bytes(Some(5 * (2 * 14 * 32 + 2 * 64) + 2 * 6 * 8)));
        assert_eq!(s, Bytes(Some(5 * (2 * 6 * 4 + 5 * (2 * 4 + 72)))));
        let [p, b, s] = fixes_needs(&[usize::MAX, 2], 2, 2, usize::MAX, 5, true, true, true);
        assert_eq!((p, s), (Bytes(None), Bytes(None)));
        assert!(b.0.is_none());
    }

    /// A fake `/proc` and `/sys/fs/cgroup`: the files a reader of `cgroup_room` sees.
    fn files(entries: &[(&str, &str)]) -> impl Fn(&Path) -> Option<String> {
        let map: std::collections::HashMap<PathBuf, String> =
            entries.iter().map(|(p, t)| (PathBuf::from(p), t.to_string())).collect();
        move |p: &Path| map.get(p).cloned()
    }

    #[test]
    fn cgroup_limits_of_the_group_and_its_parents() {
        let v2 = "25 1 0:22 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n";
        // the smallest room over the group and its parents: the parent leaves 700 - 650
        let nested = files(&[
            ("/proc/self/cgroup", "0::/box/job\n"),
            ("/proc/self/mountinfo", v2),
            ("/sys/fs/cgroup/box/job/memory.max", "1000\n"),
            ("/sys/fs/cgroup/box/job/memory.current", "100\n"),
            ("/sys/fs/cgroup/box/memory.max", "700\n"),
            ("/sys/fs/cgroup/box/memory.current", "650\n"),
        ]);
        assert_eq!(cgroup_room(nested), Some(50));
        let unlimited = files(&[
            ("/proc/self/cgroup", "0::/box\n"),
            ("/proc/self/mountinfo", v2),
            ("/sys/fs/cgroup/box/memory.max", "max\n"),
            ("/sys/fs/cgroup/box/memory.current", "650\n"),
        ]);
        assert_eq!(cgroup_room(unlimited), None);
        // cgroup v1 with a namespaced mount (its root is the group) beside the v2 tree
        let v1 = files(&[
            ("/proc/self/cgroup", "4:memory:/ns/grp\n1:cpu:/\n0::/\n"),
            (
                "/proc/self/mountinfo",
                "30 25 0:26 /ns/grp /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 31 25 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
            ),
            ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "209715200\n"),
            ("/sys/fs/cgroup/memory/memory.usage_in_bytes", "9715200\n"),
            ("/sys/fs/cgroup/unified/memory.max", "max\n"),
        ]);
        assert_eq!(cgroup_room(v1), Some(200_000_000));
        let no_limit_v1 = files(&[
            ("/proc/self/cgroup", "4:memory:/\n"),
            ("/proc/self/mountinfo", "30 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"),
            ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n"),
            ("/sys/fs/cgroup/memory/memory.usage_in_bytes", "1\n"),
        ]);
        assert_eq!(cgroup_room(no_limit_v1), None);
        assert_eq!(cgroup_room(files(&[])), None);
    }
}
