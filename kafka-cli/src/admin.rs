//! `kafka topics`, `kafka groups`, `kafka configs`, `kafka offsets`: the Admin API
//! with tables on stdout and one line per failed item on stderr.

use crate::{Failure, Globals, Outcome, FAILED, USAGE};
use clap::{Args, Subcommand};
use kafka_net::admin::{AlterConfigOp, ConfigResource, ResetTo, Results};
use kafka_net::NewTopic;
use std::collections::BTreeMap;
use std::fmt::Display;

/// Writes a line to stdout; a closed stdout (`| head`) is not an error.
fn emit(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Prints a table: a header and rows, columns padded.
fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        emit(s.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}

/// Prints each item's outcome (`ok: what` on stdout, the error on stderr); fails when
/// any item failed.
fn report<K: Display, T>(verb: &str, results: Results<K, T>) -> Outcome {
    let mut failed = 0;
    let total = results.len();
    for (k, r) in results {
        match r {
            Ok(_) => emit(&format!("{verb} {k}")),
            Err(e) => {
                failed += 1;
                eprintln!("kafka: {k}: {e}");
            }
        }
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(Failure::new(FAILED, format!("{failed} of {total} failed")))
    }
}

/// `kafka topics`.
#[derive(Args, Debug)]
pub(crate) struct TopicsArgs {
    #[command(subcommand)]
    command: Option<TopicsCommand>,
}

#[derive(Subcommand, Debug)]
enum TopicsCommand {
    /// List topics with their partition counts (the default).
    List {
        /// Include internal topics (`__consumer_offsets`).
        #[arg(long)]
        internal: bool,
    },
    /// Partitions, leaders, replicas and in-sync replicas of topics.
    Describe {
        /// Topics.
        #[arg(required = true)]
        topics: Vec<String>,
    },
    /// Create topics.
    Create {
        /// Topics.
        #[arg(required = true)]
        topics: Vec<String>,
        /// Partitions of each (-1: the broker's default).
        #[arg(short, long, default_value_t = -1, allow_hyphen_values = true)]
        partitions: i32,
        /// Replication factor (-1: the broker's default).
        #[arg(short, long, default_value_t = -1, allow_hyphen_values = true)]
        replication_factor: i16,
        /// A config, `name=value` (repeatable).
        #[arg(short, long = "config", value_name = "NAME=VALUE")]
        configs: Vec<String>,
        /// Check only; create nothing.
        #[arg(long)]
        validate_only: bool,
    },
    /// Delete topics.
    Delete {
        /// Topics.
        #[arg(required = true)]
        topics: Vec<String>,
    },
    /// Raise a topic's partition count.
    AddPartitions {
        /// The topic.
        topic: String,
        /// The new total.
        #[arg(long)]
        total: i32,
        /// Check only.
        #[arg(long)]
        validate_only: bool,
    },
}

fn name_value(s: &str, what: &str) -> Result<(String, String), Failure> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| Failure::new(USAGE, format!("{what} {s}: give NAME=VALUE")))
}

