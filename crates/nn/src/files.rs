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
//!   existing target's permissions are kept. The temporary file has a fixed name,
//!   `.NAME.tapegrad-tmp` beside `NAME`, so one left behind by a killed process is removed
//!   by the next write of the same file.
//! - [`check_output`] runs the checks of a write (the path names a file, not a folder or a
//!   device; its folder exists and takes new files) without writing it, so a program can
//!   refuse a bad output path before doing any work.
//!
//! Errors are [`io::Error`]s whose message says what failed (`cannot create a file in
//! folder out: Permission denied (os error 13)`); callers add the path.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Suffix of the temporary files of [`write_atomic`]: `.NAME.tapegrad-tmp`.
pub const TEMP_SUFFIX: &str = ".tapegrad-tmp";

/// Symbolic links followed at most, as Linux's `ELOOP` limit.
const MAX_LINKS: usize = 40;

fn error(kind: io::ErrorKind, msg: impl Into<String>) -> io::Error {
    io::Error::new(kind, msg.into())
}

fn context(what: String) -> impl FnOnce(io::Error) -> io::Error {
    move |e| error(e.kind(), format!("{what}: {e}"))
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

/// Where a write goes: the file it replaces, its folder and the temporary file's path.
#[derive(Debug)]
struct Target {
    file: PathBuf,
    dir: PathBuf,
    tmp: PathBuf,
    /// The permissions of the file replaced, if there is one.
    permissions: Option<fs::Permissions>,
}

fn target(path: &Path) -> io::Result<Target> {
    let names_a_folder = path.as_os_str().is_empty()
        || path.as_os_str().to_string_lossy().ends_with(std::path::is_separator)
        || path.file_name().is_none();
    if names_a_folder {
        return Err(error(io::ErrorKind::IsADirectory, "it is a folder, not a file"));
    }
    let file = resolve_links(path)?;
    let Some(name) = file.file_name() else {
        return Err(error(io::ErrorKind::IsADirectory, "it is a folder, not a file"));
    };
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(error(io::ErrorKind::InvalidInput, format!("{} is not a folder", dir.display()))),
        Err(e) => return Err(context(format!("folder {}", dir.display()))(e)),
    }
    let permissions = match fs::metadata(&file) {
        Ok(m) if m.is_dir() => return Err(error(io::ErrorKind::IsADirectory, "it is a folder, not a file")),
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
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(TEMP_SUFFIX);
    let tmp = dir.join(tmp_name);
    Ok(Target { file, dir, tmp, permissions })
}

/// Takes an exclusive advisory lock on a temporary file without waiting; `false` if
/// another process holds it (a write of the same file in progress). Locks end with their
/// process, so a killed write's leftover is never locked.
#[cfg(unix)]
fn try_lock(file: &File) -> bool {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a file descriptor this `File` owns
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(not(unix))]
fn try_lock(_: &File) -> bool {
    true
}

/// Removes a temporary file left by an earlier write (a symbolic link there is removed,
/// not followed), unless a running write of the same file holds it.
fn remove_leftover(t: &Target) -> io::Result<()> {
    let busy = || {
        error(
            io::ErrorKind::ResourceBusy,
            format!(
                "another process is writing {} (its temporary file {} is locked)",
                t.file.display(),
                t.tmp.display()
            ),
        )
    };
    match fs::symlink_metadata(&t.tmp) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Ok(m) if m.is_file() => {
            let mut options = OpenOptions::new();
            options.read(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW);
            }
            if let Ok(f) = options.open(&t.tmp) {
                if !try_lock(&f) {
                    return Err(busy());
                }
            }
        }
        _ => {}
    }
    match fs::remove_file(&t.tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(context(format!("cannot remove the leftover temporary file {}", t.tmp.display()))(e))
        }
        _ => Ok(()),
    }
}

/// Creates the temporary file of `t`, locked for this process (see [`try_lock`]).
fn create_tmp(t: &Target) -> io::Result<File> {
    remove_leftover(t)?;
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&t.tmp)
        .map_err(context(format!("cannot create a file in folder {}", t.dir.display())))?;
    if !try_lock(&file) {
        return Err(error(io::ErrorKind::ResourceBusy, format!("another process locked {}", t.tmp.display())));
    }
    Ok(file)
}

/// Checks that [`write_atomic`] could write `path`, without writing it: the path names a
/// file (not a folder, device or FIFO), its folder exists and a file can be created in it.
/// Removes a leftover temporary file of an earlier write.
///
/// # Errors
/// The reason the write would fail.
pub fn check_output(path: impl AsRef<Path>) -> io::Result<()> {
    let t = target(path.as_ref())?;
    let file = create_tmp(&t)?;
    let removed = fs::remove_file(&t.tmp).map_err(context(format!("cannot remove {}", t.tmp.display())));
    drop(file);
    removed
}

