//! `krait group`: list, describe (members, assignments, committed offsets, lag), delete, and
//! reset offsets of an inactive group.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use clap::{ArgGroup, Args, Subcommand};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::client::{Global, block_on, partitions};
use crate::output::{Table, print};

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List consumer groups.
    List,
    /// Members, assignments, committed offsets and lag of a group.
    Describe { group: String },
    /// Delete an inactive group and its committed offsets.
    Delete { group: String },
    /// Move an inactive group's committed offsets on a topic.
    ResetOffsets(ResetArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_offset"])))]
pub struct ResetArgs {
    group: String,
    #[arg(long)]
    topic: String,
    #[arg(long)]
    to_earliest: bool,
    #[arg(long)]
    to_latest: bool,
    #[arg(long)]
    to_offset: Option<i64>,
}

pub fn run(g: &Global, command: GroupCommand) -> anyhow::Result<()> {
    match command {
        GroupCommand::List => list(g),
        GroupCommand::Describe { group } => describe(g, &group),
        GroupCommand::Delete { group } => delete(g, &group),
        GroupCommand::ResetOffsets(a) => reset(g, &a),
    }
}

fn consumer(g: &Global, group: &str) -> anyhow::Result<BaseConsumer> {
    g.config()
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .context("cannot create a consumer")
}

#[derive(Debug, Serialize)]
struct GroupSummary {
    group: String,
    state: String,
    protocol_type: String,
    members: usize,
}

fn list(g: &Global) -> anyhow::Result<()> {
    let c = consumer(g, "krait-cli")?;
    let groups = c
        .fetch_group_list(None, g.timeout())
        .context("ListGroups failed")?;
    let mut out: Vec<GroupSummary> = groups
        .groups()
        .iter()
        .map(|gr| GroupSummary {
            group: gr.name().to_string(),
            state: gr.state().to_string(),
            protocol_type: gr.protocol_type().to_string(),
            members: gr.members().len(),
        })
        .collect();
    out.sort_by(|a, b| a.group.cmp(&b.group));
    print(g.output, &out, |groups| {
        let mut t = Table::new(&["GROUP", "STATE", "PROTOCOL-TYPE", "MEMBERS"]);
        for gr in groups {
            t.row(vec![
                gr.group.clone(),
                gr.state.clone(),
                gr.protocol_type.clone(),
                gr.members.to_string(),
            ]);
        }
        t.render()
    })
}

#[derive(Debug, Serialize)]
struct MemberView {
    member_id: String,
    client_id: String,
    host: String,
    assignment: BTreeMap<String, Vec<i32>>,
}

#[derive(Debug, Serialize)]
struct OffsetView {
    topic: String,
    partition: i32,
    committed: i64,
    high_watermark: i64,
    lag: i64,
    member: Option<String>,
}

#[derive(Debug, Serialize)]
struct GroupDescription {
    group: String,
    state: String,
    protocol: String,
    members: Vec<MemberView>,
    offsets: Vec<OffsetView>,
}

/// Decodes a consumer protocol assignment: version, [topic, [partition]], user data.
pub fn decode_assignment(bytes: &[u8]) -> Option<BTreeMap<String, Vec<i32>>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (b.get(..n)?, b.get(n..)?);
        *b = rest;
        Some(head)
    }
    let i16_at = |b: &mut &[u8]| take(b, 2).map(|x| i16::from_be_bytes([x[0], x[1]]));
    let i32_at = |b: &mut &[u8]| take(b, 4).map(|x| i32::from_be_bytes([x[0], x[1], x[2], x[3]]));
    let mut b = bytes;
    let mut out = BTreeMap::new();
    if b.is_empty() {
        return Some(out);
    }
    i16_at(&mut b)?;
    for _ in 0..i32_at(&mut b)?.max(0) {
        let len = usize::try_from(i16_at(&mut b)?).ok()?;
        let topic = String::from_utf8_lossy(take(&mut b, len)?).into_owned();
        let count = i32_at(&mut b)?.max(0);
        let partitions = (0..count)
            .map(|_| i32_at(&mut b))
            .collect::<Option<Vec<_>>>()?;
        out.insert(topic, partitions);
    }
    Some(out)
}

