//! The command line: one clap parser. Without a subcommand the program runs the forum
//! experiment ([`crate::forum`]); each subcommand is a variant of [`Command`] holding its
//! own `#[derive(Args)]` struct, which flattens the shared options of [`crate::args`].
//! Every bad input becomes one line on stderr and exit status 2, never a panic.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::fixes::cmd::FixesArgs;
use crate::forum::cmd::ForumArgs;
use crate::output;
use crate::tokens::cmd::TokensArgs;

/// Reproduces the PyTorch forum experiments on gradient accumulation: accumulating over
/// micro-batches equals one big batch when the loss is a sum; with a mean the gradients are
/// k times larger and the learning rate (or the loss) must be scaled.
#[derive(Parser, Debug)]
#[command(
    name = "tapegrad-demo",
    version,
    about,
    long_about = None,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true,
    after_help = "Each subcommand lists its own options: tapegrad-demo fixes --help"
)]
pub struct Cli {
    /// The subcommand; none runs the forum experiment.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The forum experiment's options (when no subcommand is given).
    #[command(flatten)]
    pub forum: ForumArgs,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Which fix (lr / k, loss / k, loss x size / batch) makes accumulation equal one large
    /// batch, for SGD with momentum or weight decay, Adam and AdamW over several steps.
    ///
    /// With no optimizer option it prints the table for five optimizers; with --optimizer
    /// (or any of its hyper-parameters, or --json) the five runs of that one optimizer.
    Fixes(FixesArgs),
    /// The same with a loss that is a mean over tokens, on sequences of different lengths
    /// (padding ignored): which fix, including the token count of the batch (tokens/total),
    /// makes accumulation equal one large batch.
    ///
    /// With no optimizer option it prints the table for five optimizers; with --optimizer
    /// (or any of its hyper-parameters, or --json) the six runs of that one optimizer.
    Tokens(TokensArgs),
}

/// Parses the process's arguments and runs what they ask for.
pub fn main() -> ExitCode {
    let cli: Cli = match output::parse(output::PROGRAM) {
        Ok(cli) => cli,
        Err(end) => return end,
    };
    match &cli.command {
        None => crate::forum::cmd::run(&cli.forum),
        Some(Command::Fixes(args)) => crate::fixes::cmd::run(args),
        Some(Command::Tokens(args)) => crate::tokens::cmd::run(args),
    }
}
