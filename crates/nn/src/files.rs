//! Reading and writing files safely, for every file the project reads or writes.
//!
//! - [`open_regular`] opens a file for reading only if it is a regular file: a FIFO, a
//!   device, a socket or a folder is refused without reading from it or waiting for a
//!   writer (the file is opened non-blocking and checked on the open handle, so swapping
//!   the path between a check and the open changes nothing).
//! - [`write_atomic`] (or [`prepare_write`] then [`PreparedWrite::commit`], to write several
//!   files all or nothing) writes a temporary file in the target's folder, flushes it to
//!   disk and renames it over the target: readers see the old file or the new one, never a
//!   part. Through a symbolic link the link's target is replaced and the link kept; an
//!   existing target's permissions are kept. On Linux the temporary file has no name until
//!   the commit (`O_TMPFILE`), so a write killed part way leaves nothing behind; elsewhere,
//!   or on a filesystem without `O_TMPFILE`, it is `.tapegrad-` + 16 random hex digits +
//!   `.tmp` (30 bytes, so any valid target name can be written), removed when the write
//!   fails. No other file is ever removed: a user's file is never taken for a leftover.
//!   Concurrent writes of one file each replace it whole; the last commit wins.
//! - [`check_output`] runs the checks of a write (the path names a file, not a folder or a
//!   device; its folder exists and takes new files) without writing it, so a program can
//!   refuse a bad output path before doing any work; [`check_distinct`] refuses a run
//!   whose output is one of its inputs or another of its outputs (by device and inode, so
//!   symbolic and hard links are seen through).
//! - [`escaped`] shows a path on one line (control characters and bytes that are not
//!   UTF-8 escaped), as every message of this module does.
//!
//! Errors are [`io::Error`]s whose message says what failed (`cannot create a file in
//! folder out: Permission denied (os error 13)`); callers add the path.

use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Start of the name of a named temporary file of [`write_atomic`]: `.tapegrad-` + 16 hex
/// digits + `.tmp`.
pub const TEMP_PREFIX: &str = ".tapegrad-";

/// Symbolic links followed at most, as Linux's `ELOOP` limit.
const MAX_LINKS: usize = 40;

fn error(kind: io::ErrorKind, msg: impl Into<String>) -> io::Error {
    io::Error::new(kind, msg.into())
}

fn context(what: String) -> impl FnOnce(io::Error) -> io::Error {
    move |e| error(e.kind(), format!("{what}: {e}"))
}

/// `path` for a message on one line: control characters (a newline, an escape) as Rust
/// escapes (`\n`, `\u{1b}`), bytes that are not UTF-8 as `\xNN`; everything else as is.
///
/// ```
/// use std::path::Path;
/// assert_eq!(tapegrad_nn::files::escaped(Path::new("out/a\nb.st")), "out/a\\nb.st");
/// ```
pub fn escaped(path: &Path) -> String {
    escape_bytes(path.as_os_str().as_encoded_bytes())
}

/// `text` on one line: its control characters escaped as [`escaped`] does, for a message
/// that may hold a path or an argument.
pub fn one_line(text: &str) -> String {
    escape_bytes(text.as_bytes())
}

fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                out.extend(c.escape_debug());
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Opens `path` for reading if it is a regular file (after following symbolic links), and
/// returns it with its length in bytes.
///
/// # Errors
/// The file cannot be opened, or it is a folder (kind `IsADirectory`), FIFO, device or
/// socket (kind `InvalidInput`); nothing is read from it.
pub fn open_regular(path: impl AsRef<Path>) -> io::Result<(File, u64)> {
    let path = path.as_ref();
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        // a FIFO with no writer opens at once instead of blocking; no effect on regular files
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(error(io::ErrorKind::IsADirectory, "it is a folder, not a file"));
    }
    if !meta.is_file() {
        return Err(error(
            io::ErrorKind::InvalidInput,
            format!("it is not a regular file but a {}", kind_name(&meta.file_type())),
        ));
    }
    Ok((file, meta.len()))
}

/// `FIFO`, `character device`, ... for messages.
fn kind_name(t: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "character device";
        }
        if t.is_block_device() {
            return "block device";
        }
        if t.is_socket() {
            return "socket";
        }
    }
    if t.is_dir() {
        "folder"
    } else {
        "special file"
    }
}

/// The file a write to `path` replaces: `path` with its symbolic links followed (a
/// dangling link gives the path it points to, which the write creates).
fn resolve_links(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&p).map_err(context("cannot read the symbolic link".into()))?;
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            Ok(_) => return Ok(p),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(p),
            Err(e) => return Err(context("cannot look at the path".into())(e)),
        }
    }
    Err(error(io::ErrorKind::InvalidInput, "too many levels of symbolic links"))
}

