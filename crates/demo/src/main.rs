//! `tapegrad-demo`: the forum experiments on gradient accumulation. See the library docs.
//!
//! Every bad argument or file ends the run before any work with one line on stderr and
//! exit status 2; the output files are written all or nothing (each atomically, after
//! every one of them has been prepared); a closed stdout pipe ends the run quietly.

use std::process::ExitCode;

use clap::Parser;
use tapegrad_demo::cli::{clap_exit, notes, validate, Cli};
use tapegrad_demo::output::{self, fail, say};
use tapegrad_demo::{json, profile, render_text, run, step_dot, sum_step_bytes};
use tapegrad_nn::files::{escaped, prepare_write};

/// An allocation that fails ends the run with one line and status 2, not an abort.
#[global_allocator]
static ALLOCATOR: tapegrad_demo::oom::ExitOnFailure = tapegrad_demo::oom::ExitOnFailure;

fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "fixes") {
        return tapegrad_demo::fixes_cli::main(std::env::args_os().skip(2));
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    let config = match validate(&cli) {
        Ok(c) => c,
        Err(msg) => return fail(&msg),
    };
    for note in notes(&cli) {
        say(&note);
    }
    let report = run(&config);

    // every output prepared (written to its temporary file) before any replaces its target
    let mut files = Vec::new();
    if let Some(path) = &cli.save {
        let prepared = sum_step_bytes(&report)
            .map_err(|e| e.to_string())
            .and_then(|bytes| prepare_write(path, &bytes).map_err(|e| e.to_string()));
        match prepared {
            Ok(p) => files.push(("--save", path, p)),
            Err(e) => return fail(&format!("--save: {}: {e}", escaped(path))),
        }
    }
    if let Some(path) = &cli.dot {
        match prepare_write(path, step_dot(&config).as_bytes()) {
            Ok(p) => files.push(("--dot", path, p)),
            Err(e) => return fail(&format!("--dot: {}: {e}", escaped(path))),
        }
    }
    for (name, path, prepared) in files {
        if let Err(e) = prepared.commit() {
            return fail(&format!("{name}: {}: {e}", escaped(path)));
        }
    }

    let non_finite = report.non_finite();
    if non_finite > 0 {
        say(&format!(
            "note: {non_finite} results are NaN or infinite (the step overflows float32: a smaller learning rate avoids it){}",
            if cli.json { "; JSON has no such numbers, so they are written as null" } else { "" }
        ));
    }
    let text = if cli.json { json::render_json(&report) } else { render_text(&report) };
    if let Err(e) = output::stdout(&text) {
        return output::stdout_failed(&e);
    }
    if cli.profile {
        let table = format!(
            "\nPer-op times of all runs, 1000 repetitions (forward = kernels, backward = rules):\n{}\n",
            profile(&config, 1000)
        );
        if cli.json {
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), table.as_bytes());
        } else if let Err(e) = output::stdout(&table) {
            return output::stdout_failed(&e);
        }
    }
    if !cli.json {
        let pointer =
            "\nFor SGD with momentum or weight decay, Adam and AdamW over several steps, see `tapegrad-demo fixes`.\n";
        if let Err(e) = output::stdout(pointer) {
            return output::stdout_failed(&e);
        }
    }
    ExitCode::SUCCESS
}
