//! The file rules of `tapegrad_nn::files`: atomic writes through links and over read-only
//! files, temporary files that fit any valid name and never clobber a user's file, outputs
//! that may be no input and no other output (by device and inode), and paths shown on one
//! line.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use tapegrad_nn::files::{
    check_distinct, check_output, escaped, one_line, open_regular, prepare_write, same_file, same_output, write_atomic,
};

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("tapegrad-files-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
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
fn symlink_target_replaced_link_and_mode_kept_users_files_untouched() {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let d = Dir::new("link");
    let real = d.join("real.bin");
    fs::write(&real, b"old").unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
    let link = d.join("link.bin");
    symlink("real.bin", &link).unwrap();
    // files of the user's that look like temporary files of a write
    let mine = [".real.bin.tapegrad-tmp", ".link.bin.tapegrad-tmp", ".tapegrad-0123456789abcdef.tmp"];
    for name in mine {
        fs::write(d.join(name), b"the user's").unwrap();
    }
    write_atomic(&link, b"new").unwrap();
    check_output(&link).unwrap();
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(fs::read(&real).unwrap(), b"new");
    assert_eq!(fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o640);
    for name in mine {
        assert_eq!(fs::read(d.join(name)).unwrap(), b"the user's", "{name}");
    }
    assert_eq!(d.entries(), [mine[1], mine[0], mine[2], "link.bin", "real.bin"]);
}

#[test]
fn names_up_to_the_limit_are_writable() {
    let d = Dir::new("long");
    for len in [242, 250, 255] {
        let p = d.join(&"n".repeat(len));
        check_output(&p).unwrap_or_else(|e| panic!("{len} bytes: {e}"));
        write_atomic(&p, b"long").unwrap_or_else(|e| panic!("{len} bytes: {e}"));
        assert_eq!(fs::read(&p).unwrap(), b"long");
        write_atomic(&p, b"again").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"again");
    }
    // one byte over the limit is the system's refusal, and nothing is left behind
    assert!(write_atomic(d.join(&"n".repeat(256)), b"x").is_err());
    assert_eq!(d.entries().len(), 3, "{:?}", d.entries());
}

#[test]
fn concurrent_writes_each_replace_the_file_whole() {
    let d = Dir::new("concurrent");
    let p = d.join("a.txt");
    let first = prepare_write(&p, b"first").unwrap();
    let second = prepare_write(&p, b"second").unwrap();
    first.commit().unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"first");
    second.commit().unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"second");
    assert_eq!(d.entries(), ["a.txt"]);
}

#[test]
fn uncommitted_write_leaves_the_old_file_and_no_temporary_file() {
    let d = Dir::new("drop");
    let p = d.join("a.txt");
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
    assert!(check_output(d.join("no/such/x")).is_err());
    assert!(check_output(format!("{}/", d.join("f").display())).is_err());
    assert!(check_output("").is_err());
    assert!(check_output(d.join("ok")).is_ok());
    assert!(d.entries().is_empty());
    assert!(same_output(d.join("x"), d.0.join(".").join("x")));
    assert!(!same_output(d.join("x"), d.join("y")));
}

#[cfg(unix)]
#[test]
fn special_files_are_refused_for_reading_and_writing() {
    assert!(open_regular("/dev/zero").is_err());
    assert!(check_output("/dev/null").is_err());
    let d = Dir::new("dir");
    assert!(open_regular(&d.0).is_err());
}

#[cfg(unix)]
#[test]
fn an_output_is_no_input_and_no_other_output_through_any_link() {
    let d = Dir::new("distinct");
    let a = d.join("a.st");
    fs::write(&a, b"weights").unwrap();
    std::os::unix::fs::symlink("a.st", d.join("soft.st")).unwrap();
    fs::hard_link(&a, d.join("hard.st")).unwrap();
    let sub = d.join("sub");
    fs::create_dir(&sub).unwrap();
    for alias in ["a.st", "soft.st", "hard.st", "sub/../a.st"] {
        let out = d.join(alias);
        let err = check_distinct(&[("--load", &a)], &[("--dot", &out)]).unwrap_err();
        assert!(err.starts_with("--dot names the file that --load reads ("), "{alias}: {err}");
        assert!(err.contains(alias), "{err}");
        let err = check_distinct(&[], &[("--save", &a), ("--dot", &out)]).unwrap_err();
        assert!(err.starts_with("--save and --dot name the same file"), "{alias}: {err}");
        assert!(same_file(&a, &out));
    }
    // two outputs that do not exist yet, one through a dangling link
    std::os::unix::fs::symlink("new.st", d.join("dangling.st")).unwrap();
    let err = check_distinct(&[], &[("--save", &d.join("new.st")), ("--plot", &d.join("dangling.st"))]).unwrap_err();
    assert!(err.starts_with("--save and --plot name the same file"), "{err}");
    check_distinct(&[("--load", &a)], &[("--save", &d.join("b.st")), ("--dot", &d.join("c.dot"))]).unwrap();
    // a copy is another file
    fs::write(d.join("copy.st"), b"weights").unwrap();
    check_distinct(&[("--load", &a)], &[("--save", &d.join("copy.st"))]).unwrap();
    assert_eq!(fs::read(&a).unwrap(), b"weights");
}

