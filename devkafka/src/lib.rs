//! A Kafka-protocol broker for development and CI.
//!
//! This crate hosts librdkafka's own mock broker (the one librdkafka
//! tests itself against), because no Kafka or Redpanda build is reachable from
//! our package registries. It is the only place in Aula that touches
//! mock-only APIs: everything else speaks plain Kafka and works unchanged
//! against a real cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use rdkafka::mocking::MockCluster;

/// Run an in-process Kafka-protocol broker (librdkafka's mock cluster)
/// until SIGTERM/SIGINT. Data lives in memory only.
///
/// SIGUSR1 takes every broker down and SIGUSR2 brings them back, so tests
/// can exercise broker outages without losing the cluster's data.
#[derive(Debug, Args)]
pub struct KafkaArgs {
    /// Number of brokers in the mock cluster.
    #[arg(long, default_value_t = 1)]
    brokers: i32,
    /// Topics to create up front, as NAME or NAME:PARTITIONS (others are
    /// auto-created on first produce with the broker's default partition count).
    #[arg(long = "topic", value_name = "NAME[:PARTITIONS]")]
    topics: Vec<String>,
    /// Write the bootstrap address (host:port,…) to this file once listening.
    #[arg(long)]
    bootstrap_file: Option<PathBuf>,
}

fn parse_topic(spec: &str) -> anyhow::Result<(String, i32)> {
    match spec.split_once(':') {
        None => Ok((spec.to_owned(), 3)),
        Some((name, parts)) => {
            let parts: i32 = parts.parse().with_context(|| {
                format!("--topic {spec}: partitions must be a positive integer")
            })?;
            anyhow::ensure!(parts > 0, "--topic {spec}: partitions must be positive");
            Ok((name.to_owned(), parts))
        }
    }
}

/// Serve until SIGTERM or SIGINT; never returns on success (see the end).
pub async fn run(args: KafkaArgs) -> anyhow::Result<ExitCode> {
    use tokio::signal::unix::{SignalKind, signal};

    let topics = args
        .topics
        .iter()
        .map(|t| parse_topic(t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let cluster = MockCluster::new(args.brokers).context("starting librdkafka's mock cluster")?;
    for (name, partitions) in &topics {
        cluster
            .create_topic(name, *partitions, 1)
            .with_context(|| format!("creating topic {name}"))?;
    }
    let bootstrap = cluster.bootstrap_servers();
    if let Some(path) = &args.bootstrap_file {
        // Write then rename, so a reader never sees a half-written address.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, format!("{bootstrap}\n"))
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("kafka mock cluster listening on {bootstrap}");

    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = usr1.recv() => {
                for id in 1..=args.brokers {
                    cluster.broker_down(id).with_context(|| format!("taking broker {id} down"))?;
                }
                println!("brokers down");
            }
            _ = usr2.recv() => {
                for id in 1..=args.brokers {
                    cluster.broker_up(id).with_context(|| format!("bringing broker {id} up"))?;
                }
                println!("brokers up");
            }
        }
    }
    if let Some(path) = &args.bootstrap_file {
        let _ = std::fs::remove_file(path);
    }
    println!("kafka mock cluster stopped");
    // librdkafka can block while tearing down a handle with live connections;
    // the cluster holds nothing durable, so leave without destroying it.
    std::process::exit(0)
}
