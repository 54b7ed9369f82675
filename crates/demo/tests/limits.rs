//! The binary under a process memory limit (`ulimit -v`, `ulimit -d`, set with setrlimit
//! in the child before it runs): sizes that cannot fit under the limit are refused before
//! any work naming the limit, an allocation that fails anyway (a `--max-memory` above the
//! limit) ends in one line, and runs that fit still work. Exit status 2, never an abort.
//! And with a stderr that cannot be written, warnings are dropped.
#![cfg(unix)]

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};

mod common;
use common::{run_with_deadline, DEMO};

/// The limits the tests set.
#[derive(Clone, Copy)]
enum Limit {
    /// `RLIMIT_AS`, `ulimit -v`.
    AddressSpace,
    /// `RLIMIT_DATA`, `ulimit -d`.
    Data,
}

/// Runs the demo with `args` under the soft and hard limit `bytes` of `limit`.
fn limited(limit: Limit, bytes: u64, args: &[&str]) -> Output {
    let mut cmd = Command::new(DEMO);
    cmd.args(args);
    // SAFETY: the closure only calls setrlimit, which is async-signal-safe
    unsafe {
        cmd.pre_exec(move || {
            let r = libc::rlimit { rlim_cur: bytes as libc::rlim_t, rlim_max: bytes as libc::rlim_t };
            let resource = match limit {
                Limit::AddressSpace => libc::RLIMIT_AS,
                Limit::Data => libc::RLIMIT_DATA,
            };
            if libc::setrlimit(resource, &r) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    run_with_deadline(cmd).0
}

/// One line on stderr with each of `needles`, nothing on stdout, status 2.
#[track_caller]
fn one_line(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("tapegrad-demo: "), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{stderr:?} should mention {needle:?}");
    }
}

/// `ulimit -v 200000`: 200,000 KiB of address space.
const LIMIT: u64 = 200_000 * 1024;

#[test]
fn an_address_space_limit_is_the_budget() {
    for args in [&["--layers", "4,3000,3000,2"][..], &["fixes", "--layers", "4,3000,3000,2"]] {
        let out = limited(Limit::AddressSpace, LIMIT, args);
        one_line(&out, &["--layers 4,3000,3000,2 needs", "address-space limit leaves (RLIMIT_AS"]);
    }
    // the forum's 4-8-2 model fits
    let out = limited(Limit::AddressSpace, LIMIT, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = limited(Limit::AddressSpace, LIMIT, &["fixes", "--steps", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_data_limit_is_the_budget() {
    let out = limited(Limit::Data, LIMIT, &["--layers", "4,3000,3000,2"]);
    one_line(&out, &["--layers 4,3000,3000,2 needs", "data limit leaves (RLIMIT_DATA"]);
}

#[test]
fn an_allocation_beyond_the_limit_ends_in_one_line() {
    // --max-memory overrides the detected budget, so the allocator is what fails (on the
    // first weight matrix, 800 MB)
    let big = ["--layers", "4,50000000,2", "--max-memory", "1T"];
    for args in [&big[..], &[&["fixes"][..], &big].concat()] {
        let out = limited(Limit::AddressSpace, LIMIT, args);
        one_line(&out, &["out of memory: an allocation of", "bytes failed"]);
    }
}

/// `TAPEGRAD_ISA=garbage` warns on stderr; on `/dev/full` the warning is dropped and the
/// run ends as usual.
#[test]
fn a_warning_to_a_full_stderr_is_dropped() {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    for args in [&[][..], &["fixes", "--steps", "2"]] {
        let out =
            Command::new(DEMO).args(args).env("TAPEGRAD_ISA", "garbage").stderr(full.try_clone().unwrap()).output();
        let out = out.unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("accumulat"), "{args:?}");
    }
}
