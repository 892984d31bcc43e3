//! Replaying summaries through the pipeline (`session-replay`, README "Session pipeline").
//!
//! The originals are in the session bus's EventBridge Archive (`session.summary.final` is an
//! `archive` topic); the summaries table holds only masked text, so it is no input to run
//! again. A replay sends the archived events of a time window back to the bus, to the
//! pipeline's trigger rule only (`FilterArns`), and every step being idempotent, events of
//! other sessions in the window are harmless (`already_persisted`).
//!
//! - `window FROM TO`: replay everything archived between two instants.
//! - `sessions TENANT/CONVERSATION…`: replay the minute around each persisted summary's event
//!   time (its `version`: the forwarded event's time), then print what the table holds for
//!   each session before and after. A session with no item failed before persistence: its
//!   `session.pipeline.failed` event (failures queue) has the time to replay with `window`.
//!
//! Express executions cannot be listed or described afterwards, so outcomes come from where
//! they end: the table, and the failures queue.

use std::io::Write;

use crate::persistence::StoredSummary;

/// A replay window, in epoch milliseconds (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from_ms: i64,
    pub to_ms: i64,
}

/// How far either side of a summary's event time its replay window reaches.
pub const MARGIN_MS: i64 = 60_000;

/// One window per summary time, overlapping ones merged, in time order.
pub fn windows_for(mut times: Vec<i64>) -> Vec<Window> {
    times.sort_unstable();
    let mut out: Vec<Window> = Vec::new();
    for t in times {
        let window = Window {
            from_ms: t.saturating_sub(MARGIN_MS),
            to_ms: t.saturating_add(MARGIN_MS),
        };
        match out.last_mut() {
            Some(last) if window.from_ms <= last.to_ms => last.to_ms = window.to_ms,
            _ => out.push(window),
        }
    }
    out
}

/// The end state of one replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayEnd {
    pub name: String,
    /// `COMPLETED`, `FAILED` or `CANCELLED`.
    pub state: String,
    pub reason: Option<String>,
}

/// The archive side: start a replay of a window to the trigger rule, wait for its end.
#[allow(async_fn_in_trait)]
pub trait Archive {
    async fn replay(&self, window: Window) -> Result<ReplayEnd, String>;
}

/// The table side: what is persisted for a session.
#[allow(async_fn_in_trait)]
pub trait Summaries {
    async fn get(
        &self,
        tenant_id: &str,
        conversation_id: &str,
    ) -> Result<Option<StoredSummary>, String>;
}

/// `TENANT/CONVERSATION` → the pair; the conversation may itself contain `/`.
pub fn parse_session(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('/') {
        Some((tenant, conversation)) if !tenant.is_empty() && !conversation.is_empty() => {
            Ok((tenant.to_owned(), conversation.to_owned()))
        }
        _ => Err(format!("'{arg}' is not TENANT/CONVERSATION")),
    }
}

fn describe(item: &Option<StoredSummary>) -> String {
    match item {
        None => "no item".into(),
        Some(s) => format!(
            "version {} persisted at {} ({:?})",
            s.version, s.persisted_at, s.compliance.outcome
        ),
    }
}

