//! Open-loop, fixed-rate HTTP load generator for `scripts/crm-bench.sh`.
//!
//! wrk is closed-loop: it measures the most a server can do, but it cannot say
//! what latency a client sees at a given request rate, because a slow response
//! delays the next request and the stall is never counted (coordinated
//! omission). This sends request `i` at `start + i / rate` whatever happened to
//! the earlier ones, and times each from that *scheduled* instant, so a stall
//! shows up in every request it delayed.
//!
//! ```text
//! loadgen --url URL [--method GET|POST] [--body JSON] [--header 'Name: value']...
//!         [--rate 1000] [--duration 15] [--warmup 3] [--connections 64]
//! ```
//!
//! `{n}` in the body is replaced by a per-request counter (unique e-mails on POST).
//! A non-2xx status or a transport error counts as an error. Sends only to the
//! given URL; meant for loopback.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tokio::sync::Semaphore;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Opts {
    url: String,
    method: Method,
    body: Option<String>,
    headers: HeaderMap,
    rate: f64,
    duration: f64,
    warmup: f64,
    connections: usize,
}

fn parse_args() -> Result<Opts, Error> {
    let mut o = Opts {
        url: String::new(),
        method: Method::GET,
        body: None,
        headers: HeaderMap::new(),
        rate: 1000.0,
        duration: 15.0,
        warmup: 3.0,
        connections: 64,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => o.url = value()?,
            "--method" => o.method = Method::from_bytes(value()?.to_uppercase().as_bytes())?,
            "--body" => o.body = Some(value()?),
            "--header" | "-H" => {
                let h = value()?;
                let (name, val) = h
                    .split_once(':')
                    .ok_or_else(|| format!("--header {h:?}: expected 'Name: value'"))?;
                o.headers.append(
                    HeaderName::from_bytes(name.trim().as_bytes())?,
                    HeaderValue::from_str(val.trim())?,
                );
            }
            "--rate" => o.rate = value()?.parse()?,
            "--duration" => o.duration = value()?.parse()?,
            "--warmup" => o.warmup = value()?.parse()?,
            "--connections" => o.connections = value()?.parse()?,
            other => return Err(format!("unknown option {other:?} (see the file's doc)").into()),
        }
    }
    if o.url.is_empty() {
        return Err("--url is required".into());
    }
    if !(o.rate > 0.0 && o.duration > 0.0 && o.warmup >= 0.0 && o.connections > 0) {
        return Err("--rate, --duration and --connections must be > 0, --warmup >= 0".into());
    }
    if o.body.is_some() && !o.headers.contains_key(CONTENT_TYPE) {
        o.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    Ok(o)
}

/// What one request measured: latency from its scheduled start, from its actual
/// send (service time), and whether it succeeded.
struct Sample {
    scheduled: Duration,
    service: Duration,
    ok: bool,
}

async fn one(client: reqwest::Client, o: Arc<Opts>, n: u64) -> bool {
    let mut req = client
        .request(o.method.clone(), &o.url)
        .headers(o.headers.clone());
    if let Some(b) = &o.body {
        req = req.body(b.replace("{n}", &n.to_string()));
    }
    match req.send().await {
        // Read the whole body so the connection goes back to the pool.
        Ok(resp) => {
            let ok = resp.status().is_success();
            resp.bytes().await.is_ok() && ok
        }
        Err(_) => false,
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

fn summary(label: &str, mut v: Vec<Duration>) {
    v.sort_unstable();
    if v.is_empty() {
        return;
    }
    println!(
        "  {label:<15} p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
        pct(&v, 50.0),
        pct(&v, 90.0),
        pct(&v, 99.0),
        pct(&v, 99.9),
        pct(&v, 100.0)
    );
}

// One thread: the generator shares the 2-core machine with the server and
// PostgreSQL, and 1,000 req/s needs far less than a core.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let o = Arc::new(parse_args()?);
    let client = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(o.connections)
        .timeout(Duration::from_secs(10))
        .build()?;
    // Bounds the open connections; a request waiting for one is still timed
    // from its scheduled start, so a saturated pool shows as latency.
    let slots = Arc::new(Semaphore::new(o.connections));
    let warmup_n = (o.warmup * o.rate).round() as u64;
    let total = warmup_n + (o.duration * o.rate).round() as u64;
    let interval = 1.0 / o.rate;
    let start = Instant::now();
    // The schedule is kept by a plain thread: tokio's timer has 1 ms ticks, which
    // would add up to 1 ms to every latency; `thread::sleep` is finer.
    let (tick, mut ticks) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for i in 0..total {
            let at = start + Duration::from_secs_f64(i as f64 * interval);
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            if tick.send((i, at)).is_err() {
                break;
            }
        }
    });
    let mut tasks = Vec::with_capacity(total as usize);
    while let Some((i, at)) = ticks.recv().await {
        let (client, o, slots) = (client.clone(), o.clone(), slots.clone());
        tasks.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await;
            let sent = Instant::now();
            let ok = one(client, o, i).await;
            let done = Instant::now();
            (
                done,
                Sample {
                    scheduled: done - at,
                    service: done - sent,
                    ok,
                },
            )
        }));
    }
    let measure_from = start + Duration::from_secs_f64(warmup_n as f64 * interval);
    let (mut sched, mut service, mut errors, mut last) =
        (Vec::new(), Vec::new(), 0u64, measure_from);
    for (i, t) in tasks.into_iter().enumerate() {
        let (done, s) = t.await?;
        if (i as u64) < warmup_n {
            continue;
        }
        errors += u64::from(!s.ok);
        last = last.max(done);
        sched.push(s.scheduled);
        service.push(s.service);
    }
    let secs = (last - measure_from).as_secs_f64();
    println!(
        "{} {}  target {:.0} req/s for {}s (+{}s warm-up), max {} connections",
        o.method, o.url, o.rate, o.duration, o.warmup, o.connections
    );
    println!(
        "  requests {}  errors {}  achieved {:.1} req/s",
        sched.len(),
        errors,
        sched.len() as f64 / secs.max(f64::EPSILON)
    );
    summary("from schedule", sched);
    summary("service time", service);
    Ok(())
}
