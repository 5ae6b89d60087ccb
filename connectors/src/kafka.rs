//! Kafka source: topics into Arrow through a declared schema, as a bounded
//! batch between stored offsets and the high-water marks seen at start.
//!
//! Why no consumer group: a group join costs seconds and rebalances move
//! partitions under a running task. A run instead assigns every partition
//! itself, reads `[start, high)` where `start` is the offset the caller
//! stored *with the data* (e.g. a Delta `txn` action, see
//! `aula_warehouse::WriteOptions::txn`) and `high` the high-water mark
//! fetched when the run starts. Since `high` is known before any message is
//! read, the caller can record the end offsets in the very commit that
//! writes the data: a crash before the commit re-reads the same range, a
//! crash after it starts from `high`. Nothing is lost or duplicated.
//!
//! Messages are decoded with arrow's JSON decoder; one that is not valid
//! JSON or does not fit the schema goes, with its raw bytes,
//! topic/partition/offset and the error, into a dead-letter batch, and the
//! run fails when their share passes the threshold.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{BinaryBuilder, Int32Builder, Int64Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::json::ReaderBuilder;
use arrow::json::reader::Decoder;
use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use futures::stream::BoxStream;
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::error::{ConnectorError, Result};

/// Rows per Arrow batch unless configured: the lake writer queues up to ten
/// batches, so larger ones only add memory (2M events: 65,536 peaked at
/// 350-370 MB, 16,384 at 280 MB and ran faster).
pub const DEFAULT_BATCH_ROWS: usize = 16_384;

/// One partition's slice of a run: offsets `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartitionRange {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// First offset to read (the stored next offset, or the low watermark).
    pub start: i64,
    /// The high-water mark at start: the next offset to store once committed.
    pub end: i64,
}

impl PartitionRange {
    /// The key under which the next offset is stored (`kafka/<topic>/<partition>`),
    /// e.g. as a Delta `txn` app id.
    pub fn app_id(&self) -> String {
        offset_key(&self.topic, self.partition)
    }
}

/// `kafka/<topic>/<partition>`: the key of a stored offset.
pub fn offset_key(topic: &str, partition: i32) -> String {
    format!("kafka/{topic}/{partition}")
}

/// librdkafka reports reaching the end of a partition through the error
/// callback too; a bounded run reaches every partition's end on purpose, so
/// those are not logged as errors (the poll loop handles them).
struct EofIsNotAnError;

impl ClientContext for EofIsNotAnError {
    fn error(&self, error: KafkaError, reason: &str) {
        let eof = matches!(
            error,
            KafkaError::PartitionEOF(_)
                | KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        );
        if eof {
            tracing::trace!("librdkafka: {reason}");
        } else {
            tracing::error!("librdkafka: {error}: {reason}");
        }
    }
}

impl ConsumerContext for EofIsNotAnError {}

/// The consumer of one run.
type RunConsumer = BaseConsumer<EofIsNotAnError>;

/// Connection settings.
#[derive(Clone)]
pub struct KafkaSource {
    bootstrap: String,
    /// Metadata and watermark requests give up after this long.
    pub timeout: Duration,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

impl KafkaSource {
    /// From `kafka://host:port[,host:port]` or a bare bootstrap list.
    pub fn new(url: &str) -> Result<Self> {
        let bootstrap = url
            .strip_prefix("kafka://")
            .unwrap_or(url)
            .trim_end_matches('/');
        if bootstrap.is_empty() {
            return Err(ConnectorError::bad("Kafka", "empty bootstrap server list"));
        }
        Ok(KafkaSource {
            bootstrap: bootstrap.to_owned(),
            timeout: Duration::from_secs(10),
        })
    }

    fn consumer(&self) -> Result<RunConsumer> {
        ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            // Required by librdkafka for a consumer; never joined: we only assign.
            .set("group.id", "aula-assign-only")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", "earliest")
            .set("fetch.max.bytes", "52428800")
            // The prefetch queue is bounded (memory stays flat) and shared by
            // every assigned partition; when it is full librdkafka backs off
            // fetching for `fetch.queue.backoff.ms` (1 s by default), which
            // left the consumer idle most of a run. Retry soon instead.
            .set("queued.max.messages.kbytes", "65536")
            .set("fetch.queue.backoff.ms", "10")
            .create_with_context(EofIsNotAnError)
            .map_err(ConnectorError::kafka)
    }

