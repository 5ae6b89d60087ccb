//! Command-line surface. Each area owns one module; this one only dispatches.

mod crm;
mod dev;
mod engine;
mod lake;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

/// Aula runs declarative data pipelines for education CRMs: PostgreSQL and
/// Kafka in, a Delta Lake and ClickHouse out, with an Airflow-style scheduler.
#[derive(Debug, Parser)]
#[command(name = "aula", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    /// Log format for diagnostics written to stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "AULA_LOG_FORMAT")]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Engine(engine::EngineCommand),
    /// The operational CRM API.
    #[command(subcommand)]
    Crm(crm::CrmCommand),
    /// The demo dataset.
    #[command(subcommand)]
    Demo(crm::DemoCommand),
    /// Inspect and maintain the lake's Delta tables.
    #[command(subcommand)]
    Lake(lake::LakeCommand),
    /// Developer tools: the local Kafka-protocol broker and other helpers.
    #[command(subcommand)]
    Dev(dev::DevCommand),
    /// Print shell completions for bash, zsh, fish, elvish or PowerShell.
    Completions {
        /// The shell to generate completions for.
        shell: clap_complete::Shell,
    },
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    // Delta's kernel narrates every snapshot at INFO and logs probes of
    // tables that do not exist yet as errors, and its writer warns on every
    // file that binary columns (dead letters' raw bytes) get no statistics;
    // its real failures reach us as errors anyway. AULA_LOG overrides.
    let filter = EnvFilter::try_from_env("AULA_LOG").unwrap_or_else(|_| {
        EnvFilter::new(
            "info,buoyant_kernel=off,delta_kernel=off,deltalake_core=warn,deltalake=warn,\
             deltalake_core::writer::stats=error",
        )
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests embedding the CLI) is harmless: ignore it.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

pub(crate) async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    init_tracing(cli.log_format);
    match cli.command {
        Command::Engine(cmd) => engine::run(cmd).await,
        Command::Crm(cmd) => crm::run_crm(cmd).await,
        Command::Demo(cmd) => crm::run_demo(cmd).await,
        Command::Lake(cmd) => lake::run(cmd).await,
        Command::Dev(cmd) => dev::run(cmd).await,
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "aula", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}
