//! `kafka consume`: a topic to stdout, from an offset or a time (partitions read
//! directly), or as a member of a group (offsets committed).

use crate::format::Format;
use crate::progress::Progress;
use crate::{Failure, Globals, Outcome, FAILED, USAGE};
use clap::Args;
use kafka_consumer::{FetchOptions, Fetcher, FetcherConfig, Message, StartOffset};
use kafka_net::admin::OffsetSpec;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

/// Options of `kafka consume`.
#[derive(Args, Debug)]
pub(crate) struct ConsumeArgs {
    /// The topic.
    topic: String,
    /// Where to start: beginning, end, an offset, or -N for N before the end of each
    /// partition.
    #[arg(short, long, default_value = "beginning", allow_hyphen_values = true)]
    offset: String,
    /// Start at the first record at or after this time (ms since the epoch).
    #[arg(long, value_name = "MS", conflicts_with = "offset")]
    from_time: Option<i64>,
    /// Only these partitions (repeatable); all by default.
    #[arg(short, long)]
    partition: Vec<i32>,
    /// Consume as a member of this group, committing offsets (new partitions start at
    /// the beginning).
    #[arg(short, long, conflicts_with_all = ["partition", "from_time"])]
    group: Option<String>,
    /// Output format (kcat's -f): %t %p %o %k %K %s %S %T %h %%, \n \t.
    #[arg(short, long, default_value = "%s\\n")]
    format: String,
    /// Exit at the end of every partition (kcat's -e).
    #[arg(short, long)]
    exit: bool,
    /// Exit after this many records.
    #[arg(short, long)]
    count: Option<u64>,
}

fn start_of(a: &ConsumeArgs) -> Result<(StartOffset, Option<i64>), Failure> {
    if let Some(t) = a.from_time {
        return Ok((StartOffset::Timestamp(t), None));
    }
    match a.offset.as_str() {
        "beginning" => Ok((StartOffset::Earliest, None)),
        "end" => Ok((StartOffset::Latest, None)),
        o => match o.parse::<i64>() {
            Ok(n) if n < 0 => Ok((StartOffset::Latest, Some(-n))),
            Ok(n) => Ok((StartOffset::Offset(n), None)),
            Err(_) => Err(Failure::new(
                USAGE,
                format!("--offset {o}: give beginning, end, an offset or -N"),
            )),
        },
    }
}

fn fetcher_config() -> FetcherConfig {
    let mut fetch = FetchOptions::default();
    fetch.max_wait = Duration::from_millis(200);
    let mut config = FetcherConfig::default();
    config.fetch = fetch;
    config
}

struct Out {
    format: Format,
    buf: Vec<u8>,
    progress: Progress,
}