    /// The partition numbers of `topic`; a topic that does not exist is bad input.
    fn partition_ids(&self, consumer: &RunConsumer, topic: &str) -> Result<Vec<i32>> {
        let md = consumer
            .fetch_metadata(Some(topic), self.timeout)
            .map_err(ConnectorError::kafka)?;
        let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
            return Err(ConnectorError::bad(
                "Kafka",
                format!("topic `{topic}` does not exist"),
            ));
        };
        if let Some(e) = t.error() {
            return Err(ConnectorError::kafka(format!("topic `{topic}`: {e:?}")));
        }
        Ok(t.partitions().iter().map(|p| p.id()).collect())
    }

    /// Every partition of `topics`, so the caller can look up their stored offsets.
    pub async fn partitions(&self, topics: &[String]) -> Result<Vec<(String, i32)>> {
        let this = self.clone();
        let topics = topics.to_vec();
        blocking(move || {
            let consumer = this.consumer()?;
            let mut out = Vec::new();
            for topic in &topics {
                let ids = this.partition_ids(&consumer, topic)?;
                out.extend(ids.into_iter().map(|p| (topic.clone(), p)));
            }
            drop_with_timeout(consumer);
            Ok(out)
        })
        .await
    }

    /// The ranges a run reads: every partition of `topics` from the stored
    /// offset (`stored[(topic, partition)]`, else the low watermark) up to the
    /// high-water mark now. Partitions with nothing new are left out.
    pub async fn plan(
        &self,
        topics: &[String],
        stored: &HashMap<(String, i32), i64>,
    ) -> Result<Vec<PartitionRange>> {
        let this = self.clone();
        let topics = topics.to_vec();
        let stored = stored.clone();
        blocking(move || {
            let consumer = this.consumer()?;
            let mut ranges = Vec::new();
            for topic in &topics {
                for p in this.partition_ids(&consumer, topic)? {
                    let (low, high) = consumer
                        .fetch_watermarks(topic, p, this.timeout)
                        .map_err(ConnectorError::kafka)?;
                    let start = stored
                        .get(&(topic.clone(), p))
                        .copied()
                        .unwrap_or(low)
                        .max(low);
                    if start < high {
                        ranges.push(PartitionRange {
                            topic: topic.clone(),
                            partition: p,
                            start,
                            end: high,
                        });
                    }
                }
            }
            drop_with_timeout(consumer);
            Ok(ranges)
        })
        .await
    }

