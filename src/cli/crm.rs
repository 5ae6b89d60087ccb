//! CRM API commands: `aula crm migrate|serve|relay` and `aula demo seed`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use aula_crm::outbox::{Relay, RelayConfig, bootstrap_from_url};
use aula_crm::seed::SeedConfig;
use aula_crm::{Secret, ServeConfig};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(crate) enum CrmCommand {
    /// Apply the CRM schema migrations (database from AULA_CONN_CRM_DB).
    Migrate,
    /// Serve the REST API (migrates first; relays the outbox to AULA_CONN_EVENTS).
    ///
    /// Auth: AULA_CRM_JWT_SECRET (HS256, development) or AULA_CRM_JWKS_URL with
    /// AULA_CRM_JWT_ISSUER and AULA_CRM_JWT_AUDIENCE (RS256).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080", env = "AULA_CRM_LISTEN")]
        listen: SocketAddr,
    },
    /// Run only the outbox relay (crm.outbox → crm.events) until interrupted.
    Relay,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DemoCommand {
    /// Seed a deterministic demo dataset into the CRM database and the broker.
    Seed {
        /// Number of students.
        #[arg(long, default_value_t = 1_000)]
        students: u64,
        /// Random seed: the same seed gives the same data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Last day of the data (YYYY-MM-DD); it covers the 18 months before.
        #[arg(long, default_value = "2026-11-30")]
        end: String,
        /// Average learning events per enrollment.
        #[arg(long, default_value_t = 25)]
        events_per_enrollment: u32,
        /// Empty the crm tables first.
        #[arg(long)]
        reset: bool,
        /// Do not produce learning.activity events.
        #[arg(long)]
        no_events: bool,
    },
}

fn database_url() -> anyhow::Result<Secret> {
    std::env::var("AULA_CONN_CRM_DB")
        .ok()
        .filter(|v| !v.is_empty())
        .map(Secret::new)
        .context("AULA_CONN_CRM_DB is not set (e.g. postgres://user@127.0.0.1:5432/crm)")
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: draining in-flight requests");
}

pub(crate) async fn run_crm(cmd: CrmCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CrmCommand::Migrate => {
            let pool = aula_crm::connect(&database_url()?, 2).await?;
            aula_crm::migrate(&pool).await?;
            eprintln!("crm schema is up to date");
        }
        CrmCommand::Serve { listen } => {
            let config = ServeConfig::from_env(listen)?;
            aula_crm::config::serve(config, shutdown_signal()).await?;
        }
        CrmCommand::Relay => {
            let events =
                std::env::var("AULA_CONN_EVENTS").context("AULA_CONN_EVENTS is not set")?;
            let pool = aula_crm::connect(&database_url()?, 2).await?;
            aula_crm::migrate(&pool).await?;
            let relay = Relay::new(pool, RelayConfig::new(bootstrap_from_url(&events)))?;
            relay.run(shutdown_signal()).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn run_demo(cmd: DemoCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DemoCommand::Seed {
            students,
            seed,
            end,
            events_per_enrollment,
            reset,
            no_events,
        } => {
            let mut cfg = SeedConfig::new(students, seed);
            cfg.end = end
                .parse()
                .with_context(|| format!("--end {end:?} is not a date (YYYY-MM-DD)"))?;
            cfg.events_per_enrollment = events_per_enrollment;
            cfg.reset = reset;
            if !no_events {
                let events = std::env::var("AULA_CONN_EVENTS")
                    .context("AULA_CONN_EVENTS is not set (or pass --no-events)")?;
                cfg.bootstrap = Some(bootstrap_from_url(&events));
            }
            let pool = aula_crm::connect(&database_url()?, 2).await?;
            aula_crm::migrate(&pool).await?;
            let started = Instant::now();
            let progress = |stage: &str, done: u64, total: u64| {
                let pct = (done * 100).checked_div(total).unwrap_or(100);
                let bar: String = (0..40)
                    .map(|i| if i * 100 / 40 < pct { '#' } else { '.' })
                    .collect();
                let mut err = std::io::stderr().lock();
                let _ = write!(
                    err,
                    "\r{stage:>18} [{bar}] {pct:>3}% {done}/{total} students"
                );
                if done >= total {
                    let _ = writeln!(err);
                }
            };
            let report = aula_crm::seed::seed(&pool, &cfg, &progress).await?;
            eprintln!(
                "seeded in {:.1}s: {} courses, {} campaigns, {} leads, {} students, {} enrollments, {} payments, \
                 {} learning events ({} duplicates, {} late)",
                started.elapsed().as_secs_f64(),
                report.courses,
                report.campaigns,
                report.leads,
                report.students,
                report.enrollments,
                report.payments,
                report.events,
                report.duplicate_events,
                report.late_events,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
