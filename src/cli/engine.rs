//! Pipeline commands: validate, run, backfill, scheduler, … (issue 3 fills this in).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(crate) enum EngineCommand {
    /// Validate pipeline files (default: ./pipelines).
    Validate {
        /// Files or folders to validate.
        paths: Vec<PathBuf>,
    },
}

pub(crate) async fn run(cmd: EngineCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        EngineCommand::Validate { paths } => {
            anyhow::bail!("validate {paths:?}: the pipeline loader has not landed yet")
        }
    }
}