    /// Read the ranges, decoding through `schema`. The stream ends with an
    /// error if a range cannot be read completely or bad messages pass
    /// `options.max_bad_ratio`; dead letters are available from the handle
    /// once the stream is done.
    pub fn consume(
        &self,
        ranges: Vec<PartitionRange>,
        schema: SchemaRef,
        options: ConsumeOptions,
    ) -> Consume {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(4);
        let mut topics: Vec<String> = Vec::new();
        for r in &ranges {
            if !topics.contains(&r.topic) {
                topics.push(r.topic.clone());
            }
        }
        let dead = Arc::new(Mutex::new(DeadLetters::new(topics)));
        let stats = Arc::new(Mutex::new(ConsumeStats::default()));
        let this = self.clone();
        let (dead2, stats2, schema2) = (dead.clone(), stats.clone(), schema.clone());
        tokio::task::spawn_blocking(move || {
            let r = this.consume_blocking(&ranges, schema2, &options, &tx, &dead2, &stats2);
            if let Err(e) = r {
                let _ = tx.blocking_send(Err(e));
            }
        });
        let stream =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|i| (i, rx)) })
                .boxed();
        Consume {
            schema,
            stream,
            dead,
            stats,
        }
    }

    /// This thread polls librdkafka and copies payloads into chunks; decoder
    /// threads (one per core, see [`ConsumeOptions::decoders`]) turn chunks
    /// into Arrow batches, so JSON decoding overlaps fetching (and the
    /// writer's Parquet encoding runs on the runtime's threads). Emptied
    /// chunks come back for reuse, so the copy does not touch fresh memory.
    fn consume_blocking(
        &self,
        ranges: &[PartitionRange],
        schema: SchemaRef,
        options: &ConsumeOptions,
        tx: &tokio::sync::mpsc::Sender<Result<RecordBatch>>,
        dead: &Mutex<DeadLetters>,
        stats: &Mutex<ConsumeStats>,
    ) -> Result<()> {
        if ranges.is_empty() {
            return Ok(());
        }
        let consumer = self.consumer()?;
        let mut tpl = TopicPartitionList::new();
        for r in ranges {
            tpl.add_partition_offset(&r.topic, r.partition, Offset::Offset(r.start))
                .map_err(ConnectorError::kafka)?;
        }
        consumer.assign(&tpl).map_err(ConnectorError::kafka)?;
        let topics = lock(dead).topics.clone();
        let mut open = OpenRanges::new(ranges, &topics);
        let decoders = options.decoders.max(1);
        let (chunk_tx, chunk_rx) = std::sync::mpsc::sync_channel::<Chunk>(2 * decoders);
        let chunk_rx = Mutex::new(chunk_rx);
        let (recycle_tx, recycle_rx) = std::sync::mpsc::sync_channel::<Chunk>(2 * decoders + 2);
        let mut total = 0u64;
        let mut bad_polled = 0u64;
        // Set by a decoder that stopped early (an error, or the reader went
        // away): polling stops, and the decoder drains the channel so the
        // poller never blocks on a full one.
        let stop = AtomicBool::new(false);
        let (polled, decoded) = std::thread::scope(|scope| {
            let mut decoding = Vec::with_capacity(decoders);
            for i in 0..decoders {
                let mut json = JsonBatcher::new(schema.clone(), options.batch_rows)?;
                let (chunk_rx, recycle_tx, stop) = (&chunk_rx, recycle_tx.clone(), &stop);
                let decoder = std::thread::Builder::new()
                    .name(format!("aula-kafka-decode-{i}"))
                    .spawn_scoped(scope, move || -> Result<u64> {
                        let mut bad = 0u64;
                        let result = (|| {
                            // The lock is held only while waiting for the next chunk.
                            while let Ok(mut chunk) = lock(chunk_rx).recv() {
                                for i in 0..chunk.metas.len() {
                                    if let Some(batch) = json.push(&chunk, i, dead, &mut bad)?
                                        && tx.blocking_send(Ok(batch)).is_err()
                                    {
                                        return Ok(false); // the reader went away
                                    }
                                }
                                chunk.clear();
                                let _ = recycle_tx.try_send(chunk);
                            }
                            if let Some(batch) = json.flush(dead, &mut bad)? {
                                let _ = tx.blocking_send(Ok(batch));
                            }
                            Ok(true)
                        })();
                        if !matches!(result, Ok(true)) {
                            stop.store(true, Ordering::Relaxed);
                            while lock(chunk_rx).recv().is_ok() {}
                        }
                        result.map(|_| bad)
                    })
                    .map_err(|e| ConnectorError::kafka(format!("cannot start a decoder: {e}")))?;
                decoding.push(decoder);
            }
            drop(recycle_tx);
            let polled = (|| -> Result<()> {
                let mut chunk = Chunk::default();
                // Set while polls come back empty; a message clears it. (No
                // clock read per message: that showed in profiles.)
                let mut idle_since: Option<Instant> = None;
                let hand_over = |chunk: &mut Chunk| {
                    let next = recycle_rx.try_recv().unwrap_or_default();
                    !stop.load(Ordering::Relaxed)
                        && chunk_tx.send(std::mem::replace(chunk, next)).is_ok()
                };
                while !open.is_done() {
                    let msg = match consumer.poll(Duration::from_millis(200)) {
                        None => {
                            let since = *idle_since.get_or_insert_with(Instant::now);
                            if since.elapsed() > options.idle_timeout {
                                return Err(ConnectorError::kafka(format!(
                                    "no progress for {:?}; {} partition(s) unfinished",
                                    options.idle_timeout, open.left
                                )));
                            }
                            // Nothing buffered: hand over what is ready.
                            if !chunk.metas.is_empty() && !hand_over(&mut chunk) {
                                return Ok(());
                            }
                            continue;
                        }
                        Some(Ok(m)) => m,
                        Some(Err(KafkaError::PartitionEOF(p))) => {
                            // The end of a partition: done if past its range (gaps
                            // such as transaction markers leave no message at end - 1).
                            let pos = consumer.position().map_err(ConnectorError::kafka)?;
                            open.eof(p, &pos);
                            continue;
                        }
                        Some(Err(e)) => return Err(ConnectorError::kafka(e)),
                    };
                    idle_since = None;
                    let offset = msg.offset();
                    let Some((meta, last)) = open.admit(msg.topic(), msg.partition(), offset)
                    else {
                        continue;
                    };
                    total += 1;
                    match msg.payload() {
                        None => {
                            bad_polled += 1;
                            lock(dead).push(&meta, None, "message has no value");
                        }
                        Some(payload) => chunk.push(meta, payload),
                    }
                    if last {
                        open.close(&meta);
                    }
                    if chunk.metas.len() >= CHUNK_MESSAGES && !hand_over(&mut chunk) {
                        return Ok(()); // the decoders stopped; their results say why
                    }
                }
                if !chunk.metas.is_empty() {
                    let _ = chunk_tx.send(chunk);
                }
                Ok(())
            })();
            drop(chunk_tx);
            let mut decoded = Ok(0u64);
            for d in decoding {
                let r = d
                    .join()
                    .unwrap_or_else(|_| Err(ConnectorError::kafka("a decoder thread panicked")));
                decoded = match (decoded, r) {
                    (Ok(a), Ok(b)) => Ok(a + b),
                    (Err(e), _) | (Ok(_), Err(e)) => Err(e),
                };
            }
            Ok::<_, ConnectorError>((polled, decoded))
        })?;
        drop_with_timeout(consumer);
        let bad = bad_polled + decoded.as_ref().copied().unwrap_or(0);
        {
            let mut s = lock(stats);
            s.messages = total;
            s.bad = bad;
        }
        polled?;
        decoded?;
        if total > 0 && (bad as f64 / total as f64) > options.max_bad_ratio {
            let first_error = lock(dead).errors.first().cloned().unwrap_or_default();
            return Err(ConnectorError::TooManyBadMessages {
                bad,
                total,
                allowed_pct: options.max_bad_ratio * 100.0,
                first_error,
            });
        }
        Ok(())
    }
}

