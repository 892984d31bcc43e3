//! `session-replay`: runs summaries through the session pipeline again, from the session bus's
//! archive (`session_pipeline::replay`). Not deployed; run it with credentials for the
//! environment:
//!
//! ```text
//! session-replay ENV sessions TENANT/CONVERSATION...
//! session-replay ENV window FROM TO        (RFC 3339 instants)
//! ```

use std::process::ExitCode;

use session_pipeline::persistence::DynamoSummaries;
use session_pipeline::replay::{self, Archive, EventBridgeArchive, Window};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const USAGE: &str = "usage: session-replay ENV sessions TENANT/CONVERSATION...\n       session-replay ENV window FROM TO   (RFC 3339, e.g. 2026-11-28T10:00:00Z)";

#[tokio::main]
async fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn instant(arg: &str) -> Result<i64, String> {
    let t = OffsetDateTime::parse(arg, &Rfc3339)
        .map_err(|e| format!("'{arg}' is not an RFC 3339 instant: {e}"))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| format!("'{arg}' is out of range"))
}

async fn run(args: Vec<String>) -> Result<bool, String> {
    let (env, command, rest) = match args.as_slice() {
        [env, command, rest @ ..] if matches!(env.as_str(), "dev" | "staging" | "prod") => {
            (env, command, rest)
        }
        _ => return Err(USAGE.into()),
    };
    let name = |part: &str| format!("eventfabric-{env}-{part}");
    let aws = eventfabric_core::aws::load_config().await;
    let archive = EventBridgeArchive::connect(
        aws_sdk_eventbridge::Client::new(&aws),
        &name("session-archive"),
        &name("session-pipeline-trigger"),
        &name("session"),
    )
    .await?;
    let mut out = std::io::stdout().lock();
    match (command.as_str(), rest) {
        ("window", [from, to]) => {
            let window = Window {
                from_ms: instant(from)?,
                to_ms: instant(to)?,
            };
            if window.from_ms > window.to_ms {
                return Err("FROM is after TO".into());
            }
            let end = archive.replay(window).await?;
            println!(
                "replay {}: {}{}",
                end.name,
                end.state,
                end.reason.map(|r| format!(" ({r})")).unwrap_or_default()
            );
            Ok(end.state == "COMPLETED")
        }
        ("sessions", sessions) if !sessions.is_empty() => {
            let sessions = sessions
                .iter()
                .map(|s| replay::parse_session(s))
                .collect::<Result<Vec<_>, _>>()?;
            let table = DynamoSummaries::new(
                aws_sdk_dynamodb::Client::new(&aws),
                name("session-summaries"),
            );
            replay::replay_sessions(&sessions, &table, &archive, &mut out).await
        }
        _ => Err(USAGE.into()),
    }
}
