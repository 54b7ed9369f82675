//! The backward profiler: per-op-kind counts and times of forward and backward.
//!
//! Opt-in with [`crate::Tape::set_profiling`]; when off, recording and backward pay one
//! predictable branch per node. Forward time is the op's kernel; backward time is the op's
//! whole rule (its kernels and the gradient accumulation into its inputs).
//!
//! Each call's time is kept (8 bytes per call while profiling), so the table reports the
//! median per op and the spread (10th to 90th percentile) instead of sums: one preemption
//! or page fault lengthens one call, not the op's share.

use std::fmt;
use std::time::Duration;

/// Counts and summed times of one op kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpStats {
    /// Forward calls.
    pub fwd_count: u64,
    /// Total forward time.
    pub fwd_time: Duration,
    /// Backward calls.
    pub bwd_count: u64,
    /// Total backward time.
    pub bwd_time: Duration,
}

/// The distribution of one op kind's call times in one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spread {
    /// Calls.
    pub count: u64,
    /// The fastest call.
    pub min: Duration,
    /// 10th percentile.
    pub p10: Duration,
    /// The median call.
    pub median: Duration,
    /// 90th percentile.
    pub p90: Duration,
}

impl Spread {
    /// Of the call times `ns` (nanoseconds; reordered).
    fn of(ns: &mut [u64]) -> Spread {
        if ns.is_empty() {
            return Spread::default();
        }
        ns.sort_unstable();
        let at = |q: f64| Duration::from_nanos(ns[((ns.len() - 1) as f64 * q).round() as usize]);
        Spread { count: ns.len() as u64, min: at(0.0), p10: at(0.1), median: at(0.5), p90: at(0.9) }
    }

    /// `count × median`: the time the op takes without the outliers.
    pub fn typical_total(&self) -> Duration {
        self.median.saturating_mul(u32::try_from(self.count).unwrap_or(u32::MAX))
    }
}

/// What one backward pass did with gradient data ([`crate::Tape::backward_stats`]).
///
/// Every contribution a rule gives an input that requires grad is counted once, by how it
/// reached the gradient: `moved + shared + fused + copied + added`. A tape in its steady
/// state (the same graph recorded again) grows no buffer: `grown` is 0 from its second pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackwardStats {
    /// Nodes whose backward rule ran.
    pub rules: u64,
    /// Values computed into scratch buffers: rules' kernel results, and a pending
    /// elementwise result that something read before it reached a gradient.
    pub scratch: u64,
    /// First contributions moved into a gradient: a scratch buffer swapped in, no copy.
    pub moved: u64,
    /// First contributions shared: an interior node's gradient passed through unchanged
    /// (`a + b` gives `dy` to both), read from the buffer it came from, no copy.
    pub shared: u64,
    /// Contributions whose last elementwise op was computed straight into the gradient
    /// (written, or added to what is there), with no scratch buffer.
    pub fused: u64,
    /// First contributions copied: a passed-through gradient given to a leaf or parameter
    /// (whose gradient outlives the pass), or a value given to two inputs.
    pub copied: u64,
    /// Later contributions added to a gradient.
    pub added: u64,
    /// Inputs a rule gave no contribution (the input of `sign`), given zeros.
    pub zeros: u64,
    /// Buffers, scratch or gradient, that had to grow: each an allocation.
    pub grown: u64,
}

/// Times per op kind, collected while profiling is on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    rows: Vec<(&'static str, OpStats)>,
    /// Each row's call times in nanoseconds, forward and backward.
    samples: Vec<[Vec<u64>; 2]>,
}

fn nanos(t: Duration) -> u64 {
    u64::try_from(t.as_nanos()).unwrap_or(u64::MAX)
}

impl Profile {
    fn row(&mut self, op: &'static str) -> usize {
        match self.rows.iter().position(|(n, _)| *n == op) {
            Some(i) => i,
            None => {
                self.rows.push((op, OpStats::default()));
                self.samples.push([Vec::new(), Vec::new()]);
                self.rows.len() - 1
            }
        }
    }

    pub(crate) fn add_forward(&mut self, op: &'static str, t: Duration) {
        let i = self.row(op);
        let r = &mut self.rows[i].1;
        r.fwd_count += 1;
        r.fwd_time += t;
        self.samples[i][0].push(nanos(t));
    }

    pub(crate) fn add_backward(&mut self, op: &'static str, t: Duration) {
        let i = self.row(op);
        let r = &mut self.rows[i].1;
        r.bwd_count += 1;
        r.bwd_time += t;
        self.samples[i][1].push(nanos(t));
    }