/// Messages per chunk handed to a decoder thread.
const CHUNK_MESSAGES: usize = 8192;

/// Payloads back to back, each followed by a newline (so the JSON decoder
/// takes a message in one call), with where each came from: a chunk of
/// thousands of messages costs a handful of allocations.
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    /// End of each line, newline included.
    ends: Vec<usize>,
    metas: Vec<MsgMeta>,
}

impl Chunk {
    fn push(&mut self, meta: MsgMeta, payload: &[u8]) {
        self.bytes.extend_from_slice(payload);
        self.bytes.push(b'\n');
        self.ends.push(self.bytes.len());
        self.metas.push(meta);
    }

    /// Message `i` with its newline.
    fn line(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    /// Message `i` as it came.
    fn payload(&self, i: usize) -> &[u8] {
        let line = self.line(i);
        &line[..line.len() - 1]
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.metas.clear();
    }
}

/// The ranges still being read, found per message without allocating: a
/// topic by its index, a partition by its number.
struct OpenRanges<'a> {
    topics: &'a [String],
    /// Per topic, per partition number: the range's end offset, `None` once
    /// done or when the partition is not in the run.
    ends: Vec<Vec<Option<i64>>>,
    left: usize,
}

impl<'a> OpenRanges<'a> {
    fn new(ranges: &[PartitionRange], topics: &'a [String]) -> Self {
        let mut ends: Vec<Vec<Option<i64>>> = vec![Vec::new(); topics.len()];
        let mut left = 0;
        for r in ranges {
            let (Some(t), Ok(p)) = (
                topics.iter().position(|t| *t == r.topic),
                usize::try_from(r.partition),
            ) else {
                continue;
            };
            if ends[t].len() <= p {
                ends[t].resize(p + 1, None);
            }
            if ends[t][p].replace(r.end).is_none() {
                left += 1;
            }
        }
        OpenRanges { topics, ends, left }
    }