pub(crate) async fn topics(g: &Globals, a: TopicsArgs) -> Outcome {
    let admin = g.admin().await?;
    match a.command.unwrap_or(TopicsCommand::List { internal: false }) {
        TopicsCommand::List { internal } => {
            let topics = admin
                .list_topics(internal)
                .await
                .map_err(|e| Failure::cluster(&e))?;
            table(
                &["TOPIC", "PARTITIONS", "ID"],
                topics
                    .into_iter()
                    .map(|t| vec![t.name, t.partitions.to_string(), t.id.to_string()])
                    .collect(),
            );
            Ok(())
        }
        TopicsCommand::Describe { topics } => {
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            let described = admin.describe_topics(&names).await;
            let mut rows = Vec::new();
            let mut errors = BTreeMap::new();
            for (name, r) in described {
                match r {
                    Ok(d) => rows.extend(d.partitions.iter().map(|p| {
                        let ids =
                            |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
                        vec![
                            name.clone(),
                            p.partition.to_string(),
                            p.leader.to_string(),
                            ids(&p.replicas),
                            ids(&p.isr),
                        ]
                    })),
                    Err(e) => {
                        errors.insert(name, Err::<(), _>(e));
                    }
                }
            }
            table(&["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR"], rows);
            report("described", errors)
        }
        TopicsCommand::Create {
            topics,
            partitions,
            replication_factor,
            configs,
            validate_only,
        } => {
            let configs = configs
                .iter()
                .map(|c| name_value(c, "--config"))
                .collect::<Result<Vec<_>, _>>()?;
            let new = topics
                .iter()
                .map(|t| {
                    let mut n =
                        NewTopic::new(t, partitions).with_replication_factor(replication_factor);
                    for (k, v) in &configs {
                        n = n.with_config(k, v);
                    }
                    n
                })
                .collect();
            let verb = if validate_only { "valid:" } else { "created" };
            report(verb, admin.create_topics(new, validate_only).await)
        }
        TopicsCommand::Delete { topics } => {
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            report("deleted", admin.delete_topics(&names).await)
        }
        TopicsCommand::AddPartitions {
            topic,
            total,
            validate_only,
        } => {
            let verb = if validate_only {
                "valid:"
            } else {
                "now has more partitions:"
            };
            report(
                verb,
                admin
                    .create_partitions(&[(&topic, total)], validate_only)
                    .await,
            )
        }
    }
}

/// `kafka groups`.
#[derive(Args, Debug)]
pub(crate) struct GroupsArgs {
    #[command(subcommand)]
    command: Option<GroupsCommand>,
}

