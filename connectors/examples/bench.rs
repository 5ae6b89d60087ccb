//! Throughput of the connectors against the standard tools, measured in the
//! same run on the real services (numbers mean something in `--release`):
//!
//! ```text
//! cargo run --release -p aula-connectors --example bench -- extract    [ROWS]  # PG → Delta vs psql COPY binary
//! cargo run --release -p aula-connectors --example bench -- decode     [ROWS]  # PG → Arrow only (decoder memory)
//! cargo run --release -p aula-connectors --example bench -- kafka      [MSGS]  # Kafka → Delta vs kcat
//! cargo run --release -p aula-connectors --example bench -- clickhouse [ROWS]  # Delta → ClickHouse vs clickhouse-client TSV
//! ```
//!
//! Defaults follow the issue: 5 million `crm.payments`-shaped rows, 2
//! million `learning.activity` events. Peak RSS is the process's `VmHWM`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark driver: failing loudly is the point

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use aula_connectors::clickhouse::{ClickHouse, TableSpec};
use aula_connectors::kafka::{ConsumeOptions, KafkaSource};
use aula_connectors::postgres::{self, ExtractRequest};
use aula_test_support::{
    fresh_clickhouse, fresh_pg, kafka_bootstrap, services, unique_name, unique_topic,
};
use aula_warehouse::{
    BatchStream, BoxError, Lake, LakeLocation, TableName, WriteMode, WriteOptions,
};
use futures::StreamExt;

const PAYMENTS: &str = "
CREATE TABLE payments (
  id uuid, enrollment_id uuid, student_id uuid, amount_cents int8, currency text,
  provider text, status text, paid_at timestamptz, refunded_at timestamptz, updated_at timestamptz);
INSERT INTO payments
SELECT md5(g::text)::uuid, md5((g / 3)::text)::uuid, md5((g / 7)::text)::uuid, 100 + g % 100000,
       (ARRAY['EUR','USD','GBP'])[1 + g % 3], (ARRAY['stripe','paypal'])[1 + g % 2],
       (ARRAY['pending','succeeded','failed','refunded'])[1 + g % 4],
       TIMESTAMPTZ '2026-01-01' + g * INTERVAL '1 second',
       CASE WHEN g % 4 = 3 THEN TIMESTAMPTZ '2026-02-01' + g * INTERVAL '1 second' END,
       TIMESTAMPTZ '2026-03-01' + g * INTERVAL '1 second'
FROM generate_series(1, {N}) g;";

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|k| k.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// CPU seconds (user + system) a process has used so far, from `/proc`.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the
    // 12th and stime the 13th of them.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<f64>() / 100.0
}

/// CPU seconds the whole machine has been busy (all cores), from `/proc/stat`.
fn machine_busy_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: busy = all but idle, iowait.
    let busy: f64 = v
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, x)| x)
        .sum();
    busy / 100.0
}

/// Where the CPU went during a measured part: this process and the machine.
struct CpuUse {
    ours: f64,
    machine: f64,
    start: Instant,
}

impl CpuUse {
    fn start() -> Self {
        CpuUse {
            ours: cpu_secs(std::process::id()),
            machine: machine_busy_secs(),
            start: Instant::now(),
        }
    }

    fn print(&self, what: &str) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let wall = self.start.elapsed().as_secs_f64();
        println!(
            "{what}: {wall:.2}s wall; CPU: ours {:.2}s, whole machine {:.2}s of {:.2}s available; our peak RSS so far {:.0} MB",
            cpu_secs(std::process::id()) - self.ours,
            machine_busy_secs() - self.machine,
            wall * cores as f64,
            peak_rss_mb()
        );
    }
}

fn time_shell(cmd: &str) -> Duration {
    let cpu = CpuUse::start();
    let start = Instant::now();
    let status = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdout(Stdio::null())
        .status()
        .expect("shell");
    assert!(status.success(), "baseline command failed: {cmd}");
    let took = start.elapsed();
    cpu.print(cmd.split_whitespace().next().unwrap_or("baseline"));
    took
}