    /// Adds another profile's counts and times to this one.
    pub fn merge(&mut self, other: &Profile) {
        for ((op, s), [f, b]) in other.rows.iter().zip(&other.samples) {
            let i = self.row(op);
            let r = &mut self.rows[i].1;
            r.fwd_count += s.fwd_count;
            r.fwd_time += s.fwd_time;
            r.bwd_count += s.bwd_count;
            r.bwd_time += s.bwd_time;
            self.samples[i][0].extend_from_slice(f);
            self.samples[i][1].extend_from_slice(b);
        }
    }

    /// Rows `(op, stats)` with summed times, largest total (forward + backward) first.
    pub fn rows(&self) -> Vec<(&'static str, OpStats)> {
        let mut rows = self.rows.clone();
        rows.sort_by(|a, b| (b.1.fwd_time + b.1.bwd_time).cmp(&(a.1.fwd_time + a.1.bwd_time)).then(a.0.cmp(b.0)));
        rows
    }

    /// Rows `(op, forward, backward)` with the distribution of the call times, largest
    /// typical total (count × median, forward + backward) first.
    pub fn spreads(&self) -> Vec<(&'static str, Spread, Spread)> {
        let mut rows: Vec<_> = self
            .rows
            .iter()
            .zip(&self.samples)
            .map(|((op, _), [f, b])| (*op, Spread::of(&mut f.clone()), Spread::of(&mut b.clone())))
            .collect();
        let typical = |(_, f, b): &(&str, Spread, Spread)| f.typical_total() + b.typical_total();
        rows.sort_by(|a, b| typical(b).cmp(&typical(a)).then(a.0.cmp(b.0)));
        rows
    }

    /// Total forward and backward time.
    pub fn total(&self) -> (Duration, Duration) {
        self.rows.iter().fold((Duration::ZERO, Duration::ZERO), |(f, b), (_, s)| (f + s.fwd_time, b + s.bwd_time))
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl fmt::Display for Profile {
    /// A table by typical time: per op and direction, the calls, the median time and the
    /// spread from the 10th to the 90th percentile (µs); the share of the whole counts
    /// each call at its op's median (count × median), so outliers do not move it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = self.spreads();
        let (tf, tb) = rows
            .iter()
            .fold((Duration::ZERO, Duration::ZERO), |(a, b), (_, x, y)| (a + x.typical_total(), b + y.typical_total()));
        let whole = (tf + tb).as_secs_f64().max(1e-12);
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let median = |s: &Spread| if s.count == 0 { "-".into() } else { format!("{:.3}", us(s.median)) };
        let spread = |s: &Spread| if s.count == 0 { "-".into() } else { format!("{:.3}-{:.3}", us(s.p10), us(s.p90)) };
        writeln!(
            f,
            "{:<12} {:>9} {:>10} {:>15} {:>9} {:>10} {:>15} {:>7}",
            "op", "fwd n", "fwd med µs", "fwd p10-p90", "bwd n", "bwd med µs", "bwd p10-p90", "share"
        )?;
        for (op, fw, bw) in &rows {
            writeln!(
                f,
                "{:<12} {:>9} {:>10} {:>15} {:>9} {:>10} {:>15} {:>6.1}%",
                op,
                fw.count,
                median(fw),
                spread(fw),
                bw.count,
                median(bw),
                spread(bw),
                100.0 * (fw.typical_total() + bw.typical_total()).as_secs_f64() / whole
            )?;
        }
        write!(f, "{:<12} {:>9} {:>10.2} {:>15} {:>9} {:>10.2}   (n × median, µs)", "total", "", us(tf), "", "", us(tb))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One preempted call (a second among microseconds) neither makes its op the largest
    /// nor moves its median; the spread shows it only above the 90th percentile.
    #[test]
    fn an_outlier_does_not_skew_the_shares() {
        let us = Duration::from_micros;
        let mut p = Profile::default();
        for i in 0..10 {
            p.add_forward("a", if i == 3 { Duration::from_secs(1) } else { us(1) });
            p.add_forward("b", us(2 + i % 2));
            p.add_backward("b", us(4));
        }
        let mut other = Profile::default();
        other.add_forward("a", us(1));
        p.merge(&other);
        let rows = p.spreads();
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), ["b", "a"]);
        let (_, a, a_back) = rows[1];
        assert_eq!((a.count, a.min, a.median, a.p90), (11, us(1), us(1), us(1)));
        assert_eq!(a_back, Spread::default());
        let (_, b, b_back) = rows[0];
        assert_eq!((b.median, b.p10, b.p90, b_back.median), (us(3), us(2), us(3), us(4)));
        // the sums still say where the wall-clock time went
        assert_eq!(p.rows()[0].0, "a");
        let table = p.to_string();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[1].starts_with("b ") && lines[2].starts_with("a "), "{table}");
        assert!(lines[2].ends_with("-   13.6%"), "a: 11 µs of 11 + 30 + 40, no backward: {table}");
        assert!(lines[3].starts_with("total"), "{table}");
    }
}
