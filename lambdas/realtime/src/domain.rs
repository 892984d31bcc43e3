//! What each domain event changes and which follow-up events it causes: pure functions of the
//! checked event, no AWS. Follow-up ids are derived from the cause
//! ([`eventfabric_core::publish::follow_up_id`]), so handling an event twice publishes the
//! same ids, which consumers dedupe.

use eventfabric_core::publish::{Publisher, events, follow_up_id};
use eventfabric_core::{BusEntry, EventSink};
use eventfabric_topics::{
    AccountUsageUpdatedPayload, RealtimeNotificationPayload,
    RealtimeNotificationPayloadKind as Kind, StudioContentGeneratedPayload, Topic,
};
use serde_json::{Map, Value, json};

use crate::inbound::{Inbound, Refused};
use crate::store::Write;

/// Usage, in percent of the plan's limit, at which a user is warned (once per threshold and
/// period).
pub const USAGE_WARNING_PERCENTS: [u64; 2] = [80, 100];

/// An event's state changes and follow-ups.
#[derive(Debug, Default)]
pub struct Effects<'a> {
    pub writes: Vec<Write>,
    pub follow_ups: Vec<BusEntry<'a>>,
}

/// The effects of `event`. A topic no processor handles is refused: its rule should not route
/// it here.
pub fn effects<'p, S: EventSink>(
    event: &Inbound,
    publisher: &'p Publisher<S>,
) -> Result<Effects<'p>, Refused> {
    match event.topic {
        StudioContentGeneratedPayload::TOPIC => content_generated(event, publisher),
        AccountUsageUpdatedPayload::TOPIC => usage_updated(event, publisher),
        other => Err(Refused(vec![format!(
            "topic {other} has no processor here"
        )])),
    }
}

fn follow_up<'p, S: EventSink>(
    publisher: &'p Publisher<S>,
    event: &Inbound,
    cause: &str,
    key: &str,
    payload: &RealtimeNotificationPayload,
) -> Result<BusEntry<'p>, Refused> {
    let id = follow_up_id(cause, RealtimeNotificationPayload::TOPIC, key);
    publisher
        .entry(id, event.occurred_ms, Some(&event.id), payload)
        .map_err(|e| Refused(vec![e.to_string()]))
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Content generated → a library item, the user's generation counter for the month, and a
/// `content_generated` notification.
fn content_generated<'p, S: EventSink>(
    event: &Inbound,
    publisher: &'p Publisher<S>,
) -> Result<Effects<'p>, Refused> {
    let p: StudioContentGeneratedPayload = event.payload()?;
    let user = p.user_id.as_str();
    let occurred = eventfabric_core::Timestamp(event.occurred_ms).to_rfc3339();
    let month = occurred.get(..7).unwrap_or("0000-00").to_owned();
    let mut item = object(json!({
        "kind": "library_item",
        "createdAt": occurred,
        "contentId": p.content_id.as_str(),
        "contentType": p.content_type,
        "title": p.title.as_str(),
        "sourceEventId": event.id,
    }));
    if let Some(words) = p.word_count {
        item.insert("wordCount".into(), words.into());
    }
    let note = events::notification(
        user,
        Kind::ContentGenerated,
        &format!("Ready: {}", truncate(p.title.as_str(), 180)),
        None,
        Some(p.content_id.as_str()),
    )
    .map_err(|e| Refused(vec![e]))?;
    Ok(Effects {
        writes: vec![
            Write::Put {
                pk: format!("USER#{user}"),
                sk: format!("CONTENT#{}", p.content_id.as_str()),
                attributes: item,
            },
            Write::Add {
                pk: format!("USER#{user}"),
                sk: format!("USAGE#content_generations#{month}"),
                attribute: "count",
                by: 1,
            },
        ],
        follow_ups: vec![follow_up(publisher, event, &event.id, user, &note)?],
    })
}

/// Usage updated → a `usage_warning` when it reaches 80 % or 100 % of the limit. The
/// notification's id is the (user, feature, period, threshold): every later update above the
/// same threshold yields the same id, so a user is warned once per threshold.
fn usage_updated<'p, S: EventSink>(
    event: &Inbound,
    publisher: &'p Publisher<S>,
) -> Result<Effects<'p>, Refused> {
    let p: AccountUsageUpdatedPayload = event.payload()?;
    let mut effects = Effects::default();
    if p.limit == 0 {
        return Ok(effects);
    }
    // u128: `used` and `limit` go up to u64::MAX.
    let percent = u128::from(p.used) * 100 / u128::from(p.limit);
    let Some(threshold) = USAGE_WARNING_PERCENTS
        .iter()
        .rev()
        .find(|t| percent >= u128::from(**t))
    else {
        return Ok(effects);
    };
    let feature = serde_json::to_value(p.feature)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let period = p
        .period
        .as_ref()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "current".into());
    let user = p.user_id.as_str();
    let title = if *threshold >= 100 {
        format!(
            "You have used all {} {} of your plan",
            p.limit,
            feature.replace('_', " ")
        )
    } else {
        format!(
            "You have used {threshold} % of your plan's {}",
            feature.replace('_', " ")
        )
    };
    let note = events::notification(user, Kind::UsageWarning, &title, None, None)
        .map_err(|e| Refused(vec![e]))?;
    let cause = format!("usage/{user}/{feature}/{period}");
    effects.follow_ups.push(follow_up(
        publisher,
        event,
        &cause,
        &threshold.to_string(),
        &note,
    )?);
    Ok(effects)
}

fn truncate(text: &str, chars: usize) -> &str {
    text.char_indices()
        .nth(chars)
        .map_or(text, |(i, _)| &text[..i])
}
