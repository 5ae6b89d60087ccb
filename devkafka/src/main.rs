//! `aula-devkafka`: the broker `scripts/services` starts; same as `aula dev kafka`.

use std::process::ExitCode;

use clap::Parser;

/// A Kafka-protocol broker for development and CI (librdkafka's mock cluster).
#[derive(Debug, Parser)]
#[command(name = "aula-devkafka", version)]
struct Cli {
    #[command(flatten)]
    args: aula_devkafka::KafkaArgs,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match aula_devkafka::run(cli.args).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
