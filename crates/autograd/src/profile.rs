//! The backward profiler: per-op-kind counts and times of forward and backward.
//!
//! Opt-in with [`crate::Tape::set_profiling`]; when off, recording and backward pay one
//! predictable branch per node. Forward time is the op's kernel; backward time is the op's
//! whole rule (its kernels and the gradient accumulation into its inputs).

use std::fmt;
use std::time::Duration;

/// Counts and times of one op kind.
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

/// Times per op kind, collected while profiling is on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    rows: Vec<(&'static str, OpStats)>,
}

impl Profile {
    fn row(&mut self, op: &'static str) -> &mut OpStats {
        let i = match self.rows.iter().position(|(n, _)| *n == op) {
            Some(i) => i,
            None => {
                self.rows.push((op, OpStats::default()));
                self.rows.len() - 1
            }
        };
        &mut self.rows[i].1
    }

    pub(crate) fn add_forward(&mut self, op: &'static str, t: Duration) {
        let r = self.row(op);
        r.fwd_count += 1;
        r.fwd_time += t;
    }

    pub(crate) fn add_backward(&mut self, op: &'static str, t: Duration) {
        let r = self.row(op);
        r.bwd_count += 1;
        r.bwd_time += t;
    }

    /// Adds another profile's counts and times to this one.
    pub fn merge(&mut self, other: &Profile) {
        for (op, s) in &other.rows {
            let r = self.row(op);
            r.fwd_count += s.fwd_count;
            r.fwd_time += s.fwd_time;
            r.bwd_count += s.bwd_count;
            r.bwd_time += s.bwd_time;
        }
    }

    /// Rows `(op, stats)`, largest total (forward + backward) time first.
    pub fn rows(&self) -> Vec<(&'static str, OpStats)> {
        let mut rows = self.rows.clone();
        rows.sort_by(|a, b| (b.1.fwd_time + b.1.bwd_time).cmp(&(a.1.fwd_time + a.1.bwd_time)).then(a.0.cmp(b.0)));
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
    /// A table sorted by total time: per op, forward and backward count, total and mean
    /// time (µs), and the share of the whole.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (tf, tb) = self.total();
        let whole = (tf + tb).as_secs_f64().max(1e-12);
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let mean = |d: Duration, n: u64| if n == 0 { 0.0 } else { us(d) / n as f64 };
        writeln!(
            f,
            "{:<12} {:>9} {:>12} {:>9} {:>9} {:>12} {:>9} {:>7}",
            "op", "fwd n", "fwd µs", "fwd mean", "bwd n", "bwd µs", "bwd mean", "share"
        )?;
        for (op, s) in self.rows() {
            writeln!(
                f,
                "{:<12} {:>9} {:>12.2} {:>9.3} {:>9} {:>12.2} {:>9.3} {:>6.1}%",
                op,
                s.fwd_count,
                us(s.fwd_time),
                mean(s.fwd_time, s.fwd_count),
                s.bwd_count,
                us(s.bwd_time),
                mean(s.bwd_time, s.bwd_count),
                100.0 * (s.fwd_time + s.bwd_time).as_secs_f64() / whole
            )?;
        }
        write!(f, "{:<12} {:>9} {:>12.2} {:>9} {:>9} {:>12.2}", "total", "", us(tf), "", "", us(tb))
    }
}