fn local_lake() -> Lake {
    let dir = std::env::temp_dir().join(unique_name("bench"));
    Lake::new(LakeLocation::parse(dir.to_str().expect("utf-8"), &Default::default()).expect("lake"))
}

fn report(what: &str, n: u64, ours: Duration, base_name: &str, base: Duration) {
    let ours_rate = n as f64 / ours.as_secs_f64();
    let base_rate = n as f64 / base.as_secs_f64();
    println!(
        "{what}: {n} rows in {:.2}s = {ours_rate:.0}/s; {base_name}: {:.2}s = {base_rate:.0}/s; ratio {:.2}x; peak RSS {:.0} MB",
        ours.as_secs_f64(),
        base.as_secs_f64(),
        ours_rate / base_rate,
        peak_rss_mb()
    );
}

/// The extract of the `payments` table; `AULA_BENCH_PG_PARALLEL=N` sets
/// its COPY streams (default: the library's, one per two cores).
fn payments_request() -> ExtractRequest {
    let request = ExtractRequest::table("public", "payments");
    match std::env::var("AULA_BENCH_PG_PARALLEL")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(n) => request.parallel(n),
        None => request,
    }
}

/// A fresh database holding `n` generated payments, vacuumed: hint bits
/// and the visibility map set, as on any table that has been vacuumed;
/// otherwise the first reader (ours) pays for writing them.
async fn payments_table(n: u64) -> aula_test_support::TestPg {
    let pg = fresh_pg("bench").await;
    let pool = pg.pool().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(PAYMENTS.replace("{N}", &n.to_string())))
        .execute(&pool)
        .await
        .expect("generate rows");
    sqlx::raw_sql("VACUUM (FREEZE, ANALYZE) payments")
        .execute(&pool)
        .await
        .expect("vacuum");
    pool.close().await;
    pg
}

async fn payments_lake(n: u64) -> (Lake, TableName, String, Duration) {
    let pg = payments_table(n).await;
    let lake = local_lake();
    let table = TableName::parse("raw.payments").expect("name");
    let cpu = CpuUse::start();
    let start = Instant::now();
    let ex = postgres::extract(&pg.url, &payments_request())
        .await
        .expect("extract");
    let input = BatchStream::new(
        ex.schema.clone(),
        ex.stream.map(|r| r.map_err(|e| Box::new(e) as BoxError)),
    );
    let out = lake
        .write(&table, input, WriteOptions::new(WriteMode::Overwrite))
        .await
        .expect("write");
    assert_eq!(out.input_rows, n);
    let ours = start.elapsed();
    cpu.print("PG → Delta");
    (lake, table, pg.url, ours)
}

/// PG → Arrow only (no lake), in a process of its own: the decoder's memory.
async fn bench_decode(n: u64) {
    let pg = payments_table(n).await;
    let start = Instant::now();
    let mut ex = postgres::extract(&pg.url, &payments_request())
        .await
        .expect("extract");
    let mut rows = 0u64;
    while let Some(b) = ex.stream.next().await {
        rows += b.expect("batch").num_rows() as u64;
    }
    assert_eq!(rows, n);
    let ours = start.elapsed();
    let base = time_shell(&format!(
        "psql '{}' -q -c \"COPY (SELECT * FROM payments) TO STDOUT (FORMAT binary)\" > /dev/null",
        pg.url
    ));
    report(
        "PG → Arrow (decode only)",
        n,
        ours,
        "psql COPY binary",
        base,
    );
}

