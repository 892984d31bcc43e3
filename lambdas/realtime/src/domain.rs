//! What each domain event changes and which follow-up events it causes: pure functions of the
//! checked event, no AWS. Follow-up ids are derived from the cause
//! ([`eventfabric_core::publish::follow_up_id`]), so handling an event twice publishes the
//! same ids, which consumers dedupe.

use eventfabric_core::publish::{Publisher, events, follow_up_id};
use eventfabric_core::{BusEntry, EventSink};
use eventfabric_topics::{
    AccountUsageUpdatedPayload, BrandAuditRequestedPayload, BrandAuditRequestedPayloadReasonItem,
    BrandCompetitorRefreshRequestedPayload, BrandProfileUpdatedPayload,
    BrandProfileUpdatedPayloadChangedFieldsItem as Changed, MarketTrendDetectedPayload,
    RealtimeNotificationPayloadKind as Kind, ResearchQueryCompletedPayload,
    StudioContentGeneratedPayload, StudioJobProgressPayload, Topic,
};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::inbound::{Inbound, Refused};
use crate::store::Write;

/// Usage, in percent of the plan's limit, at which a user is warned (once per threshold and
/// period).
pub const USAGE_WARNING_PERCENTS: [u64; 2] = [80, 100];

/// The domain processors, one function each (`REALTIME_ROLE`), each routed only the topics it
/// handles by a rule generated from the registry (`cdk/lib/systems/realtime.ts`, checked
/// against [`Domain::topics`] by the contract tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Domain {
    Studio,
    Brand,
    Research,
    Market,
    Account,
}

impl Domain {
    pub const ALL: [Domain; 5] = [
        Domain::Studio,
        Domain::Brand,
        Domain::Research,
        Domain::Market,
        Domain::Account,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Domain::Studio => "studio",
            Domain::Brand => "brand",
            Domain::Research => "research",
            Domain::Market => "market",
            Domain::Account => "account",
        }
    }

    pub fn parse(name: &str) -> Option<Domain> {
        Domain::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The topics this domain's processor handles.
    pub fn topics(self) -> &'static [&'static str] {
        match self {
            Domain::Studio => &[
                StudioContentGeneratedPayload::TOPIC,
                StudioJobProgressPayload::TOPIC,
            ],
            Domain::Brand => &[BrandProfileUpdatedPayload::TOPIC],
            Domain::Research => &[ResearchQueryCompletedPayload::TOPIC],
            Domain::Market => &[MarketTrendDetectedPayload::TOPIC],
            Domain::Account => &[AccountUsageUpdatedPayload::TOPIC],
        }
    }
}

/// An event's state changes and follow-ups.
#[derive(Debug, Default)]
pub struct Effects<'a> {
    pub writes: Vec<Write>,
    pub follow_ups: Vec<BusEntry<'a>>,
}

/// The effects of `event` in `domain`'s processor. A topic the domain does not handle is
/// refused: its rule should not have routed it here.
pub fn effects<'p, S: EventSink>(
    domain: Domain,
    event: &Inbound,
    publisher: &'p Publisher<S>,
) -> Result<Effects<'p>, Refused> {
    if !domain.topics().contains(&event.topic) {
        return Err(Refused(vec![format!(
            "topic {} is not handled by the {} processor (it handles {})",
            event.topic,
            domain.name(),
            domain.topics().join(", ")
        )]));
    }
    match event.topic {
        StudioContentGeneratedPayload::TOPIC => content_generated(event, publisher),
        StudioJobProgressPayload::TOPIC => job_progress(event, publisher),
        BrandProfileUpdatedPayload::TOPIC => profile_updated(event, publisher),
        ResearchQueryCompletedPayload::TOPIC => query_completed(event, publisher),
        MarketTrendDetectedPayload::TOPIC => trend_detected(event, publisher),
        AccountUsageUpdatedPayload::TOPIC => usage_updated(event, publisher),
        other => Err(Refused(vec![format!("topic {other} has no processor")])),
    }
}

fn follow_up<'p, S: EventSink, T: Topic + Serialize>(
    publisher: &'p Publisher<S>,
    event: &Inbound,
    cause: &str,
    key: &str,
    payload: &T,
) -> Result<BusEntry<'p>, Refused> {
    let id = follow_up_id(cause, T::TOPIC, key);
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

/// Job progress (Studio) → the same progress for the user's connections (`Realtime Job
/// Progress Update`). Nothing is stored: the job's state is the Studio's.
fn job_progress<'p, S: EventSink>(
    event: &Inbound,
    publisher: &'p Publisher<S>,
) -> Result<Effects<'p>, Refused> {
    let p: StudioJobProgressPayload = event.payload()?;
    let status = same_enum(&p.status, "status")?;
    let progress = events::job_progress(
        p.user_id.as_str(),
        p.job_id.as_str(),
        status,
        p.percent,
        p.message.as_ref().map(|m| m.as_str()),
    )
    .map_err(|e| Refused(vec![e]))?;
    Ok(Effects {
        writes: Vec::new(),
        follow_ups: vec![follow_up(
            publisher,
            event,
            &event.id,
            p.job_id.as_str(),
            &progress,
        )?],
    })
}

