//! CRM API commands: `aula crm serve|migrate` and `aula demo seed` (issue 6 fills this in).

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(crate) enum CrmCommand {
    /// Apply the CRM schema migrations.
    Migrate,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DemoCommand {
    /// Seed a deterministic demo dataset.
    Seed,
}

pub(crate) async fn run_crm(cmd: CrmCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CrmCommand::Migrate => anyhow::bail!("the CRM migrations have not landed yet"),
    }
}

pub(crate) async fn run_demo(cmd: DemoCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DemoCommand::Seed => anyhow::bail!("the demo seeder has not landed yet"),
    }
}