impl Out {
    fn write(&mut self, m: &Message) -> Result<(), Failure> {
        self.format.write(&mut self.buf, m);
        let size = m.key.as_ref().map_or(0, |k| k.len()) + m.value.as_ref().map_or(0, |v| v.len());
        self.progress.add(size);
        if self.buf.len() > 1 << 16 {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Failure> {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(&self.buf)
            .and_then(|()| stdout.flush())
            .map_err(|e| Failure::new(FAILED, format!("stdout: {e}")))?;
        self.buf.clear();
        Ok(())
    }
}

pub(crate) async fn run(g: &Globals, a: ConsumeArgs) -> Outcome {
    let format = Format::parse(&a.format).map_err(|m| Failure::new(USAGE, m))?;
    let (start, back) = start_of(&a)?;
    let admin = g.admin().await?;
    let described = admin.describe_topics(&[&a.topic]).await;
    let count = match described.get(&a.topic) {
        Some(Ok(d)) => d.partitions.len() as i32,
        Some(Err(e)) if e.code() == Some(kafka_protocol::ErrorCode::UnknownTopicOrPartition) => {
            return Err(Failure::new(
                FAILED,
                format!("topic {} does not exist", a.topic),
            ))
        }
        Some(Err(e)) => return Err(Failure::cluster(e)),
        None => {
            return Err(Failure::new(
                FAILED,
                format!("topic {} was not described", a.topic),
            ))
        }
    };
    let mut out = Out {
        format,
        buf: Vec::new(),
        progress: Progress::new("consumed"),
    };
    if a.count == Some(0) {
        out.progress.finish(&format!("from {}", a.topic));
        return Ok(());
    }
    let result = match &a.group {
        Some(group) => by_group(admin.client().clone(), &a, group, &mut out).await,
        None => {
            let partitions: Vec<i32> = if a.partition.is_empty() {
                (0..count).collect()
            } else {
                a.partition.clone()
            };
            if let Some(p) = partitions.iter().find(|p| !(0..count).contains(*p)) {
                return Err(Failure::new(
                    FAILED,
                    format!(
                        "topic {} has {count} partition(s), no partition {p}",
                        a.topic
                    ),
                ));
            }
            direct(&admin, &a, &partitions, start, back, &mut out).await
        }
    };
    out.flush()?;
    out.progress.finish(&format!("from {}", a.topic));
    result
}

/// Reads partitions directly with a fetcher.
async fn direct(
    admin: &kafka_net::Admin,
    a: &ConsumeArgs,
    partitions: &[i32],
    start: StartOffset,
    back: Option<i64>,
    out: &mut Out,
) -> Outcome {
    let tps: Vec<(String, i32)> = partitions.iter().map(|p| (a.topic.clone(), *p)).collect();
    let ends = listed(admin, &tps, OffsetSpec::Latest).await?;
    let starts = listed(admin, &tps, OffsetSpec::Earliest).await?;
    let fetcher = Fetcher::new(admin.client().clone(), fetcher_config())
        .map_err(|e| Failure::new(FAILED, e.to_string()))?;
    // Where each partition is done (with --exit): its end now.
    let mut open: BTreeMap<i32, i64> = BTreeMap::new();
    for &p in partitions {
        let end = ends[&p];
        let s = match (start, back) {
            (_, Some(n)) => StartOffset::Offset((end - n).max(starts[&p])),
            (s, None) => s,
        };
        let first = match s {
            StartOffset::Offset(o) => o,
            StartOffset::Earliest => starts[&p],
            StartOffset::Latest => end,
            StartOffset::Timestamp(_) => -1,
        };
        fetcher.assign(&a.topic, p, s);
        if !(a.exit && first >= end && first >= 0) {
            open.insert(p, end);
        }
    }
    let mut seen = 0u64;
    loop {
        if a.exit && open.is_empty() {
            break;
        }
        let batch =
            match tokio::time::timeout(Duration::from_millis(500), fetcher.next_batch()).await {
                Err(_) => {
                    // Time lookups: a partition whose position is at its end is done.
                    if a.exit {
                        open.retain(|p, end| {
                            fetcher.position(&a.topic, *p).is_none_or(|pos| pos < *end)
                        });
                    }
                    continue;
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(Failure::new(FAILED, e.to_string())),
                Ok(Some(Ok(b))) => b,
            };
        for r in batch.records {
            let offset = r.offset;
            let m = Message::from_record(batch.topic.as_str(), batch.partition, r);
            let end = open.get(&batch.partition).copied();
            if a.exit && end.is_none_or(|e| offset >= e) {
                continue;
            }
            out.write(&m)?;
            seen += 1;
            if a.count.is_some_and(|c| seen >= c) {
                fetcher.close();
                return Ok(());
            }
            if a.exit && end.is_some_and(|e| offset + 1 >= e) {
                open.remove(&batch.partition);
            }
        }
        if a.exit {
            open.retain(|p, end| fetcher.position(&a.topic, *p).is_none_or(|pos| pos < *end));
        }
    }
    fetcher.close();
    Ok(())
}

async fn listed(
    admin: &kafka_net::Admin,
    tps: &[(String, i32)],
    spec: OffsetSpec,
) -> Result<BTreeMap<i32, i64>, Failure> {
    let wanted = tps.iter().map(|tp| (tp.clone(), spec)).collect();
    let mut out = BTreeMap::new();
    for ((_, p), r) in admin.list_offsets(wanted).await {
        let o = r.map_err(|e| Failure::cluster(&e))?;
        out.insert(p, o.offset.unwrap_or(0));
    }
    Ok(out)
}

/// Reads as a group member, committing what was written.
async fn by_group(
    client: kafka_net::KafkaClient,
    a: &ConsumeArgs,
    group: &str,
    out: &mut Out,
) -> Outcome {
    use kafka_group::{GroupConfig, GroupConsumer, Topics};
    let mut config = GroupConfig::new(group);
    config.start = StartOffset::Earliest;
    config.fetcher = fetcher_config();
    config.auto_commit_interval = Duration::from_secs(1);
    let member = GroupConsumer::subscribe(client, Topics::Names(vec![a.topic.clone()]), config)
        .await
        .map_err(|e| Failure::new(FAILED, format!("group {group}: {e}")))?;
    let mut seen = 0u64;
    let mut interrupted = std::pin::pin!(tokio::signal::ctrl_c());
    let result = loop {
        let next = tokio::select! {
            // Ctrl-C: commit what was written and leave the group.
            _ = &mut interrupted => break Ok(()),
            next = tokio::time::timeout(Duration::from_millis(1000), member.next()) => next,
        };
        match next {
            Err(_) => {
                let lags = member.lags();
                if a.exit && !lags.is_empty() && lags.iter().all(|(_, l)| *l == Some(0)) {
                    break Ok(());
                }
            }
            Ok(None) => break Ok(()),
            Ok(Some(Err(e))) => break Err(Failure::new(FAILED, format!("group {group}: {e}"))),
            Ok(Some(Ok(m))) => {
                out.write(&m)?;
                member.done(&m);
                seen += 1;
                if a.count.is_some_and(|c| seen >= c) {
                    break Ok(());
                }
            }
        }
    };
    out.flush()?;
    member
        .close()
        .await
        .map_err(|e| Failure::new(FAILED, format!("group {group}: commit and leave: {e}")))?;
    result
}