/// Where a write goes: the file it replaces, its folder, and the permissions of the file
/// replaced if there is one.
#[derive(Debug)]
struct Target {
    file: PathBuf,
    dir: PathBuf,
    permissions: Option<fs::Permissions>,
}

fn folder_error() -> io::Error {
    error(io::ErrorKind::IsADirectory, "it is a folder, not a file")
}

fn target(path: &Path) -> io::Result<Target> {
    let names_a_folder = path.as_os_str().is_empty()
        || path.as_os_str().to_string_lossy().ends_with(std::path::is_separator)
        || path.file_name().is_none();
    if names_a_folder {
        return Err(folder_error());
    }
    let file = resolve_links(path)?;
    if file.file_name().is_none() {
        return Err(folder_error());
    }
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(error(io::ErrorKind::InvalidInput, format!("{} is not a folder", escaped(&dir)))),
        Err(e) => return Err(context(format!("folder {}", escaped(&dir)))(e)),
    }
    let permissions = match fs::metadata(&file) {
        Ok(m) if m.is_dir() => return Err(folder_error()),
        Ok(m) if !m.is_file() => {
            return Err(error(
                io::ErrorKind::InvalidInput,
                format!("it is a {}, not a regular file (it would be replaced)", kind_name(&m.file_type())),
            ))
        }
        Ok(m) => Some(m.permissions()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(context("cannot look at the file".into())(e)),
    };
    Ok(Target { file, dir, permissions })
}

/// A fresh name `.tapegrad-XXXXXXXXXXXXXXXX.tmp` in `dir`: 16 hex digits from a randomly
/// keyed hash of the process, a counter and the time, so two writers never pick the same.
fn temp_name(dir: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    h.write_u128(now.as_nanos());
    dir.join(format!("{TEMP_PREFIX}{:016x}.tmp", h.finish()))
}

/// Runs `make` on fresh [`temp_name`]s in `dir` until one is free (`make` fails with
/// `AlreadyExists` on a taken name), and returns its result with the name.
fn at_fresh_name<T>(dir: &Path, mut make: impl FnMut(&Path) -> io::Result<T>) -> io::Result<(T, PathBuf)> {
    let mut tries = 0;
    loop {
        let path = temp_name(dir);
        match make(&path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 16 => tries += 1,
            r => return r.map(|x| (x, path)),
        }
    }
}

/// The temporary file of a write.
#[derive(Debug)]
enum Temp {
    /// Created with `O_TMPFILE`: no name until [`link_anonymous`] gives it one.
    Anonymous(File),
    /// Created at this path, which the write removes unless it commits.
    Named(File, PathBuf),
}

impl Temp {
    fn file(&mut self) -> &mut File {
        match self {
            Temp::Anonymous(f) | Temp::Named(f, _) => f,
        }
    }
}

/// An unnamed file in `dir` (`O_TMPFILE`), if the platform and filesystem have it and
/// `/proc/self/fd` is there to name it later; `Ok(None)` to fall back to a named file.
#[cfg(target_os = "linux")]
fn create_anonymous(dir: &Path) -> io::Result<Option<File>> {
    use std::os::unix::fs::OpenOptionsExt;
    if !Path::new("/proc/self/fd").is_dir() {
        return Ok(None);
    }
    match OpenOptions::new().write(true).custom_flags(libc::O_TMPFILE).mode(0o666).open(dir) {
        Ok(f) => Ok(Some(f)),
        // no O_TMPFILE in this kernel or filesystem
        Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)) => Ok(None),
        Err(e) => Err(e),
    }
}

// Other systems' code: not compiled on Linux, where the mutation tests run, so no test
// here can see a change to it; cargo-mutants skips it (it reads `mutants::skip` in any
// attribute; `cfg(mutants)` is never set, so the compiler ignores the attribute).
#[cfg(not(target_os = "linux"))]
#[cfg_attr(mutants, mutants::skip)]
fn create_anonymous(_: &Path) -> io::Result<Option<File>> {
    Ok(None)
}