/// Replays the given sessions and prints, per session, the item before and after. Returns
/// whether every replay completed.
pub async fn replay_sessions(
    sessions: &[(String, String)],
    summaries: &impl Summaries,
    archive: &impl Archive,
    out: &mut impl Write,
) -> Result<bool, String> {
    let mut before = Vec::with_capacity(sessions.len());
    for (tenant, conversation) in sessions {
        before.push(summaries.get(tenant, conversation).await?);
    }
    let times: Vec<i64> = before.iter().flatten().map(|s| s.version).collect();
    let mut all_completed = true;
    for window in windows_for(times) {
        let end = archive.replay(window).await?;
        all_completed &= end.state == "COMPLETED";
        writeln!(
            out,
            "replay {} of {}..{}: {}{}",
            end.name,
            window.from_ms,
            window.to_ms,
            end.state,
            end.reason.map(|r| format!(" ({r})")).unwrap_or_default()
        )
        .map_err(|e| e.to_string())?;
    }
    for ((tenant, conversation), before) in sessions.iter().zip(before) {
        let after = summaries.get(tenant, conversation).await?;
        let verdict = match (&before, &after) {
            (None, _) => "not replayed: no persisted summary gives its time; replay the time of its session.pipeline.failed event with `window`".to_owned(),
            (Some(b), Some(a)) if a == b => "unchanged (already persisted: the replayed summary is the stored version)".to_owned(),
            (Some(_), Some(_)) => "rewritten".to_owned(),
            (Some(_), None) => "the item is gone".to_owned(),
        };
        writeln!(
            out,
            "{tenant}/{conversation}: before {}; after {}; {verdict}",
            describe(&before),
            describe(&after)
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(all_completed)
}

/// The archive on AWS: the session bus's archive, replayed to the pipeline's trigger rule.
pub struct EventBridgeArchive {
    client: aws_sdk_eventbridge::Client,
    archive_arn: String,
    bus_arn: String,
    rule_arn: String,
    /// Between DescribeReplay calls.
    pub poll: std::time::Duration,
}

impl EventBridgeArchive {
    /// Looks the archive and the rule up by name (their ARNs name the account).
    pub async fn connect(
        client: aws_sdk_eventbridge::Client,
        archive_name: &str,
        rule_name: &str,
        bus_name: &str,
    ) -> Result<Self, String> {
        let sdk = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
        let archive = client
            .describe_archive()
            .archive_name(archive_name)
            .send()
            .await
            .map_err(|e| {
                sdk(
                    &format!("DescribeArchive {archive_name}"),
                    &aws_sdk_eventbridge::error::DisplayErrorContext(e),
                )
            })?;
        let rule = client
            .describe_rule()
            .name(rule_name)
            .event_bus_name(bus_name)
            .send()
            .await
            .map_err(|e| {
                sdk(
                    &format!("DescribeRule {rule_name}"),
                    &aws_sdk_eventbridge::error::DisplayErrorContext(e),
                )
            })?;
        Ok(Self {
            archive_arn: archive.archive_arn.ok_or("the archive has no ARN")?,
            bus_arn: archive.event_source_arn.ok_or("the archive names no bus")?,
            rule_arn: rule.arn.ok_or("the rule has no ARN")?,
            client,
            poll: std::time::Duration::from_secs(5),
        })
    }
}

impl Archive for EventBridgeArchive {
    async fn replay(&self, window: Window) -> Result<ReplayEnd, String> {
        use aws_sdk_eventbridge::primitives::DateTime;
        use aws_sdk_eventbridge::types::{ReplayDestination, ReplayState};
        let name = format!("session-pipeline-{}-{}", window.from_ms, crate::now_ms());
        let destination = ReplayDestination::builder()
            .arn(&self.bus_arn)
            .filter_arns(&self.rule_arn)
            .build()
            .map_err(|e| e.to_string())?;
        self.client
            .start_replay()
            .replay_name(&name)
            .event_source_arn(&self.archive_arn)
            .destination(destination)
            .event_start_time(DateTime::from_millis(window.from_ms))
            .event_end_time(DateTime::from_millis(window.to_ms))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "StartReplay: {}",
                    aws_sdk_eventbridge::error::DisplayErrorContext(e)
                )
            })?;
        loop {
            let described = self
                .client
                .describe_replay()
                .replay_name(&name)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "DescribeReplay: {}",
                        aws_sdk_eventbridge::error::DisplayErrorContext(e)
                    )
                })?;
            match described.state {
                Some(
                    state @ (ReplayState::Completed | ReplayState::Failed | ReplayState::Cancelled),
                ) => {
                    return Ok(ReplayEnd {
                        name,
                        state: state.as_str().to_owned(),
                        reason: described.state_reason,
                    });
                }
                _ => tokio::time::sleep(self.poll).await,
            }
        }
    }
}