/// Whether two output paths end in the same file (after following symbolic links and
/// resolving the folder), so a program can refuse to write one file twice.
pub fn same_output(a: impl AsRef<Path>, b: impl AsRef<Path>) -> bool {
    let key = |p: &Path| -> Option<PathBuf> {
        let t = target(p).ok()?;
        Some(fs::canonicalize(&t.dir).ok()?.join(t.file.file_name()?))
    };
    match (key(a.as_ref()), key(b.as_ref())) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// A written temporary file waiting to replace its target ([`prepare_write`]). Dropping
/// it without [`commit`](Self::commit) removes the temporary file and leaves the target
/// as it was.
#[derive(Debug)]
pub struct PreparedWrite {
    target: Target,
    /// The temporary file, open and locked until the rename (or its removal) is done.
    file: File,
    committed: bool,
}

/// Writes `bytes` to the temporary file of `path` and flushes it to disk; the target is
/// not touched until [`PreparedWrite::commit`]. Writing several files all or nothing:
/// prepare each, then commit each.
///
/// # Errors
/// The path is not writable ([`check_output`]'s reasons) or writing fails (a full disk);
/// no temporary file remains.
pub fn prepare_write(path: impl AsRef<Path>, bytes: &[u8]) -> io::Result<PreparedWrite> {
    let target = target(path.as_ref())?;
    let file = create_tmp(&target)?;
    // from here on, dropping `prepared` removes the temporary file
    let mut prepared = PreparedWrite { target, file, committed: false };
    prepared.file.write_all(bytes).map_err(context("cannot write the temporary file".into()))?;
    if let Some(permissions) = &prepared.target.permissions {
        prepared
            .file
            .set_permissions(permissions.clone())
            .map_err(context("cannot copy the file's permissions".into()))?;
    }
    prepared.file.sync_all().map_err(context("cannot flush the temporary file to disk".into()))?;
    Ok(prepared)
}

impl PreparedWrite {
    /// Renames the temporary file over the target (the file a symbolic link points to).
    ///
    /// # Errors
    /// The rename fails; the temporary file is removed and the target left as it was.
    pub fn commit(mut self) -> io::Result<()> {
        fs::rename(&self.target.tmp, &self.target.file)
            .map_err(context("cannot replace the file with the temporary file".into()))?;
        self.committed = true;
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
        if !self.committed {
            let _ = fs::remove_file(&self.target.tmp);
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

    struct Dir(PathBuf);
    impl Dir {
        fn new(name: &str) -> Dir {
            let d = std::env::temp_dir().join(format!("tapegrad-files-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(&d).unwrap();
            Dir(d)
        }
        fn entries(&self) -> Vec<String> {
            let mut v: Vec<String> =
                fs::read_dir(&self.0).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
            v.sort();
            v
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlink_target_replaced_link_and_mode_kept_leftover_removed() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let d = Dir::new("link");
        let real = d.0.join("real.bin");
        fs::write(&real, b"old").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
        let link = d.0.join("link.bin");
        symlink("real.bin", &link).unwrap();
        // a leftover of a killed write
        fs::write(d.0.join(".real.bin.tapegrad-tmp"), b"partial").unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"new");
        assert_eq!(fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(d.entries(), ["link.bin", "real.bin"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_write_in_progress_is_not_clobbered_by_a_second() {
        let d = Dir::new("busy");
        let p = d.0.join("a.txt");
        let first = prepare_write(&p, b"first").unwrap();
        let err = prepare_write(&p, b"second").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ResourceBusy, "{err}");
        assert!(check_output(&p).is_err());
        first.commit().unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"first");
        write_atomic(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        assert_eq!(d.entries(), ["a.txt"]);
    }

    #[test]
    fn uncommitted_write_leaves_the_old_file() {
        let d = Dir::new("drop");
        let p = d.0.join("a.txt");
        fs::write(&p, b"old").unwrap();
        let w = prepare_write(&p, b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"old");
        drop(w);
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(d.entries(), ["a.txt"]);
    }

    #[test]
    fn folders_and_missing_folders_are_refused() {
        let d = Dir::new("bad");
        assert!(check_output(&d.0).is_err());
        assert!(check_output(d.0.join("no/such/x")).is_err());
        assert!(check_output(format!("{}/", d.0.join("f").display())).is_err());
        assert!(check_output("").is_err());
        assert!(check_output(d.0.join("ok")).is_ok());
        assert!(d.entries().is_empty());
        assert!(same_output(d.0.join("x"), d.0.join(".").join("x")));
        assert!(!same_output(d.0.join("x"), d.0.join("y")));
    }

    #[cfg(unix)]
    #[test]
    fn special_files_are_refused_for_reading_and_writing() {
        assert!(open_regular("/dev/zero").is_err());
        assert!(check_output("/dev/null").is_err());
        let d = Dir::new("dir");
        assert!(open_regular(&d.0).is_err());
    }
}
