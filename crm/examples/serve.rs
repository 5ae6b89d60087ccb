//! `aula crm serve` without the rest of the `aula` binary: the scripts
//! (`scripts/schemathesis.sh`, `scripts/crm-bench.sh`) use it so that they only
//! build this crate. Same environment variables as `aula crm serve`.

use std::net::SocketAddr;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen: SocketAddr = std::env::args()
        .skip_while(|a| a != "--listen")
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned())
        .parse()?;
    let config = aula_crm::ServeConfig::from_env(listen)?;
    aula_crm::config::serve(config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
