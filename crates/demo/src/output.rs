//! The process rules every program of the workspace follows (the demo and the examples
//! users run), in one place:
//!
//! - the command line is parsed by clap ([`parse`]); a bad argument (unknown, repeated,
//!   out of range, not UTF-8 where text is expected) is one line on stderr and exit status
//!   2, before any work; `--help` and `--version` print to stdout;
//! - stdout is written without panicking (`print!` panics when stdout cannot be written):
//!   a closed pipe (`tapegrad-demo | head -1`) ends the program quietly with status 0, as
//!   the reader asked for no more; any other write error (`> /dev/full`) is one line on
//!   stderr and exit status 2 ([`write()`], [`print()`]);
//! - every message is one line `PROGRAM: MSG` on stderr ([`say`], [`fail`]); a stderr that
//!   cannot be written is ignored.
//!
//! ```no_run
//! use std::process::ExitCode;
//!
//! use clap::Parser;
//! use tapegrad_demo::output;
//!
//! /// Says hello.
//! #[derive(Parser)]
//! #[command(name = "hello")]
//! struct Cli {
//!     /// Whom to greet.
//!     #[arg(long, default_value = "world")]
//!     name: String,
//! }
//!
//! fn main() -> ExitCode {
//!     let cli: Cli = match output::parse("hello") {
//!         Ok(cli) => cli,
//!         Err(end) => return end,
//!     };
//!     if let Err(end) = output::write("working\n") {
//!         return end; // 0 for a closed pipe, 2 (after one line) otherwise
//!     }
//!     output::print(&format!("hello, {}\n", cli.name))
//! }
//! ```

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::OnceLock;

/// The program's name when [`parse`] has not set another, first on every message line.
pub const PROGRAM: &str = "tapegrad-demo";

/// The name [`parse`] set.
static NAME: OnceLock<&'static str> = OnceLock::new();

/// The program's name on message lines: the one given to [`parse`], else [`PROGRAM`].
pub fn program() -> &'static str {
    NAME.get().copied().unwrap_or(PROGRAM)
}

/// Parses the process's arguments (as `OsString`s: paths may be any bytes) into `P`, with
/// `program` as the name on every later message line. `Err` holds the program's end: for
/// a bad argument one line on stderr (naming the option and what was wrong) and status 2;
/// for `--help` and `--version` their text on stdout and status 0.
///
/// # Errors
/// The end, as above.
pub fn parse<P: clap::Parser>(program: &'static str) -> Result<P, ExitCode> {
    let _ = NAME.set(program);
    P::try_parse_from(std::env::args_os()).map_err(|e| clap_exit(&e))
}

/// [`parse`] for a program that takes no arguments but `--help`: `about` is its help.
///
/// # Errors
/// The end, as for [`parse`]: any argument is refused.
pub fn parse_none(program: &'static str, about: &'static str) -> Result<(), ExitCode> {
    let _ = NAME.set(program);
    let cmd = clap::Command::new(program).about(about);
    cmd.try_get_matches_from(std::env::args_os()).map(drop).map_err(|e| clap_exit(&e))
}

/// The end of a run whose arguments clap refused: its first line (naming the option and
/// what was wrong) on stderr and status 2; or, for `--help` and `--version`, their text on
/// stdout.
pub fn clap_exit(e: &clap::Error) -> ExitCode {
    if e.use_stderr() {
        let msg = e.to_string();
        let first = msg.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ");
        return fail(&format!("{first} (see --help)"));
    }
    print(&e.to_string())
}

/// Writes `text` to stdout and flushes it.
///
/// # Errors
/// The write or the flush failed (give the error to [`stdout_failed`]).
pub fn stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Writes `text` to stdout for a program that goes on afterwards.
///
/// # Errors
/// The program's end when the write fails, as [`stdout_failed`] says (status 0 for a
/// closed pipe, else one line and status 2): return it from `main`.
pub fn write(text: &str) -> Result<(), ExitCode> {
    stdout(text).map_err(|e| stdout_failed(&e))
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

/// [`stdout`] `text`, then the program's end: status 0, or as [`stdout_failed`] says.
pub fn print(text: &str) -> ExitCode {
    match write(text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(end) => end,
    }
}

/// Writes `text` to stderr as it is (a stderr that cannot be written is ignored).
pub fn stderr(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

/// With `count` NaN or infinite results, a note on stderr saying so and `why` (with
/// `json`: that JSON writes them as `null`); nothing for 0.
pub fn non_finite_note(count: usize, why: &str, json: bool) {
    if count > 0 {
        say(&format!(
            "note: {count} results are NaN or infinite ({why}){}",
            if json { "; JSON has no such numbers, so they are written as null" } else { "" }
        ));
    }
}

/// One line `PROGRAM: MSG` on stderr (a stderr that cannot be written is ignored).
pub fn say(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "{}: {msg}", program());
}

/// [`say`] then exit status 2: the end of a run refused for a bad argument or file.
pub fn fail(msg: &str) -> ExitCode {
    say(msg);
    ExitCode::from(2)
}
