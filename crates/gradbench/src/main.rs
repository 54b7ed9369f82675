//! `tapegrad-gradbench`: a GradBench tool. Reads one JSON message per line on stdin and
//! writes one JSON answer per line on stdout (see the crate documentation); nothing else
//! goes to stdout. Ends at the end of stdin.

use std::io::{self, BufRead, Write};

fn main() {
    // a panic inside an eval becomes an error answer; its message goes to stderr once
    std::panic::set_hook(Box::new(|info| eprintln!("tapegrad-gradbench: {info}")));
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 20, stdout.lock());
    // one line at a time, however long (lse sends tens of MB in one line)
    let mut line = String::new();
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                eprintln!("tapegrad-gradbench: reading stdin: {e}");
                std::process::exit(2);
            }
        }
        if line.trim().is_empty() {
            continue;
        }
        let answer = tapegrad_gradbench::respond(&line);
        let written = out.write_all(answer.as_bytes()).and_then(|_| out.write_all(b"\n")).and_then(|_| out.flush());
        if let Err(e) = written {
            if e.kind() == io::ErrorKind::BrokenPipe {
                return;
            }
            eprintln!("tapegrad-gradbench: writing stdout: {e}");
            std::process::exit(2);
        }
    }
}