impl Summaries for crate::persistence::DynamoSummaries {
    async fn get(
        &self,
        tenant_id: &str,
        conversation_id: &str,
    ) -> Result<Option<StoredSummary>, String> {
        self.get_item(tenant_id, conversation_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_surround_each_time_and_merge_when_they_overlap() {
        assert_eq!(windows_for(vec![]), vec![]);
        assert_eq!(
            windows_for(vec![1_000_000, 1_030_000, 5_000_000]),
            vec![
                Window {
                    from_ms: 940_000,
                    to_ms: 1_090_000
                },
                Window {
                    from_ms: 4_940_000,
                    to_ms: 5_060_000
                },
            ]
        );
    }

    use std::cell::RefCell;
    use std::collections::HashMap;

    use crate::compliance::Outcome;
    use crate::persistence::StoredCompliance;
    use crate::sentiment::{Label, Score, SentimentReport};

    fn item(conversation: &str, version: i64) -> StoredSummary {
        StoredSummary {
            tenant_id: "acme".into(),
            conversation_id: conversation.into(),
            version,
            source_event_id: "e".into(),
            client_event_id: "c".into(),
            session_id: "s".into(),
            schema_version: "1.1.0".into(),
            summary: "ok".into(),
            transcript: vec![],
            turns: 0,
            participants: vec![],
            duration_seconds: None,
            topics: vec![],
            sentiment: SentimentReport {
                model: "vader".into(),
                summary: Score {
                    score: 0.0,
                    label: Label::Neutral,
                },
                turns: vec![],
                participants: vec![],
            },
            compliance: StoredCompliance {
                outcome: Outcome::Pass,
                reasons: vec![],
                findings: vec![],
            },
            persisted_at: 1,
        }
    }

    struct Table(RefCell<HashMap<String, StoredSummary>>);
    impl Summaries for Table {
        async fn get(&self, _: &str, conversation: &str) -> Result<Option<StoredSummary>, String> {
            Ok(self.0.borrow().get(conversation).cloned())
        }
    }

    /// Replays "rewrite" conv-2 (as if its stored item were older than the archived summary).
    struct Replayed<'a>(&'a Table, RefCell<Vec<Window>>);
    impl Archive for Replayed<'_> {
        async fn replay(&self, window: Window) -> Result<ReplayEnd, String> {
            self.1.borrow_mut().push(window);
            if let Some(s) = self.0.0.borrow_mut().get_mut("conv-2") {
                s.persisted_at = 2;
            }
            Ok(ReplayEnd {
                name: "r1".into(),
                state: "COMPLETED".into(),
                reason: None,
            })
        }
    }

    #[tokio::test]
    async fn sessions_are_replayed_around_their_summary_time_and_reported_before_and_after() {
        let table = Table(RefCell::new(HashMap::from([
            ("conv-1".to_owned(), item("conv-1", 10_000_000)),
            ("conv-2".to_owned(), item("conv-2", 10_050_000)),
        ])));
        let archive = Replayed(&table, RefCell::new(vec![]));
        let sessions: Vec<_> = ["acme/conv-1", "acme/conv-2", "acme/conv-3"]
            .iter()
            .map(|s| parse_session(s).unwrap())
            .collect();
        let mut out = Vec::new();
        let completed = replay_sessions(&sessions, &table, &archive, &mut out)
            .await
            .unwrap();
        assert!(completed);
        assert_eq!(
            *archive.1.borrow(),
            [Window {
                from_ms: 9_940_000,
                to_ms: 10_110_000
            }]
        );
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "replay r1 of 9940000..10110000: COMPLETED");
        assert!(
            lines[1].starts_with("acme/conv-1: before version 10000000")
                && lines[1].ends_with(
                    "unchanged (already persisted: the replayed summary is the stored version)"
                ),
            "{}",
            lines[1]
        );
        assert!(lines[2].ends_with("; rewritten"), "{}", lines[2]);
        assert!(
            lines[3].starts_with("acme/conv-3: before no item; after no item; not replayed"),
            "{}",
            lines[3]
        );
    }

    #[test]
    fn sessions_are_tenant_slash_conversation() {
        assert_eq!(
            parse_session("acme/conv/1"),
            Ok(("acme".into(), "conv/1".into()))
        );
        assert!(parse_session("acme").is_err());
        assert!(parse_session("/conv").is_err());
    }
}