async fn bench_extract(n: u64) {
    let (_lake, _table, url, ours) = payments_lake(n).await;
    // The decode alone (no lake write), to split the cost.
    let start = Instant::now();
    let mut ex = postgres::extract(&url, &payments_request())
        .await
        .expect("extract");
    let mut rows = 0u64;
    while let Some(b) = ex.stream.next().await {
        rows += b.expect("batch").num_rows() as u64;
    }
    assert_eq!(rows, n);
    let decode_only = start.elapsed();
    let base = time_shell(&format!(
        "psql '{url}' -q -c \"COPY (SELECT * FROM payments) TO STDOUT (FORMAT binary)\" > /dev/null"
    ));
    report(
        "PG → Arrow (decode only)",
        n,
        decode_only,
        "psql COPY binary",
        base,
    );
    report("PG → Delta", n, ours, "psql COPY binary", base);
    // `scripts/bench` points this at a venv with ConnectorX installed.
    let python = std::env::var("AULA_BENCH_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let cx = Command::new(&python)
        .args(["-c", "import connectorx"])
        .status()
        .is_ok_and(|s| s.success());
    if cx {
        // One partition is the issue's baseline; ConnectorX split in as many
        // partitions as there are cores (on `amount_cents`, its numeric
        // split) is shown too, since Aula splits large tables itself.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        for parts in [1, cores] {
            let split = if parts > 1 {
                format!(", partition_on='amount_cents', partition_num={parts}")
            } else {
                String::new()
            };
            // Timed inside the interpreter, so its start-up is not counted against ConnectorX.
            let script = format!(
                "import time, resource, connectorx as cx\n\
                 t = time.perf_counter()\n\
                 n = cx.read_sql('{url}', 'SELECT * FROM payments', return_type='arrow'{split}).num_rows\n\
                 print(time.perf_counter() - t, n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)"
            );
            let cpu = CpuUse::start();
            let out = Command::new(&python)
                .args(["-c", &script])
                .output()
                .expect("run ConnectorX");
            cpu.print(&format!(
                "ConnectorX, {parts} partition(s), with interpreter start"
            ));
            assert!(
                out.status.success(),
                "ConnectorX failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let mut fields = text.split_whitespace();
            let secs: f64 = fields.next().and_then(|s| s.parse().ok()).expect("seconds");
            let rows: u64 = fields.next().and_then(|s| s.parse().ok()).expect("rows");
            assert_eq!(rows, n, "ConnectorX read a different row count");
            println!("ConnectorX peak RSS {} MB", fields.next().unwrap_or("?"));
            report(
                "PG → Delta",
                n,
                ours,
                &format!("ConnectorX → Arrow, {parts} partition(s)"),
                Duration::from_secs_f64(secs),
            );
            if cores == 1 {
                break;
            }
        }
    } else {
        println!("ConnectorX: not installed (pip install connectorx), comparison skipped");
    }
}

fn activity_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("student_id", DataType::Utf8, false),
        Field::new("course_id", DataType::Utf8, false),
        Field::new("lesson_id", DataType::Utf8, true),
        Field::new("kind", DataType::Utf8, false),
        Field::new(
            "occurred_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("duration_s", DataType::Int64, true),
        Field::new("score", DataType::Float64, true),
    ]))
}

