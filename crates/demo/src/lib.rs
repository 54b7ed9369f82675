//! The forum experiments on gradient accumulation, as a library so the binary stays thin
//! and tests can call it.
//!
//! # Layout
//!
//! | module | what |
//! | --- | --- |
//! | [`cli`] | the one clap parser: no subcommand runs [`forum`], each subcommand is a variant of [`cli::Command`] |
//! | [`args`] | the options the subcommands share, each declared and validated once |
//! | [`forum`] | experiment 1, the forum post's: one step, batched against accumulated (sum, mean, mean × size/batch) |
//! | [`fixes`] | `tapegrad-demo fixes`: which fix works for which optimizer over several steps |
//! | [`tokens`] | `tapegrad-demo tokens`: the same with token-mean losses over sequences of different lengths |
//! | [`model`] | the one model and data builder, flat parameter views, `allclose` |
//! | [`budget`] | the sizes' memory, checked before anything is allocated |
//! | [`output`] | stdout and stderr without panics: one line and status 2, a closed pipe ends quietly |
//! | [`json`] | the JSON writer in the PyTorch reference generators' layout |
//!
//! Each experiment is a module of its own: the experiment and its report in `mod.rs`, its
//! options, checks and run in `cmd.rs` (a `#[derive(Args)]` struct and a
//! `run(&Args) -> ExitCode`), its text, JSON and plot beside them.
//!
//! # Adding a subcommand (e.g. `tokens`)
//!
//! 1. A module `tokens/` with the experiment in `mod.rs` and `cmd.rs` holding
//!    `TokensArgs` (`#[derive(Args)]`) and `pub fn run(&TokensArgs) -> ExitCode`.
//! 2. `TokensArgs` flattens the shared structs of [`args`] it takes
//!    (`#[command(flatten)] pub seeds: SeedArgs`, `OptimizerArgs`, `JsonArg`, `PlotArg`,
//!    `MemoryArg`, ...) and declares its own options beside them. A subcommand that
//!    flattens `OptimizerArgs` passes its defaults to [`args::OptimizerArgs::spec`] and
//!    lists them in its `after_help` (as `fixes` does, with a test that the two agree).
//! 3. A variant `Tokens(TokensArgs)` of [`cli::Command`] (its doc comment is the one-line
//!    description `--help` lists) and its arm in [`cli::main`].
//! 4. Its validation calls the shared checks ([`args::ShapeArgs::validate`],
//!    [`args::OptimizerArgs::spec`], [`args::MemoryArg::check`] with its own
//!    `(argument, bytes)` parts, [`args::check_outputs`]) and ends in
//!    [`output::fail`] / [`output::print`].
//!
//! # Adding an option
//!
//! An option of one subcommand (e.g. `fixes --clip-grad-norm` or `--norm`) is a field of
//! that subcommand's struct ([`fixes::cmd::FixesArgs`]), checked in its `validate` and
//! carried into its config ([`fixes::FixesConfig`]). An option two subcommands take is a
//! field of a shared struct in [`args`] (or a new struct there, flattened by both).

pub mod args;
pub mod budget;
pub mod cli;
pub mod fixes;
pub mod forum;
pub mod json;
pub mod model;
pub mod oom;
pub mod output;
pub mod tokens;