fn describe(g: &Global, group: &str) -> anyhow::Result<()> {
    let c = consumer(g, group)?;
    let list = c
        .fetch_group_list(Some(group), g.timeout())
        .context("DescribeGroups failed")?;
    let Some(info) = list.groups().iter().find(|gr| gr.name() == group) else {
        bail!("group {group} does not exist")
    };
    let members: Vec<MemberView> = info
        .members()
        .iter()
        .map(|m| MemberView {
            member_id: m.id().to_string(),
            client_id: m.client_id().to_string(),
            host: m.client_host().to_string(),
            assignment: m
                .assignment()
                .and_then(decode_assignment)
                .unwrap_or_default(),
        })
        .collect();
    let offsets = committed(g, &c, &members)?;
    let description = GroupDescription {
        group: group.to_string(),
        state: info.state().to_string(),
        protocol: info.protocol().to_string(),
        members,
        offsets,
    };
    print(g.output, &description, |d| {
        let mut t = Table::new(&[
            "TOPIC",
            "PARTITION",
            "COMMITTED",
            "HIGH-WATERMARK",
            "LAG",
            "MEMBER",
        ]);
        for o in &d.offsets {
            let committed = if o.committed < 0 {
                "-".to_string()
            } else {
                o.committed.to_string()
            };
            t.row(vec![
                o.topic.clone(),
                o.partition.to_string(),
                committed,
                o.high_watermark.to_string(),
                o.lag.to_string(),
                o.member.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        format!(
            "Group: {}  State: {}  Protocol: {}  Members: {}\n\n{}",
            d.group,
            d.state,
            d.protocol,
            d.members.len(),
            t.render()
        )
    })
}

/// Committed offsets of the group on every partition of every topic, with lag.
fn committed(
    g: &Global,
    c: &BaseConsumer,
    members: &[MemberView],
) -> anyhow::Result<Vec<OffsetView>> {
    let md = c
        .fetch_metadata(None, g.timeout())
        .context("cannot fetch metadata")?;
    let mut tpl = TopicPartitionList::new();
    for t in md.topics().iter().filter(|t| t.error().is_none()) {
        for p in t.partitions() {
            tpl.add_partition(t.name(), p.id());
        }
    }
    let committed = c
        .committed_offsets(tpl, g.timeout())
        .context("OffsetFetch failed")?;
    let owner = |topic: &str, p: i32| {
        members
            .iter()
            .find(|m| m.assignment.get(topic).is_some_and(|ps| ps.contains(&p)))
            .map(|m| m.member_id.clone())
    };
    let mut out = Vec::new();
    for e in committed.elements() {
        let assigned = owner(e.topic(), e.partition());
        let Offset::Offset(offset) = e.offset() else {
            if assigned.is_none() {
                continue;
            }
            let (_, high) = c.fetch_watermarks(e.topic(), e.partition(), g.timeout())?;
            out.push(OffsetView {
                topic: e.topic().into(),
                partition: e.partition(),
                committed: -1,
                high_watermark: high,
                lag: high,
                member: assigned,
            });
            continue;
        };
        let (_, high) = c.fetch_watermarks(e.topic(), e.partition(), g.timeout())?;
        out.push(OffsetView {
            topic: e.topic().into(),
            partition: e.partition(),
            committed: offset,
            high_watermark: high,
            lag: (high - offset).max(0),
            member: assigned,
        });
    }
    Ok(out)
}

fn delete(g: &Global, group: &str) -> anyhow::Result<()> {
    let admin = g.admin()?;
    for r in block_on(admin.delete_groups(&[group], &g.admin_options()))
        .context("DeleteGroups failed")?
    {
        r.map_err(|(_, code)| anyhow::anyhow!("cannot delete group {group}: {code}"))?;
    }
    println!("Deleted group {group}.");
    Ok(())
}

fn reset(g: &Global, a: &ResetArgs) -> anyhow::Result<()> {
    let c = consumer(g, &a.group)?;
    let list = c
        .fetch_group_list(Some(&a.group), g.timeout())
        .context("DescribeGroups failed")?;
    let active = list
        .groups()
        .iter()
        .find(|gr| gr.name() == a.group)
        .filter(|info| {
            !matches!(info.state(), "Empty" | "Dead" | "") || !info.members().is_empty()
        });
    if let Some(info) = active {
        bail!(
            "group {} is {} with {} members: stop its consumers before resetting offsets",
            a.group,
            info.state(),
            info.members().len()
        );
    }
    let mut tpl = TopicPartitionList::new();
    for p in partitions(g, &c, &a.topic)? {
        let (low, high) = c.fetch_watermarks(&a.topic, p, g.timeout())?;
        let target = match (a.to_earliest, a.to_latest, a.to_offset) {
            (true, _, _) => low,
            (_, true, _) => high,
            (_, _, Some(n)) => n.clamp(low, high),
            _ => unreachable!("clap requires one target"),
        };
        tpl.add_partition_offset(&a.topic, p, Offset::Offset(target))?;
    }
    c.commit(&tpl, CommitMode::Sync)
        .context("OffsetCommit failed")?;
    println!(
        "Reset offsets of group {} on topic {} ({} partitions).",
        a.group,
        a.topic,
        tpl.count()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_protocol_assignment_decodes() {
        let mut b = vec![0, 1, 0, 0, 0, 1, 0, 6];
        b.extend_from_slice(b"orders");
        b.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff]);
        let got = decode_assignment(&b).unwrap();
        assert_eq!(got, BTreeMap::from([("orders".to_string(), vec![0, 3])]));
        assert_eq!(decode_assignment(&[]), Some(BTreeMap::new()));
        assert_eq!(decode_assignment(&[0, 1, 0, 0, 0, 5]), None, "truncated");
    }
}