    fn is_done(&self) -> bool {
        self.left == 0
    }

    fn slot(&mut self, topic: usize, partition: i32) -> Option<&mut Option<i64>> {
        let p = usize::try_from(partition).ok()?;
        self.ends.get_mut(topic)?.get_mut(p)
    }

    /// Where a message belongs and whether it is its range's last, or `None`
    /// when it is outside every open range (then the range it would belong
    /// to is closed if the message is past its end).
    fn admit(&mut self, topic: &str, partition: i32, offset: i64) -> Option<(MsgMeta, bool)> {
        let t = self.topics.iter().position(|name| name == topic)?;
        let slot = self.slot(t, partition)?;
        let end = (*slot)?;
        if offset >= end {
            *slot = None;
            self.left -= 1;
            return None;
        }
        let meta = MsgMeta {
            topic: t as u32,
            partition,
            offset,
        };
        Some((meta, offset + 1 >= end))
    }

    fn close(&mut self, meta: &MsgMeta) {
        if let Some(slot) = self.slot(meta.topic as usize, meta.partition)
            && slot.take().is_some()
        {
            self.left -= 1;
        }
    }

    /// A partition's end was reached: close its ranges whose position is at
    /// or past their end.
    fn eof(&mut self, partition: i32, position: &TopicPartitionList) {
        for t in 0..self.topics.len() {
            let at = position
                .find_partition(&self.topics[t], partition)
                .and_then(|e| e.offset().to_raw());
            if let Some(slot) = self.slot(t, partition)
                && let Some(end) = *slot
                && at.is_some_and(|o| o >= end)
            {
                *slot = None;
                self.left -= 1;
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Run blocking librdkafka calls off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ConnectorError::kafka(format!("worker thread failed: {e}")))?
}

/// Destroying a librdkafka consumer can hang (rust-rdkafka #509): drop it on
/// a thread of its own and stop waiting after a few seconds.
fn drop_with_timeout(consumer: RunConsumer) {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("aula-kafka-drop".into())
        .spawn(move || {
            drop(consumer);
            let _ = done_tx.send(());
        });
    if spawned.is_ok() && done_rx.recv_timeout(Duration::from_secs(10)).is_err() {
        tracing::warn!("Kafka consumer did not close within 10 s; leaving it to the OS");
    }
}

/// Options of a consume.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// Rows per Arrow batch.
    pub batch_rows: usize,
    /// Fail when more than this fraction of messages are bad (0.0 = none allowed).
    pub max_bad_ratio: f64,
    /// Fail when no message arrives for this long before the ranges are done.
    pub idle_timeout: Duration,
    /// Threads decoding JSON (one per core by default: decoding is the
    /// heaviest part of a consume).
    pub decoders: usize,
}

impl Default for ConsumeOptions {
    fn default() -> Self {
        ConsumeOptions {
            batch_rows: DEFAULT_BATCH_ROWS,
            max_bad_ratio: 0.01,
            idle_timeout: Duration::from_secs(30),
            decoders: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
        }
    }
}

/// Counts of a finished consume.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumeStats {
    /// Messages read.
    pub messages: u64,
    /// Messages that went to the dead-letter batch.
    pub bad: u64,
}

