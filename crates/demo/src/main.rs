//! `tapegrad-demo`: the forum experiments on gradient accumulation. See the library docs.
//!
//! Every bad argument or file ends the run before any work with one line on stderr and
//! exit status 2; the output files are written all or nothing; a closed stdout pipe ends
//! the run quietly.

fn main() -> std::process::ExitCode {
    tapegrad_demo::cli::main()
}
