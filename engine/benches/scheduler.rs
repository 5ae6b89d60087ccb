//! `cargo bench -p aula-engine --bench scheduler`: the same figures as
//! `aula bench scheduler`, without building the whole binary.
//! Set AULA_BENCH_PG_URL to an empty PostgreSQL database for its figures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pg = std::env::var("AULA_BENCH_PG_URL")
            .ok()
            .filter(|s| !s.is_empty());
        for line in aula_engine::bench::report(pg.as_deref()).await.unwrap() {
            println!("{line}");
        }
    });
}
