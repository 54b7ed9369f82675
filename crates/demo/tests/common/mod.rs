//! Helpers shared by the demo's integration tests: running the real binary with a
//! deadline, checking a refusal, temporary folders, comparing numbers with PyTorch's.
//! Each test file uses a part of them.
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub const DEMO: &str = env!("CARGO_BIN_EXE_tapegrad-demo");

/// `--layers` values whose byte counts overflow 64 bits.
pub const OVERFLOWING_LAYERS: [&str; 3] =
    ["18446744073709551615,2", "4,18446744073709551615", "4294967296,4294967296,2"];

/// The message of a size whose byte count overflows.
pub const OVERFLOWS: &str = "is too large: its size in bytes overflows 64 bits";

/// A folder of its own under the system's temporary folder, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tapegrad-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    pub fn join(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
    pub fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(&self.0).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a finished process read and wrote through `read(2)`, `write(2)` and their
/// relatives (Linux's per-process I/O accounting, `rchar` and `wchar`), in bytes.
#[derive(Clone, Copy, Debug)]
pub struct Io {
    pub read: u64,
    pub written: u64,
}

/// Whether the child `pid` has exited, leaving it unreaped (a zombie whose
/// `/proc/<pid>/io` still holds its totals).
#[cfg(target_os = "linux")]
fn exited(pid: u32) -> bool {
    // SAFETY: an all-zero siginfo_t is valid; waitid only writes into it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: `info` is a valid siginfo_t; WNOWAIT leaves the child to `Child::wait`.
    let done = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) } == 0;
    // SAFETY: waitid filled `info` (si_pid stays 0 while the child runs).
    done && unsafe { info.si_pid() } != 0
}

/// The I/O totals of the exited, unreaped child `pid`.
#[cfg(target_os = "linux")]
fn io_of(pid: u32) -> Option<Io> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name))?.trim().parse().ok();
    Some(Io { read: field("rchar:")?, written: field("wchar:")? })
}

/// Runs `cmd`, killing it after 20 s (a hang fails the test instead of blocking it), and
/// returns its output and, on Linux, the bytes it read and wrote.
pub fn run_with_deadline(mut cmd: Command) -> (Output, Option<Io>) {
    let start = Instant::now();
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let _ = out.read_to_end(&mut o);
        let _ = err.read_to_end(&mut e);
        (o, e)
    });
    let io = loop {
        #[cfg(target_os = "linux")]
        if exited(child.id()) {
            break io_of(child.id());
        }
        #[cfg(not(target_os = "linux"))]
        if child.try_wait().unwrap().is_some() {
            break None;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} hangs");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let status = child.wait().unwrap();
    let (stdout, stderr) = reader.join().unwrap();
    (Output { status, stdout, stderr }, io)
}

/// The binary with `args`, within the deadline.
pub fn demo(args: &[&str]) -> (Output, Option<Io>) {
    let mut cmd = Command::new(DEMO);
    cmd.args(args);
    run_with_deadline(cmd)
}

/// The bytes a refusal may read: the program's start-up (the dynamic loader reads the
/// libraries' headers), `/proc/meminfo`, a safetensors header; far below any file's data
/// or a model's weights in the hostile tests.
pub const REFUSAL_READS: u64 = 64 << 10;

/// Runs the demo with `args` and checks the refusal: status 2, nothing on stdout, one line
/// on stderr containing each of `needles`, no panic; and before any work, which is what it
/// leaves: nothing written but that line (no output file, not even a temporary one) and
/// no data read (at most [`REFUSAL_READS`] bytes, counted by the kernel). Returns the
/// line.
#[track_caller]
pub fn refused(args: &[&str], needles: &[&str]) -> String {
    let (out, io) = demo(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}: stdout {:?}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: one line, got {stderr:?}");
    assert!(stderr.starts_with("tapegrad-demo: "), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{args:?}: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{args:?}: {stderr:?} should mention {needle:?}");
    }
    match io {
        Some(io) => {
            assert_eq!(io.written, out.stderr.len() as u64, "{args:?}: bytes written besides the line");
            assert!(io.read <= REFUSAL_READS, "{args:?}: read {} bytes before refusing", io.read);
        }
        None => eprintln!("SKIPPED: bytes read and written by a refusal not counted (no /proc/<pid>/io here)"),
    }
    stderr
}