/// A running consume.
pub struct Consume {
    /// Schema of every data batch.
    pub schema: SchemaRef,
    /// The decoded batches; the last item is an error if the run failed.
    pub stream: BoxStream<'static, Result<RecordBatch>>,
    dead: Arc<Mutex<DeadLetters>>,
    stats: Arc<Mutex<ConsumeStats>>,
}

impl std::fmt::Debug for Consume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consume")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl Consume {
    /// A handle on the dead letters and counts that stays usable after the
    /// stream has been handed to a writer.
    pub fn handle(&self) -> ConsumeHandle {
        ConsumeHandle {
            dead: self.dead.clone(),
            stats: self.stats.clone(),
        }
    }
}

/// Dead letters and counts of a consume (complete once its stream has ended).
#[derive(Clone)]
pub struct ConsumeHandle {
    dead: Arc<Mutex<DeadLetters>>,
    stats: Arc<Mutex<ConsumeStats>>,
}

impl std::fmt::Debug for ConsumeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumeHandle")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl ConsumeHandle {
    /// The dead letters, in [`dead_letter_schema`].
    pub fn dead_letters(&self) -> Result<RecordBatch> {
        lock(&self.dead).to_batch()
    }

    /// Messages read and messages dead-lettered.
    pub fn stats(&self) -> ConsumeStats {
        lock(&self.stats).clone()
    }
}

/// Schema of dead-letter batches: where the message was, its raw bytes and why it failed.
pub fn dead_letter_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("topic", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, false),
        Field::new("value", DataType::Binary, true),
        Field::new("error", DataType::Utf8, false),
    ]))
}

/// Where a message came from; `topic` indexes the run's topic list.
#[derive(Debug, Clone, Copy)]
struct MsgMeta {
    topic: u32,
    partition: i32,
    offset: i64,
}

struct DeadLetters {
    /// The run's topics, which [`MsgMeta::topic`] indexes.
    topics: Vec<String>,
    topic: Vec<u32>,
    partition: Vec<i32>,
    offset: Vec<i64>,
    value: Vec<Option<Vec<u8>>>,
    errors: Vec<String>,
}

impl DeadLetters {
    fn new(topics: Vec<String>) -> Self {
        DeadLetters {
            topics,
            topic: Vec::new(),
            partition: Vec::new(),
            offset: Vec::new(),
            value: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn push(&mut self, meta: &MsgMeta, value: Option<&[u8]>, error: &str) {
        self.topic.push(meta.topic);
        self.partition.push(meta.partition);
        self.offset.push(meta.offset);
        self.value.push(value.map(<[u8]>::to_vec));
        self.errors.push(error.to_owned());
    }

    fn to_batch(&self) -> Result<RecordBatch> {
        let mut t = StringBuilder::new();
        let mut p = Int32Builder::new();
        let mut o = Int64Builder::new();
        let mut v = BinaryBuilder::new();
        let mut e = StringBuilder::new();
        for i in 0..self.topic.len() {
            let topic = self.topics.get(self.topic[i] as usize);
            t.append_value(topic.map(String::as_str).unwrap_or("?"));
            p.append_value(self.partition[i]);
            o.append_value(self.offset[i]);
            v.append_option(self.value[i].as_deref());
            e.append_value(&self.errors[i]);
        }
        Ok(RecordBatch::try_new(
            dead_letter_schema(),
            vec![
                Arc::new(t.finish()),
                Arc::new(p.finish()),
                Arc::new(o.finish()),
                Arc::new(v.finish()),
                Arc::new(e.finish()),
            ],
        )?)
    }
}

/// Feeds messages one by one into arrow's JSON decoder, keeping each
/// pending message's bytes so a bad one can be isolated: a message that is
/// not one complete JSON value is caught on `decode`; a type mismatch or a
/// missing required field surfaces on `flush`, and then the pending
/// messages are re-decoded one at a time (rare: only when a batch holds a
/// poison message).
/// Field metadata key: a `Utf8` field carrying it receives any JSON value
/// (an object, a list) as its JSON text, e.g. the `data` of `crm.events`.
pub const JSON_TEXT: &str = "aula.json_text";

struct JsonBatcher {
    schema: SchemaRef,
    batch_rows: usize,
    decoder: Decoder,
    /// The messages in the decoder, kept until their batch is flushed.
    pending: Chunk,
    /// Fields whose value is kept as JSON text (see [`JSON_TEXT`]).
    json_text: Vec<String>,
}

/// Replace the values of `fields` by their JSON text, so arrow's decoder
/// reads them as strings.
fn stringify_fields(payload: &[u8], fields: &[String]) -> std::result::Result<Vec<u8>, String> {
    let mut value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| format!("invalid JSON: {e}"))?;
    let object = value.as_object_mut().ok_or("not a JSON object")?;
    for name in fields {
        if let Some(v) = object.get_mut(name)
            && !v.is_string()
            && !v.is_null()
        {
            *v = serde_json::Value::String(v.to_string());
        }
    }
    serde_json::to_vec(&value).map_err(|e| e.to_string())
}

impl JsonBatcher {
    fn new(schema: SchemaRef, batch_rows: usize) -> Result<Self> {
        let batch_rows = batch_rows.max(1);
        let json_text = schema
            .fields()
            .iter()
            .filter(|f| f.metadata().contains_key(JSON_TEXT))
            .map(|f| f.name().clone())
            .collect();
        Ok(JsonBatcher {
            decoder: Self::decoder(&schema, batch_rows)?,
            schema,
            batch_rows,
            pending: Chunk::default(),
            json_text,
        })
    }

