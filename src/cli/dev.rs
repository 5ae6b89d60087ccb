//! `aula dev …`: tools for developers and CI only.

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(crate) enum DevCommand {
    /// Run a Kafka-protocol broker (librdkafka's mock cluster, in memory)
    /// until SIGTERM/SIGINT. SIGUSR1 takes the brokers down, SIGUSR2 back up.
    /// It is the only code in Aula that touches mock-only APIs.
    Kafka(aula_devkafka::KafkaArgs),
}

pub(crate) async fn run(cmd: DevCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DevCommand::Kafka(args) => aula_devkafka::run(args).await,
    }
}