async fn bench_kafka_run(n: u64) {
    use rdkafka::ClientConfig;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let topic = unique_topic("bench");
    // librdkafka's mock broker keeps 5 MB per partition: with a broker of its
    // own (`scripts/bench` builds one) the topic gets enough partitions to
    // hold every message; the shared test broker would drop the oldest.
    let own_broker = std::env::var_os("AULA_BENCH_DEVKAFKA").map(|bin| {
        let partitions = n.div_ceil(10_000).max(8);
        let file = std::env::temp_dir().join(format!("{topic}.bootstrap"));
        let child = Command::new(bin)
            .arg("--topic")
            .arg(format!("{topic}:{partitions}"))
            .arg("--bootstrap-file")
            .arg(&file)
            .stdout(Stdio::null())
            .spawn()
            .expect("start the benchmark broker");
        let deadline = Instant::now() + Duration::from_secs(20);
        let bootstrap = loop {
            if let Ok(text) = std::fs::read_to_string(&file) {
                break text.trim().to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "the benchmark broker did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        println!("broker of its own at {bootstrap}: {topic} with {partitions} partitions");
        (child, bootstrap)
    });
    let bootstrap = own_broker
        .as_ref()
        .map(|(_, b)| b.clone())
        .unwrap_or_else(kafka_bootstrap);
    {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("linger.ms", "20")
            .set("queue.buffering.max.messages", "1000000")
            .create()
            .expect("producer");
        let mut i = 0u64;
        while i < n {
            let end = (i + 50_000).min(n);
            let sends = (i..end).map(|j| {
                let v = format!(
                    r#"{{"event_id":"{j:032x}","student_id":"s-{}","course_id":"c-{}","lesson_id":"l-{}","kind":"video_watched","occurred_at":"2026-03-01T10:15:00.{:03}Z","duration_s":{},"score":null}}"#,
                    j % 5000,
                    j % 40,
                    j % 300,
                    j % 1000,
                    j % 3600
                );
                let key = format!("s-{}", j % 5000);
                let producer = producer.clone();
                let topic = topic.clone();
                async move {
                    producer.send(FutureRecord::to(&topic).key(&key).payload(&v), Duration::from_secs(30)).await
                }
            });
            for r in futures::future::join_all(sends).await {
                r.expect("delivered");
            }
            i = end;
        }
    }
    let broker_pid = own_broker.as_ref().map(|(c, _)| c.id());
    let broker_cpu = || broker_pid.map(cpu_secs).unwrap_or(f64::NAN);
    let cpu0 = broker_cpu();
    let base = time_shell(&format!(
        "kcat -C -b {bootstrap} -t {topic} -e -o beginning -q"
    ));
    println!(
        "kcat: {:.2}s wall, broker CPU {:.2}s",
        base.as_secs_f64(),
        broker_cpu() - cpu0
    );
    let lake = local_lake();
    let table = TableName::parse("raw.learning_activity").expect("name");
    let source = KafkaSource::new(&bootstrap).expect("source");
    // `AULA_BENCH_PROFILE=1`: say when the measured part starts, so a
    // profiler can attach to this process for it alone.
    if std::env::var_os("AULA_BENCH_PROFILE").is_some() {
        eprintln!("MEASURE-START pid {}", std::process::id());
        std::thread::sleep(Duration::from_secs(2));
    }
    let (cpu_ours0, cpu_broker0) = (cpu_secs(std::process::id()), broker_cpu());
    let start = Instant::now();
    let ranges = source
        .plan(std::slice::from_ref(&topic), &HashMap::new())
        .await
        .expect("plan");
    let mut options = WriteOptions::new(WriteMode::Append);
    for r in &ranges {
        options = options.txn(r.app_id(), r.end);
    }
    // The mock broker keeps a bounded log per partition: count what it still holds.
    let available: i64 = ranges.iter().map(|r| r.end - r.start).sum();
    let planned = start.elapsed();
    let consume = source.consume(ranges, activity_schema(), ConsumeOptions::default());
    let handle = consume.handle();
    // When the first batch arrived and when the stream ended, to split the time.
    let marks = Arc::new(std::sync::Mutex::new((None::<Duration>, None::<Duration>)));
    let (m1, m2) = (marks.clone(), marks.clone());
    let timed = consume
        .stream
        .inspect(move |_| {
            let mut m = m1.lock().unwrap();
            m.0.get_or_insert(start.elapsed());
        })
        .chain(futures::stream::poll_fn(move |_| {
            m2.lock().unwrap().1 = Some(start.elapsed());
            std::task::Poll::Ready(None)
        }));
    let input = BatchStream::new(
        consume.schema.clone(),
        timed.map(|r| r.map_err(|e| Box::new(e) as BoxError)),
    );
    let out = lake.write(&table, input, options).await.expect("write");
    let (first, ended) = *marks.lock().unwrap();
    println!(
        "Kafka → Delta phases: planned at {:.2}s, first batch at {:.2}s, stream ended at {:.2}s, committed at {:.2}s",
        planned.as_secs_f64(),
        first.unwrap_or_default().as_secs_f64(),
        ended.unwrap_or_default().as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    println!(
        "Kafka → Delta: {:.2}s wall, our CPU {:.2}s, broker CPU {:.2}s",
        start.elapsed().as_secs_f64(),
        cpu_secs(std::process::id()) - cpu_ours0,
        broker_cpu() - cpu_broker0
    );
    let stats = handle.stats();
    assert_eq!(stats.bad, 0);
    assert_eq!(out.input_rows, available as u64);
    if available as u64 != n {
        println!("note: the broker retained {available} of the {n} messages produced");
    }
    report(
        "Kafka → Delta",
        available as u64,
        start.elapsed(),
        "kcat",
        base,
    );
    if let Some((mut child, _)) = own_broker {
        let _ = child.kill();
        let _ = child.wait();
    }
}

async fn bench_clickhouse(n: u64) {
    let (lake, table, _url, _) = payments_lake(n).await;
    let db = fresh_clickhouse("bench").await;
    let mut ch = ClickHouse::from_client(aula_test_support::clickhouse_client(), &db.name)
        .await
        .expect("ch");
    // `AULA_BENCH_CH_INSERTS=N`: concurrent INSERTs (default: the library's).
    if let Some(n) = std::env::var("AULA_BENCH_CH_INSERTS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        ch = ch.with_inserts(n);
    }
    let schema = lake.describe(&table).await.expect("describe").schema;
    let spec = TableSpec {
        order_by: vec!["id".into()],
        partition_by: Some("toYYYYMM(updated_at)".into()),
        ddl: None,
    };
    ch.ensure_table("payments", &schema, &spec)
        .await
        .expect("create");
    let cpu = CpuUse::start();
    let start = Instant::now();
    let scan = lake.scan(&table, None).await.expect("scan");
    let r = ch.load("payments", scan, &[], 131_072).await.expect("load");
    let ours = start.elapsed();
    cpu.print("Delta → ClickHouse");
    assert_eq!(r.rows, n);
    let (http, _, _) = services().clickhouse_http();
    let port_native = services()
        .var("AULA_CLICKHOUSE_NATIVE_PORT")
        .unwrap_or_else(|| "9000".into());
    let host = url::Url::parse(&http)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let file = std::env::temp_dir().join(unique_name("bench_tsv"));
    let client = format!("clickhouse-client --host {host} --port {port_native}");
    time_shell(&format!(
        "{client} --query 'SELECT * FROM {db}.payments FORMAT TabSeparated' > {f}",
        db = db.name,
        f = file.display()
    ));
    ch.execute(&format!(
        "CREATE TABLE {db}.payments_tsv AS {db}.payments",
        db = db.name
    ))
    .await
    .expect("copy table");
    let base = time_shell(&format!(
        "{client} --query 'INSERT INTO {db}.payments_tsv FORMAT TabSeparated' < {f}",
        db = db.name,
        f = file.display()
    ));
    let _ = std::fs::remove_file(&file);
    report(
        "Delta → ClickHouse",
        n,
        ours,
        "clickhouse-client TSV insert",
        base,
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_default();
    let n: Option<u64> = args.next().and_then(|s| s.parse().ok());
    match what.as_str() {
        "extract" => bench_extract(n.unwrap_or(5_000_000)).await,
        "decode" => bench_decode(n.unwrap_or(5_000_000)).await,
        "kafka" => bench_kafka_run(n.unwrap_or(2_000_000)).await,
        "clickhouse" => bench_clickhouse(n.unwrap_or(5_000_000)).await,
        _ => {
            eprintln!("usage: bench extract|kafka|clickhouse [N]");
            std::process::exit(2);
        }
    }
}