/// Profile updated → the profile's last change recorded; `Brand Audit Requested` when its
/// name, address or phone changed, `Competitor Refresh Requested` when its market area did.
fn profile_updated<'p, S: EventSink>(
    event: &Inbound,
    publisher: &'p Publisher<S>,
) -> Result<Effects<'p>, Refused> {
    let p: BrandProfileUpdatedPayload = event.payload()?;
    let user = p.user_id.as_str();
    let profile = p.profile_id.as_str();
    let changed: Vec<String> = p.changed_fields.iter().map(ToString::to_string).collect();
    let mut item = object(json!({
        "kind": "brand_profile",
        "createdAt": eventfabric_core::Timestamp(event.occurred_ms).to_rfc3339(),
        "profileId": profile,
        "lastChangedFields": changed,
        "sourceEventId": event.id,
    }));
    let mut follow_ups = Vec::new();
    let reason: Vec<BrandAuditRequestedPayloadReasonItem> = p
        .changed_fields
        .iter()
        .filter_map(|f| match f {
            Changed::Name => Some(BrandAuditRequestedPayloadReasonItem::Name),
            Changed::Address => Some(BrandAuditRequestedPayloadReasonItem::Address),
            Changed::Phone => Some(BrandAuditRequestedPayloadReasonItem::Phone),
            _ => None,
        })
        .fold(Vec::new(), |mut seen, r| {
            if !seen.contains(&r) {
                seen.push(r);
            }
            seen
        });
    if !reason.is_empty() {
        let audit = BrandAuditRequestedPayload {
            user_id: parse(user, "userId")?,
            profile_id: parse(profile, "profileId")?,
            reason,
        };
        follow_ups.push(follow_up(publisher, event, &event.id, profile, &audit)?);
    }
    if p.changed_fields.contains(&Changed::MarketArea) {
        let Some(area) = p.market_area.as_ref() else {
            return Err(Refused(vec![
                "detail.payload.marketArea: required when changedFields names marketArea".into(),
            ]));
        };
        item.insert("marketArea".into(), area.as_str().into());
        let refresh = BrandCompetitorRefreshRequestedPayload {
            user_id: parse(user, "userId")?,
            profile_id: parse(profile, "profileId")?,
            market_area: parse(area.as_str(), "marketArea")?,
        };
        follow_ups.push(follow_up(publisher, event, &event.id, profile, &refresh)?);
    }
    Ok(Effects {
        writes: vec![Write::Put {
            pk: format!("USER#{user}"),
            sk: format!("BRAND#{profile}"),
            attributes: item,
        }],
        follow_ups,
    })
}

/// Research query completed → a knowledge item and a `research_completed` notification.
fn query_completed<'p, S: EventSink>(
    event: &Inbound,
    publisher: &'p Publisher<S>,
) -> Result<Effects<'p>, Refused> {
    let p: ResearchQueryCompletedPayload = event.payload()?;
    let user = p.user_id.as_str();
    let query_id = p.query_id.as_str();
    let sources: Vec<&str> = p.sources.iter().map(|s| s.as_str()).collect();
    let item = object(json!({
        "kind": "knowledge_item",
        "createdAt": eventfabric_core::Timestamp(event.occurred_ms).to_rfc3339(),
        "queryId": query_id,
        "query": p.query.as_str(),
        "summary": p.summary.as_str(),
        "sources": sources,
        "sourceEventId": event.id,
    }));
    let note = events::notification(
        user,
        Kind::ResearchCompleted,
        &format!("Research ready: {}", truncate(p.query.as_str(), 170)),
        Some(truncate(p.summary.as_str(), 2000)),
        Some(query_id),
    )
    .map_err(|e| Refused(vec![e]))?;
    Ok(Effects {
        writes: vec![Write::Put {
            pk: format!("USER#{user}"),
            sk: format!("KNOWLEDGE#{query_id}"),
            attributes: item,
        }],
        follow_ups: vec![follow_up(publisher, event, &event.id, user, &note)?],
    })
}

/// Trend detected → the trend recorded, and a `trend_detected` notification to each affected
/// user (each once, however often the event names them).
fn trend_detected<'p, S: EventSink>(
    event: &Inbound,
    publisher: &'p Publisher<S>,
) -> Result<Effects<'p>, Refused> {
    let p: MarketTrendDetectedPayload = event.payload()?;
    let trend = p.trend_id.as_str();
    let mut users: Vec<&str> = p.affected_users.iter().map(|u| u.as_str()).collect();
    users.sort_unstable();
    users.dedup();
    let mut item = object(json!({
        "kind": "market_trend",
        "createdAt": eventfabric_core::Timestamp(event.occurred_ms).to_rfc3339(),
        "trendId": trend,
        "title": p.title.as_str(),
        "affectedUsers": users.len(),
        "sourceEventId": event.id,
    }));
    if let Some(area) = &p.market_area {
        item.insert("marketArea".into(), area.as_str().into());
    }
    if let Some(strength) = p.strength {
        item.insert("strength".into(), strength.into());
    }
    let title = format!("Trend: {}", truncate(p.title.as_str(), 190));
    let follow_ups = users
        .iter()
        .map(|user| {
            let note = events::notification(user, Kind::TrendDetected, &title, None, Some(trend))
                .map_err(|e| Refused(vec![e]))?;
            follow_up(publisher, event, &event.id, user, &note)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Effects {
        writes: vec![Write::Put {
            pk: format!("TREND#{trend}"),
            sk: "TREND".into(),
            attributes: item,
        }],
        follow_ups,
    })
}

/// A generated string type from a value that already passed the cause's schema (the same
/// bounds), naming the field if not.
fn parse<T: std::str::FromStr>(value: &str, field: &str) -> Result<T, Refused>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e| Refused(vec![format!("follow-up {field}: {e}")]))
}

/// One topic's enum as another's with the same values (the Studio's job status as the
/// realtime one).
fn same_enum<A: Serialize, B: serde::de::DeserializeOwned>(
    value: &A,
    field: &str,
) -> Result<B, Refused> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|e| Refused(vec![format!("follow-up {field}: {e}")]))
}

fn truncate(text: &str, chars: usize) -> &str {
    text.char_indices()
        .nth(chars)
        .map_or(text, |(i, _)| &text[..i])
}
