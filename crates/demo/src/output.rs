//! Writing to stdout and stderr without panicking (`print!` panics when stdout cannot be
//! written): a closed pipe (`tapegrad-demo | head -1`) ends the program quietly with status
//! 0, as the reader asked for no more; any other write error (`> /dev/full`) is one line on
//! stderr and exit status 2.
//!
//! ```no_run
//! use tapegrad_demo::output;
//!
//! fn main() -> std::process::ExitCode {
//!     if let Err(e) = output::stdout("hello\n") {
//!         return output::stdout_failed(&e);
//!     }
//!     std::process::ExitCode::SUCCESS
//! }
//! ```

use std::io::{self, Write};
use std::process::ExitCode;

/// The program's name, first on every message line.
pub const PROGRAM: &str = "tapegrad-demo";

/// Writes `text` to stdout and flushes it.
///
/// # Errors
/// The write or the flush failed (give the error to [`stdout_failed`]).
pub fn stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// The end of a program whose stdout write failed: status 0 and no message for a closed
/// pipe, else one line on stderr and status 2.
pub fn stdout_failed(e: &io::Error) -> ExitCode {
    if e.kind() == io::ErrorKind::BrokenPipe {
        ExitCode::SUCCESS
    } else {
        fail(&format!("cannot write the output: {e}"))
    }
}

/// One line `tapegrad-demo: MSG` on stderr (a stderr that cannot be written is ignored);
/// control characters in `msg` (from a path or an argument) are escaped, so it stays one
/// line.
pub fn say(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "{PROGRAM}: {}", tapegrad_nn::files::one_line(msg));
}

/// [`say`] then exit status 2: the end of a run refused for a bad argument or file.
pub fn fail(msg: &str) -> ExitCode {
    say(msg);
    ExitCode::from(2)
}
