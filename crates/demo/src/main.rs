//! `tapegrad-demo`: the forum experiments on gradient accumulation. See the library docs.

use std::process::ExitCode;

use clap::Parser;
use tapegrad_demo::cli::{validate, Cli};
use tapegrad_demo::{json, profile, render_text, run, save_sum_step, step_dot};

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    if std::env::args_os().nth(1).is_some_and(|a| a == "fixes") {
        return tapegrad_demo::fixes_cli::main(args.by_ref().skip(2));
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // one clear line: clap's first line names the option and what was wrong
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ");
            eprintln!("tapegrad-demo: {first} (see --help)");
            return ExitCode::from(2);
        }
        Err(e) => {
            // --help and --version
            print!("{e}");
            return ExitCode::SUCCESS;
        }
    };
    let config = match validate(&cli) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("tapegrad-demo: {msg}");
            return ExitCode::from(2);
        }
    };
    let report = run(&config);
    if let Some(path) = &cli.save {
        if let Err(e) = save_sum_step(&report, path) {
            eprintln!("tapegrad-demo: --save: {e}");
            return ExitCode::from(2);
        }
    }
    if let Some(path) = &cli.dot {
        if let Err(e) = std::fs::write(path, step_dot(&config)) {
            eprintln!("tapegrad-demo: --dot: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if cli.json {
        print!("{}", json::render_json(&report));
    } else {
        print!("{}", render_text(&report));
    }
    if cli.profile {
        let table = format!(
            "\nPer-op times of all runs, 1000 repetitions (forward = kernels, backward = rules):\n{}\n",
            profile(&config, 1000)
        );
        if cli.json {
            eprint!("{table}");
        } else {
            print!("{table}");
        }
    }
    if !cli.json {
        println!(
            "\nFor SGD with momentum or weight decay, Adam and AdamW over several steps, see `tapegrad-demo fixes`."
        );
    }
    ExitCode::SUCCESS
}