    fn decoder(schema: &SchemaRef, batch_rows: usize) -> Result<Decoder> {
        Ok(ReaderBuilder::new(schema.clone())
            .with_batch_size(batch_rows + 1)
            .build_decoder()?)
    }

    fn rebuild(&mut self) -> Result<()> {
        self.decoder = Self::decoder(&self.schema, self.batch_rows)?;
        for i in 0..self.pending.metas.len() {
            self.decoder.decode(self.pending.line(i))?;
        }
        Ok(())
    }

    /// Decode message `i` of `chunk`.
    fn push(
        &mut self,
        chunk: &Chunk,
        i: usize,
        dead: &Mutex<DeadLetters>,
        bad: &mut u64,
    ) -> Result<Option<RecordBatch>> {
        let meta = chunk.metas[i];
        let (payload, line) = (chunk.payload(i), chunk.line(i));
        let stringified;
        let (payload, line) = if self.json_text.is_empty() {
            (payload, line)
        } else {
            match stringify_fields(payload, &self.json_text) {
                Ok(mut bytes) => {
                    bytes.push(b'\n');
                    stringified = bytes;
                    (
                        &stringified[..stringified.len() - 1],
                        stringified.as_slice(),
                    )
                }
                Err(error) => {
                    *bad += 1;
                    lock(dead).push(&meta, Some(payload), &error);
                    return Ok(None);
                }
            }
        };
        let before = self.decoder.len();
        let fed = self.decoder.decode(line).and_then(|n| {
            if n != line.len() {
                return Err(arrow::error::ArrowError::JsonError(
                    "trailing data after the JSON value".into(),
                ));
            }
            Ok(n)
        });
        let complete =
            fed.is_ok() && !self.decoder.has_partial_record() && self.decoder.len() == before + 1;
        if complete {
            self.pending.push(meta, payload);
        } else {
            let error = match fed {
                Err(e) => e.to_string(),
                Ok(_) if self.decoder.has_partial_record() => "incomplete JSON value".to_owned(),
                Ok(_) => "not exactly one JSON object".to_owned(),
            };
            *bad += 1;
            lock(dead).push(&meta, Some(payload), &error);
            self.rebuild()?;
        }
        if self.pending.metas.len() >= self.batch_rows {
            return self.flush(dead, bad);
        }
        Ok(None)
    }