#[cfg(unix)]
#[test]
fn paths_in_messages_stay_on_one_line() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let odd = Path::new(OsStr::from_bytes(b"dir\nwith\r\x1b[31m\xffname"));
    assert_eq!(escaped(odd), "dir\\nwith\\r\\u{1b}[31m\\xffname");
    assert_eq!(one_line("a\nb\u{2028}c"), "a\\nb\\u{2028}c");
    assert_eq!(escaped(Path::new("plain/ünïcode name.st")), "plain/ünïcode name.st");
    // a missing folder whose name has a newline: the error is one line
    let d = Dir::new("newline");
    let p = d.0.join("no\nsuch").join("x.st");
    let err: io::Error = check_output(&p).unwrap_err();
    assert!(!err.to_string().contains('\n') && err.to_string().contains("no\\nsuch"), "{err}");
    // the library's own errors name paths escaped too: loading weights, reading a CSV
    let mut tape = tapegrad::Tape::<f32>::new();
    let model = tapegrad_nn::Sequential::mlp(&tape, &[2, 1], &mut tapegrad::TorchRng::manual_seed(0));
    let err = tapegrad_nn::load(&mut tape, &model, d.0.join("a\nb.safetensors")).unwrap_err().to_string();
    assert!(!err.contains('\n') && err.contains("a\\nb.safetensors"), "{err}");
    let err = tapegrad_nn::Dataset::<f32>::from_csv(d.0.join("a\nb.csv"), 1.0).unwrap_err().to_string();
    assert!(!err.contains('\n') && err.contains("a\\nb.csv"), "{err}");
}

/// Whether the kernel and the filesystem of `dir` make unnamed temporary files (`O_TMPFILE`).
#[cfg(target_os = "linux")]
fn unnamed_files_in(dir: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let made = fs::OpenOptions::new().write(true).custom_flags(libc::O_TMPFILE).open(dir).is_ok();
    if !made {
        eprintln!("SKIPPED: unnamed temporary files (no O_TMPFILE in {})", dir.display());
    }
    made
}

/// On Linux a prepared write is an unnamed file: until the commit the folder holds only the
/// old file, so a write killed part way leaves nothing behind.
#[cfg(target_os = "linux")]
#[test]
fn a_prepared_write_has_no_name_until_its_commit() {
    let d = Dir::new("unnamed");
    if !unnamed_files_in(&d.0) {
        return;
    }
    let real = d.join("real.bin");
    fs::write(&real, b"old").unwrap();
    std::os::unix::fs::symlink("real.bin", d.join("link.bin")).unwrap();
    let w = prepare_write(d.join("link.bin"), b"new").unwrap();
    assert_eq!(w.target(), real);
    assert_eq!(d.entries(), ["link.bin", "real.bin"]);
    w.commit().unwrap();
    assert_eq!(d.entries(), ["link.bin", "real.bin"]);
    assert_eq!(fs::read(&real).unwrap(), b"new");
}

/// A commit that fails after the temporary file got its name (a folder took the target's
/// place since the prepare) removes that name again and leaves the folder alone.
#[test]
fn a_failed_commit_leaves_no_temporary_file() {
    let d = Dir::new("failed-commit");
    let p = d.join("a.txt");
    let w = prepare_write(&p, b"new").unwrap();
    fs::create_dir(&p).unwrap();
    fs::write(p.join("inside"), b"kept").unwrap();
    let err = w.commit().unwrap_err();
    assert!(err.to_string().starts_with("cannot replace the file with the temporary file"), "{err}");
    assert_eq!(d.entries(), ["a.txt"]);
    assert_eq!(fs::read(p.join("inside")).unwrap(), b"kept");
}

/// An output below a regular file is refused with the system's reason: not a folder.
#[cfg(unix)]
#[test]
fn an_output_below_a_file_is_not_in_a_folder() {
    let d = Dir::new("below-file");
    fs::write(d.join("file"), b"data").unwrap();
    for p in [d.join("file").join("x"), d.join("file").join("x").join("y")] {
        let err = check_output(&p).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotADirectory, "{}: {err}", p.display());
        assert!(write_atomic(&p, b"x").is_err());
    }
    assert_eq!(d.entries(), ["file"]);
    assert_eq!(fs::read(d.join("file")).unwrap(), b"data");
}