#[derive(Subcommand, Debug)]
enum GroupsCommand {
    /// List groups with their state (the default).
    List,
    /// A group's lag table: per partition the committed offset, log end, lag and the
    /// member that owns it (as kafka-consumer-groups.sh --describe).
    Describe {
        /// Groups.
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Delete groups (only empty ones).
    Delete {
        /// Groups.
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

fn or_dash(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

pub(crate) async fn groups(g: &Globals, a: GroupsArgs) -> Outcome {
    let admin = g.admin().await?;
    match a.command.unwrap_or(GroupsCommand::List) {
        GroupsCommand::List => {
            let groups = admin
                .list_groups()
                .await
                .map_err(|e| Failure::cluster(&e))?;
            table(
                &["GROUP", "STATE", "PROTOCOL-TYPE", "COORDINATOR"],
                groups
                    .into_iter()
                    .map(|g| {
                        vec![
                            g.group_id,
                            or_dash((!g.state.is_empty()).then_some(g.state)),
                            g.protocol_type,
                            g.coordinator.to_string(),
                        ]
                    })
                    .collect(),
            );
            Ok(())
        }
        GroupsCommand::Describe { groups } => {
            let mut errors: Results<String, ()> = BTreeMap::new();
            for group in groups {
                match admin.group_lag(&group).await {
                    Ok(lag) => {
                        emit(&format!(
                            "GROUP {} ({}, {} member(s){})",
                            lag.group_id,
                            lag.state,
                            lag.members,
                            if lag.protocol.is_empty() {
                                String::new()
                            } else {
                                format!(", {}", lag.protocol)
                            }
                        ));
                        table(
                            &[
                                "TOPIC",
                                "PARTITION",
                                "CURRENT-OFFSET",
                                "LOG-END-OFFSET",
                                "LAG",
                                "CONSUMER-ID",
                                "HOST",
                                "CLIENT-ID",
                            ],
                            lag.partitions
                                .iter()
                                .map(|p| {
                                    let m = p.member.as_ref();
                                    vec![
                                        p.topic.clone(),
                                        p.partition.to_string(),
                                        or_dash(p.committed),
                                        or_dash(p.log_end),
                                        or_dash(p.lag),
                                        or_dash(m.map(|m| m.member_id.clone())),
                                        or_dash(m.map(|m| m.host.clone())),
                                        or_dash(m.map(|m| m.client_id.clone())),
                                    ]
                                })
                                .collect(),
                        );
                        emit(&format!("TOTAL LAG {}", lag.total_lag()));
                    }
                    Err(e) => {
                        errors.insert(group, Err(e));
                    }
                }
            }
            report("described", errors)
        }
        GroupsCommand::Delete { groups } => {
            let names: Vec<&str> = groups.iter().map(String::as_str).collect();
            report("deleted group", admin.delete_groups(&names).await)
        }
    }
}

/// `kafka configs`.
#[derive(Args, Debug)]
pub(crate) struct ConfigsArgs {
    #[command(subcommand)]
    command: ConfigsCommand,
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct Resource {
    /// A topic.
    #[arg(long)]
    topic: Option<String>,
    /// A broker, by node id.
    #[arg(long)]
    broker: Option<i32>,
}

impl Resource {
    fn resource(&self) -> ConfigResource {
        match (&self.topic, self.broker) {
            (Some(t), _) => ConfigResource::Topic(t.clone()),
            (None, Some(b)) => ConfigResource::Broker(b),
            (None, None) => ConfigResource::Broker(0),
        }
    }
}

#[derive(Subcommand, Debug)]
enum ConfigsCommand {
    /// Every config of a topic or broker, with its source.
    Describe {
        #[command(flatten)]
        resource: Resource,
    },
    /// Set or delete configs, leaving the others (IncrementalAlterConfigs).
    Alter {
        #[command(flatten)]
        resource: Resource,
        /// Set a config, `name=value` (repeatable).
        #[arg(long, value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Remove a config, back to its default (repeatable).
        #[arg(long, value_name = "NAME")]
        delete: Vec<String>,
        /// Check only.
        #[arg(long)]
        validate_only: bool,
    },
}

pub(crate) async fn configs(g: &Globals, a: ConfigsArgs) -> Outcome {
    match a.command {
        ConfigsCommand::Describe { resource } => {
            let admin = g.admin().await?;
            let res = resource.resource();
            let mut described = admin.describe_configs(vec![res.clone()]).await;
            match described.remove(&res) {
                Some(Ok(entries)) => {
                    table(
                        &["NAME", "VALUE", "SOURCE", "READ-ONLY"],
                        entries
                            .into_iter()
                            .map(|e| {
                                vec![
                                    e.name.clone(),
                                    if e.sensitive {
                                        "(sensitive)".into()
                                    } else {
                                        or_dash(e.value.clone())
                                    },
                                    format!("{:?}", e.source),
                                    e.read_only.to_string(),
                                ]
                            })
                            .collect(),
                    );
                    Ok(())
                }
                Some(Err(e)) => Err(Failure::new(FAILED, e.to_string())),
                None => Err(Failure::new(FAILED, format!("{res} was not described"))),
            }
        }
        ConfigsCommand::Alter {
            resource,
            set,
            delete,
            validate_only,
        } => {
            let mut ops = Vec::new();
            for s in &set {
                let (k, v) = name_value(s, "--set")?;
                ops.push(AlterConfigOp::Set(k, v));
            }
            ops.extend(delete.into_iter().map(AlterConfigOp::Delete));
            if ops.is_empty() {
                return Err(Failure::new(
                    USAGE,
                    "give --set NAME=VALUE or --delete NAME",
                ));
            }
            let admin = g.admin().await?;
            let verb = if validate_only { "valid:" } else { "altered" };
            report(
                verb,
                admin
                    .incremental_alter_configs(vec![(resource.resource(), ops)], validate_only)
                    .await,
            )
        }
    }
}

/// `kafka offsets`.
#[derive(Args, Debug)]
pub(crate) struct OffsetsArgs {
    #[command(subcommand)]
    command: OffsetsCommand,
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct Target {
    /// The log start.
    #[arg(long)]
    to_earliest: bool,
    /// The log end.
    #[arg(long)]
    to_latest: bool,
    /// An offset (clamped to the log).
    #[arg(long, value_name = "OFFSET")]
    to_offset: Option<i64>,
    /// The committed offset moved by N (clamped).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    shift_by: Option<i64>,
    /// The first record at or after a time (ms since the epoch).
    #[arg(long, value_name = "MS")]
    to_datetime: Option<i64>,
}

#[derive(Subcommand, Debug)]
enum OffsetsCommand {
    /// A group's committed offsets.
    List {
        /// The group.
        #[arg(short, long)]
        group: String,
    },
    /// Reset a group's offsets (as kafka-consumer-groups.sh --reset-offsets); a dry
    /// run unless --execute. Refused while the group has members.
    Reset {
        /// The group.
        #[arg(short, long)]
        group: String,
        /// `TOPIC` (every partition) or `TOPIC:P,P` (repeatable).
        #[arg(short, long = "topic", required = true)]
        topics: Vec<String>,
        #[command(flatten)]
        to: Target,
        /// Commit the new offsets (without it: only show them).
        #[arg(long)]
        execute: bool,
    },
}

pub(crate) async fn offsets(g: &Globals, a: OffsetsArgs) -> Outcome {
    let admin = g.admin().await?;
    match a.command {
        OffsetsCommand::List { group } => {
            let offsets = admin
                .list_group_offsets(&group)
                .await
                .map_err(|e| Failure::cluster(&e))?;
            table(
                &["TOPIC", "PARTITION", "OFFSET"],
                offsets
                    .into_iter()
                    .map(|((t, p), o)| vec![t, p.to_string(), o.to_string()])
                    .collect(),
            );
            Ok(())
        }
        OffsetsCommand::Reset {
            group,
            topics,
            to,
            execute,
        } => {
            let to = match (to.to_earliest, to.to_latest, to.to_offset, to.shift_by, to.to_datetime) {
                (true, ..) => ResetTo::Earliest,
                (_, true, ..) => ResetTo::Latest,
                (_, _, Some(o), ..) => ResetTo::Offset(o),
                (_, _, _, Some(n), _) => ResetTo::ShiftBy(n),
                (.., Some(t)) => ResetTo::Timestamp(t),
                _ => return Err(Failure::new(USAGE, "give one of --to-earliest, --to-latest, --to-offset, --shift-by, --to-datetime")),
            };
            let mut partitions = Vec::new();
            let mut whole = Vec::new();
            for t in &topics {
                match t.split_once(':') {
                    Some((name, ps)) => {
                        for p in ps.split(',') {
                            let p = p.trim().parse::<i32>().map_err(|_| {
                                Failure::new(USAGE, format!("--topic {t}: partitions are numbers"))
                            })?;
                            partitions.push((name.to_string(), p));
                        }
                    }
                    None => whole.push(t.as_str()),
                }
            }
            if !whole.is_empty() {
                for (name, r) in admin.describe_topics(&whole).await {
                    let d = r.map_err(|e| Failure::new(FAILED, e.to_string()))?;
                    partitions.extend(d.partitions.iter().map(|p| (name.clone(), p.partition)));
                }
            }
            let results = admin
                .reset_group_offsets(&group, partitions, to, execute)
                .await
                .map_err(|e| Failure::new(FAILED, e.to_string()))?;
            let mut rows = Vec::new();
            let mut errors: Results<String, ()> = BTreeMap::new();
            for ((t, p), r) in results {
                match r {
                    Ok(o) => rows.push(vec![t, p.to_string(), o.to_string()]),
                    Err(e) => {
                        errors.insert(format!("{t}/{p}"), Err(e));
                    }
                }
            }
            table(&["TOPIC", "PARTITION", "NEW-OFFSET"], rows);
            if !execute {
                eprintln!("dry run: nothing committed; add --execute to commit");
            }
            report("reset", errors)
        }
    }
}
