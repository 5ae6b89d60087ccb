//! `aula demo seed` without the rest of the `aula` binary, for timing the
//! seeder on its own: `seed STUDENTS SEED [EVENTS_PER_ENROLLMENT]`, with
//! AULA_CONN_CRM_DB and (optionally) AULA_CONN_EVENTS set. Replaces the data.

use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let students = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(1_000);
    let seed = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(42);
    let mut cfg = aula_crm::seed::SeedConfig::new(students, seed);
    if let Some(n) = args.get(3) {
        cfg.events_per_enrollment = n.parse()?;
    }
    cfg.reset = true;
    cfg.bootstrap = std::env::var("AULA_CONN_EVENTS")
        .ok()
        .map(|u| aula_crm::outbox::bootstrap_from_url(&u));
    let url = aula_crm::Secret::new(std::env::var("AULA_CONN_CRM_DB")?);
    let pool = aula_crm::connect(&url, 2).await?;
    aula_crm::migrate(&pool).await?;
    let start = Instant::now();
    let report = aula_crm::seed::seed(&pool, &cfg, &|stage, done, total| {
        if done == total {
            eprintln!(
                "{stage}: {done}/{total} at {:.1}s",
                start.elapsed().as_secs_f64()
            );
        }
    })
    .await?;
    println!("{report:?} in {:.1}s", start.elapsed().as_secs_f64());
    Ok(())
}