/// Numbers of a (nested) JSON list as f32 (they are exact float32 values).
pub fn f32s(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(a) => a.iter().flat_map(f32s).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap() as f32],
        _ => panic!("not a number list: {v}"),
    }
}

/// Each of `got` within 1e-5 of `want`'s largest magnitude of `want`'s value.
#[track_caller]
pub fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-5 * scale, "{what}[{i}]: tapegrad {g}, PyTorch {w} (scale {scale})");
    }
}

/// Runs the demo with `args` and stdout on `/dev/full`: one line on stderr saying the
/// output cannot be written, status 2, no panic.
#[cfg(unix)]
#[track_caller]
pub fn assert_full_stdout_fails(args: &[&str]) {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = Command::new(DEMO).args(args).stdout(full).stderr(Stdio::piped()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot write the output") && !stderr.contains("panicked"), "{stderr}");
}

/// Runs the demo with `args` (more output than a pipe holds, so a write meets the closed
/// end) and its stdout closed at once: it ends quietly with status 0.
#[track_caller]
pub fn assert_closed_pipe_is_quiet(args: &[&str]) {
    let mut child = Command::new(DEMO).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Runs the demo with `args` under a file size limit of one block (`ulimit -f 1`), so a
/// write of more fails part way; with `ignore_xfsz` the write fails with EFBIG, else the
/// process is killed by SIGXFSZ.
#[cfg(unix)]
pub fn run_with_file_limit(args: &[&str], ignore_xfsz: bool) -> Output {
    let trap = if ignore_xfsz { "trap '' XFSZ; " } else { "" };
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("{trap}ulimit -f 1; exec \"$0\" \"$@\"")).arg(DEMO).args(args);
    run_with_deadline(cmd).0
}

/// Runs the demo with `args` then `option FILE`, writing through a symbolic link (with a
/// user's file named like a temporary file beside its target) and over a read-only file
/// (`ext` their extension): the link is kept and its target replaced, the mode is kept,
/// the user's file is untouched, and each file is new and starts with `start`.
#[cfg(unix)]
pub fn assert_writes_keep_links_and_modes(args: &[&str], option: &str, ext: &str, start: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new(&format!("links{}", option.replace('-', "")));
    let (real, link, ro) = (format!("real.{ext}"), format!("link.{ext}"), format!("read-only.{ext}"));
    std::fs::write(dir.join(&real), b"old").unwrap();
    let users = format!(".{real}.tapegrad-tmp");
    std::fs::write(dir.join(&users), b"the user's").unwrap();
    std::fs::write(dir.join(&ro), b"old").unwrap();
    std::fs::set_permissions(dir.join(&ro), std::fs::Permissions::from_mode(0o444)).unwrap();
    std::os::unix::fs::symlink(&real, dir.join(&link)).unwrap();
    for file in [&link, &ro] {
        let (out, _) = demo(&[args, &[option, &dir.join(file)]].concat());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(std::fs::symlink_metadata(dir.join(&link)).unwrap().file_type().is_symlink());
    for file in [&real, &ro] {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        assert!(bytes != b"old" && bytes.starts_with(start), "{file}: {:?}", &bytes[..bytes.len().min(16)]);
    }
    assert_eq!(std::fs::metadata(dir.join(&ro)).unwrap().permissions().mode() & 0o777, 0o444);
    assert_eq!(std::fs::read(dir.join(&users)).unwrap(), b"the user's");
    assert_eq!(dir.entries(), [users, link, ro, real]);
}

/// The optimizer settings of a reference file (`optimizer`, `lr`, `momentum` or `betas` and
/// `eps`, `weight_decay`).
pub fn optimizer_of(r: &Value) -> tapegrad_nn::OptimizerSpec {
    use tapegrad_nn::{OptimizerKind, OptimizerSpec};
    let f = |k: &str| r[k].as_f64().unwrap();
    let kind = match r["optimizer"].as_str().unwrap() {
        "sgd" => OptimizerKind::Sgd,
        "adam" => OptimizerKind::Adam,
        _ => OptimizerKind::AdamW,
    };
    let mut spec =
        OptimizerSpec { lr: f("lr"), weight_decay: f("weight_decay"), ..tapegrad_demo::fixes::default_optimizer(kind) };
    if kind == OptimizerKind::Sgd {
        spec.momentum = f("momentum");
    } else {
        spec.betas = (r["betas"][0].as_f64().unwrap(), r["betas"][1].as_f64().unwrap());
        spec.eps = f("eps");
    }
    spec
}