    fn flush(&mut self, dead: &Mutex<DeadLetters>, bad: &mut u64) -> Result<Option<RecordBatch>> {
        if self.pending.metas.is_empty() {
            return Ok(None);
        }
        match self.decoder.flush() {
            Ok(batch) => {
                self.pending.clear();
                Ok(batch)
            }
            Err(_) => {
                // Find the culprits one message at a time.
                let pending = std::mem::take(&mut self.pending);
                let mut good = Vec::new();
                for (i, meta) in pending.metas.iter().enumerate() {
                    let bytes = pending.payload(i);
                    let mut d = Self::decoder(&self.schema, 1)?;
                    match d.decode(bytes).and_then(|_| d.flush()) {
                        Ok(Some(b)) => good.push(b),
                        Ok(None) => {
                            *bad += 1;
                            lock(dead).push(meta, Some(bytes), "empty message");
                        }
                        Err(e) => {
                            *bad += 1;
                            lock(dead).push(meta, Some(bytes), &e.to_string());
                        }
                    }
                }
                self.decoder = Self::decoder(&self.schema, self.batch_rows)?;
                if good.is_empty() {
                    return Ok(None);
                }
                Ok(Some(arrow::compute::concat_batches(&self.schema, &good)?))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("event_id", DataType::Utf8, false),
            Field::new("duration_s", DataType::Int64, true),
        ]))
    }

    /// A chunk holding one message, at offset `i`.
    fn one(payload: &[u8], i: usize) -> Chunk {
        let mut chunk = Chunk::default();
        let meta = MsgMeta {
            topic: 0,
            partition: 0,
            offset: i as i64,
        };
        chunk.push(meta, payload);
        chunk
    }

    #[test]
    fn poison_messages_are_isolated_and_good_ones_kept() {
        let dead = Mutex::new(DeadLetters::new(vec!["t".to_owned()]));
        let mut bad = 0;
        let mut j = JsonBatcher::new(schema(), 100).expect("decoder");
        let msgs: [&[u8]; 6] = [
            br#"{"event_id":"a","duration_s":1}"#,
            br#"{"event_id":"b","#,
            br#""duration_s":2}"#,
            br#"{"event_id":"c","duration_s":"soon"}"#,
            br#"{"duration_s":3}"#,
            br#"{"event_id":"d","duration_s":null}"#,
        ];
        for (i, m) in msgs.iter().enumerate() {
            assert!(
                j.push(&one(m, i), 0, &dead, &mut bad)
                    .expect("push")
                    .is_none()
            );
        }
        let batch = j.flush(&dead, &mut bad).expect("flush").expect("rows");
        assert_eq!(batch.num_rows(), 2, "a and d survive");
        let dl = lock(&dead).to_batch().expect("dead letters");
        assert_eq!(bad, 4);
        assert_eq!(dl.num_rows(), 4);
        let offsets = dl
            .column(2)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .expect("i64");
        assert_eq!(offsets.values().to_vec(), vec![1, 2, 3, 4]);
    }

    #[test]
    fn json_text_fields_keep_objects_as_their_json() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("event_id", DataType::Utf8, false),
            Field::new("data", DataType::Utf8, true)
                .with_metadata(HashMap::from([(JSON_TEXT.to_owned(), "true".to_owned())])),
        ]));
        let dead = Mutex::new(DeadLetters::new(vec!["t".to_owned()]));
        let mut bad = 0;
        let mut j = JsonBatcher::new(schema, 100).expect("decoder");
        let msgs: [&[u8]; 4] = [
            br#"{"event_id":"a","data":{"status":"converted","n":[1,2]}}"#,
            br#"{"event_id":"b","data":"already text"}"#,
            br#"{"event_id":"c"}"#,
            br#"[1,2]"#,
        ];
        for (i, m) in msgs.iter().enumerate() {
            assert!(
                j.push(&one(m, i), 0, &dead, &mut bad)
                    .expect("push")
                    .is_none()
            );
        }
        let batch = j.flush(&dead, &mut bad).expect("flush").expect("rows");
        let data = batch
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .expect("utf8");
        assert_eq!(data.value(0), r#"{"n":[1,2],"status":"converted"}"#);
        assert_eq!(data.value(1), "already text");
        assert!(arrow::array::Array::is_null(data, 2));
        assert_eq!(bad, 1, "a JSON list is not an event");
    }
}