/// Gives the `O_TMPFILE` file `file` the name `path` (which must not exist).
#[cfg(target_os = "linux")]
fn link_anonymous(file: &File, path: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::io::AsRawFd;
    let to_c = |p: &[u8]| CString::new(p).map_err(|_| error(io::ErrorKind::InvalidInput, "a NUL byte in the path"));
    let from = to_c(format!("/proc/self/fd/{}", file.as_raw_fd()).as_bytes())?;
    let to = to_c(path.as_os_str().as_bytes())?;
    // SAFETY: both paths are NUL-terminated strings that outlive the call
    let r =
        unsafe { libc::linkat(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), libc::AT_SYMLINK_FOLLOW) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

// other systems' code, skipped by cargo-mutants (see `create_anonymous`)
#[cfg(not(target_os = "linux"))]
#[cfg_attr(mutants, mutants::skip)]
fn link_anonymous(_: &File, _: &Path) -> io::Result<()> {
    Err(error(io::ErrorKind::Unsupported, "unnamed temporary files exist on Linux only"))
}

/// Creates the temporary file of a write in `t`'s folder.
fn create_temp(t: &Target) -> io::Result<Temp> {
    let what = || format!("cannot create a file in folder {}", escaped(&t.dir));
    if let Some(f) = create_anonymous(&t.dir).map_err(context(what()))? {
        return Ok(Temp::Anonymous(f));
    }
    let create = |p: &Path| OpenOptions::new().write(true).create_new(true).open(p);
    let (f, path) = at_fresh_name(&t.dir, create).map_err(context(what()))?;
    Ok(Temp::Named(f, path))
}

/// Checks that [`write_atomic`] could write `path`, without writing it: the path names a
/// file (not a folder, device or FIFO), its folder exists and a file can be created in it.
///
/// # Errors
/// The reason the write would fail.
pub fn check_output(path: impl AsRef<Path>) -> io::Result<()> {
    let t = target(path.as_ref())?;
    match create_temp(&t)? {
        Temp::Anonymous(_) => Ok(()),
        Temp::Named(f, p) => {
            drop(f);
            fs::remove_file(&p).map_err(context(format!("cannot remove {}", escaped(&p))))
        }
    }
}

/// Device and inode of the file at `path` (links followed), if it exists.
#[cfg(unix)]
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

// other systems' code, skipped by cargo-mutants (see `create_anonymous`)
#[cfg(not(unix))]
#[cfg_attr(mutants, mutants::skip)]
fn file_id(_: &Path) -> Option<(u64, u64)> {
    None
}

/// Whether two paths name one file: the same device and inode if both exist (so symbolic
/// and hard links are seen through), else the same folder and name after following
/// symbolic links (two outputs that do not exist yet).
pub fn same_file(a: impl AsRef<Path>, b: impl AsRef<Path>) -> bool {
    let (a, b) = (a.as_ref(), b.as_ref());
    if let (Some(x), Some(y)) = (file_id(a), file_id(b)) {
        return x == y;
    }
    let key = |p: &Path| -> Option<PathBuf> {
        let t = target(p).ok()?;
        Some(fs::canonicalize(&t.dir).ok()?.join(t.file.file_name()?))
    };
    match (key(a), key(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Whether two output paths end in the same file; [`same_file`].
pub fn same_output(a: impl AsRef<Path>, b: impl AsRef<Path>) -> bool {
    same_file(a, b)
}

/// Refuses a run that would replace one of its inputs or write one file twice: each of
/// `outputs` (an option's name and its path) must be none of `inputs` and none of the
/// other outputs ([`same_file`]).
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("tapegrad-doc-distinct-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// use tapegrad_nn::files::check_distinct;
/// let weights = dir.join("a.st");
/// std::fs::write(&weights, b"weights").unwrap();
/// let err = check_distinct(&[("--load", &weights)], &[("--dot", &dir.join(".").join("a.st"))]).unwrap_err();
/// assert!(err.starts_with("--dot names the file that --load reads"), "{err}");
/// assert!(check_distinct(&[("--load", &weights)], &[("--dot", &dir.join("b.dot"))]).is_ok());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
///
/// # Errors
/// One line naming the two options and the path.
pub fn check_distinct(inputs: &[(&str, &Path)], outputs: &[(&str, &Path)]) -> Result<(), String> {
    for (i, &(out, path)) in outputs.iter().enumerate() {
        if let Some((input, _)) = inputs.iter().find(|(_, p)| same_file(p, path)) {
            return Err(format!(
                "{out} names the file that {input} reads ({}); an output may not replace an input",
                escaped(path)
            ));
        }
        if let Some((other, _)) = outputs[i + 1..].iter().find(|(_, p)| same_file(p, path)) {
            return Err(format!("{out} and {other} name the same file {}", escaped(path)));
        }
    }
    Ok(())
}

/// A written temporary file waiting to replace its target ([`prepare_write`]). Dropping
/// it without [`commit`](Self::commit) removes the temporary file and leaves the target
/// as it was.
#[derive(Debug)]
pub struct PreparedWrite {
    target: Target,
    temp: Temp,
    /// The name the temporary file has once linked or created, removed unless committed.
    named: Option<PathBuf>,
}

/// Writes `bytes` to a temporary file in the folder of `path` and flushes it to disk; the
/// target is not touched until [`PreparedWrite::commit`]. Writing several files all or
/// nothing: prepare each, then commit each.
///
/// # Errors
/// The path is not writable ([`check_output`]'s reasons) or writing fails (a full disk);
/// no temporary file remains.
pub fn prepare_write(path: impl AsRef<Path>, bytes: &[u8]) -> io::Result<PreparedWrite> {
    let target = target(path.as_ref())?;
    let temp = create_temp(&target)?;
    let named = match &temp {
        Temp::Named(_, p) => Some(p.clone()),
        Temp::Anonymous(_) => None,
    };
    // from here on, dropping `prepared` removes a named temporary file
    let mut prepared = PreparedWrite { target, temp, named };
    let file = prepared.temp.file();
    file.write_all(bytes).map_err(context("cannot write the temporary file".into()))?;
    if let Some(permissions) = &prepared.target.permissions {
        let file = prepared.temp.file();
        file.set_permissions(permissions.clone()).map_err(context("cannot copy the file's permissions".into()))?;
    }
    prepared.temp.file().sync_all().map_err(context("cannot flush the temporary file to disk".into()))?;
    Ok(prepared)
}

impl PreparedWrite {
    /// Renames the temporary file over the target (the file a symbolic link points to).
    ///
    /// # Errors
    /// The rename fails; the temporary file is removed and the target left as it was.
    pub fn commit(mut self) -> io::Result<()> {
        let named = match &self.temp {
            Temp::Named(_, path) => path.clone(),
            Temp::Anonymous(f) => {
                let (_, path) = at_fresh_name(&self.target.dir, |p| link_anonymous(f, p))
                    .map_err(context("cannot name the temporary file".into()))?;
                self.named = Some(path.clone());
                path
            }
        };
        fs::rename(&named, &self.target.file)
            .map_err(context("cannot replace the file with the temporary file".into()))?;
        self.named = None;
        // make the rename itself durable (best effort: not every platform opens folders)
        #[cfg(unix)]
        let _ = File::open(&self.target.dir).and_then(|d| d.sync_all());
        Ok(())
    }

    /// The file the commit replaces (the path with its symbolic links followed).
    pub fn target(&self) -> &Path {
        &self.target.file
    }
}

impl Drop for PreparedWrite {
    fn drop(&mut self) {
        if let Some(path) = &self.named {
            let _ = fs::remove_file(path);
        }
    }
}

/// Replaces the file at `path` by `bytes` atomically: [`prepare_write`] then
/// [`PreparedWrite::commit`].
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("tapegrad-doc-write-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let path = dir.join("notes.txt");
/// tapegrad_nn::files::write_atomic(&path, b"first")?;
/// tapegrad_nn::files::write_atomic(&path, b"second")?;
/// assert_eq!(std::fs::read(&path)?, b"second");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// As [`prepare_write`] and [`PreparedWrite::commit`]; the target is then unchanged and no
/// temporary file remains.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> io::Result<()> {
    prepare_write(path, bytes)?.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs [`at_fresh_name`] with a `make` that fails as `fail(call)` says (`None`: success);
    /// the result and the names tried. More than 100 tries fail the test.
    fn tries(fail: impl Fn(usize) -> Option<io::ErrorKind>) -> (io::Result<PathBuf>, Vec<PathBuf>) {
        let mut names = Vec::new();
        let r = at_fresh_name(Path::new("dir"), |p| {
            names.push(p.to_path_buf());
            assert!(names.len() <= 100, "at_fresh_name does not stop");
            match fail(names.len()) {
                Some(kind) => Err(io::Error::new(kind, "planned")),
                None => Ok(p.to_path_buf()),
            }
        });
        let r = r.map(|(made, name)| {
            assert_eq!(made, name);
            name
        });
        (r, names)
    }

    #[test]
    fn a_taken_name_is_retried_with_another() {
        let (r, names) = tries(|call| (call <= 3).then_some(io::ErrorKind::AlreadyExists));
        assert_eq!(names.len(), 4);
        assert_eq!(r.unwrap(), names[3]);
        let distinct: std::collections::HashSet<&PathBuf> = names.iter().collect();
        assert_eq!(distinct.len(), 4, "{names:?}");
        for p in &names {
            assert_eq!(p.parent(), Some(Path::new("dir")), "{p:?}");
            let name = p.file_name().unwrap().to_str().unwrap();
            assert!(name.starts_with(TEMP_PREFIX) && name.ends_with(".tmp") && name.len() == 30, "{name}");
        }
    }

    #[test]
    fn names_are_tried_17_times_at_most() {
        let (r, names) = tries(|_| Some(io::ErrorKind::AlreadyExists));
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(names.len(), 17);
    }

    #[test]
    fn other_errors_are_not_retried() {
        let (r, names) = tries(|_| Some(io::ErrorKind::PermissionDenied));
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn fresh_names_differ() {
        let dir = Path::new("d");
        let names: std::collections::HashSet<PathBuf> = (0..1000).map(|_| temp_name(dir)).collect();
        assert_eq!(names.len(), 1000);
    }
}
