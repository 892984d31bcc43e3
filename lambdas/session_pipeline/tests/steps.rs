//! Each step on real-looking summaries: clean, empty, and personal data in several languages.

use serde_json::{Value, json};
use session_pipeline::compliance::{Checker, FindingKind, Outcome, Policy};
use session_pipeline::document::PersistOutcome;
use session_pipeline::persistence::{MemorySummaries, StoredSummary, SummaryStore};
use session_pipeline::sentiment::Label;
use session_pipeline::{Document, StepError, handler, sentiment, summary};

/// A `session.summary.final` event as EventBridge hands it to the state machine.
fn event(payload: Value) -> Value {
    json!({
        "version": "0", "id": "5d7e0b7e-1f7c-4a8e-9a43-0c2b8d1e9f10",
        "detail-type": "session.summary.final", "source": "nia.interface",
        "account": "123456789012", "time": "2026-11-28T10:00:00Z", "region": "eu-west-1",
        "resources": [],
        "detail": {
            "id": "evt-41", "topic": "session.summary.final", "schemaVersion": "1.1.0",
            "tenantId": payload.get("tenantId").cloned().unwrap_or(Value::Null),
            "sessionId": "sess-7", "tabId": "tab-1", "appVersion": "4.2.0",
            "clientTs": "2026-11-28T09:59:58.250Z",
            "payload": payload, "meta": {}
        }
    })
}

fn payload(summary_text: &str, transcript: &[(&str, &str)]) -> Value {
    json!({
        "tenantId": "acme", "conversationId": "conv-1001", "turns": transcript.len(),
        "summary": summary_text,
        "participants": [{"id": "agent-1", "role": "agent"}, {"id": "cust-9", "role": "customer"}],
        "durationSeconds": 420, "topics": ["billing"],
        "transcript": transcript.iter().map(|(p, t)| json!({"participantId": p, "text": t})).collect::<Vec<_>>()
    })
}

fn document(summary_text: &str, transcript: &[(&str, &str)]) -> Document {
    summary::normalize(event(payload(summary_text, transcript))).unwrap()
}

const CLEAN: &str = "The customer asked why the invoice was higher this month. \
     The agent explained the new tier and applied a   loyalty discount;\n the customer was very happy with the quick help.";

#[test]
fn summary_normalizes_a_final_summary_event() {
    let d = document(
        CLEAN,
        &[
            ("cust-9", "Why is my bill higher?"),
            ("agent-1", "Let me check."),
        ],
    );
    let s = &d.summary;
    assert_eq!(
        (s.tenant_id.as_str(), s.conversation_id.as_str()),
        ("acme", "conv-1001")
    );
    assert_eq!(
        s.version, 1_795_859_998_250,
        "the client timestamp in ms is the version"
    );
    assert!(
        s.text.contains("a loyalty discount; the customer"),
        "whitespace runs collapse: {}",
        s.text
    );
    assert_eq!(s.source.event_id, "5d7e0b7e-1f7c-4a8e-9a43-0c2b8d1e9f10");
    assert_eq!(s.source.client_event_id, "evt-41");
    assert_eq!(s.participants.len(), 2);
    assert_eq!(s.transcript[1].participant_id, "agent-1");
    assert_eq!(s.duration_seconds, Some(420));
    // The document is what the next step reads back.
    let json = serde_json::to_value(&d).unwrap();
    let back: Document = serde_json::from_value(json).unwrap();
    assert_eq!(back, d);
}

#[test]
fn summary_rejects_what_cannot_be_a_summary_naming_the_field() {
    let invalid = |e: Value| match summary::normalize(e) {
        Err(StepError::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    };
    assert_eq!(
        invalid(event(payload(" \n\t ", &[]))),
        "detail.payload.summary: empty (nothing to analyze)"
    );
    let mut e = event(payload(CLEAN, &[]));
    e["detail-type"] = json!("session.lifecycle.ended");
    assert!(invalid(e).starts_with("event: detail-type 'session.lifecycle.ended'"));
    let mut e = event(payload(CLEAN, &[]));
    e["detail"]["schemaVersion"] = json!("2.0.0");
    assert_eq!(
        invalid(e),
        "detail.schemaVersion: '2.0.0' is not a 1.x version of session.summary.final"
    );
    let mut e = event(payload(CLEAN, &[]));
    e["detail"]["payload"]["turns"] = json!("call me on +44 20 7946 0958");
    let m = invalid(e);
    assert_eq!(
        m,
        "detail.payload at turns: invalid type: string, expected u64"
    );
    let mut e = event(payload(CLEAN, &[]));
    e["detail"]["payload"]
        .as_object_mut()
        .unwrap()
        .remove("tenantId");
    assert_eq!(invalid(e), "detail.payload: missing field `tenantId`");
    let e = event(payload(CLEAN, &[("stranger", "hi")]));
    assert_eq!(
        invalid(e),
        "detail.payload.transcript[0].participantId: not one of the participants"
    );
    let mut e = event(payload(CLEAN, &[]));
    e["detail"]["clientTs"] = json!("yesterday");
    assert_eq!(invalid(e), "detail.clientTs: not an RFC 3339 timestamp");
    assert!(invalid(json!("not an event")).starts_with("event"));
}

#[test]
fn sentiment_scores_the_summary_each_turn_and_each_participant() {
    let d = document(
        CLEAN,
        &[
            (
                "cust-9",
                "This is terrible, I was charged twice and nobody helps!",
            ),
            (
                "agent-1",
                "I am sorry. I have refunded the duplicate charge.",
            ),
            ("cust-9", "Great, thank you so much, that was fast."),
        ],
    );
    let report = sentiment::step(&d);
    assert_eq!(report.model, "vader");
    assert_eq!(report.summary.label, Label::Positive, "{report:?}");
    assert_eq!(report.turns.len(), 3);
    assert_eq!(report.turns[0].score.label, Label::Negative, "{report:?}");
    assert_eq!(report.turns[2].score.label, Label::Positive, "{report:?}");
    let customer = report
        .participants
        .iter()
        .find(|p| p.participant_id == "cust-9")
        .unwrap();
    assert_eq!(customer.turns, 2);
    let mean = (report.turns[0].score.score + report.turns[2].score.score) / 2.0;
    assert!(
        (customer.score.score - mean).abs() < 1e-3,
        "{customer:?} vs {mean}"
    );
    assert!((-1.0..=1.0).contains(&report.summary.score));
    // The lexicon is English (README says so): German mostly reads as neutral, and a false
    // friend ("war", German for "was") reads as English.
    let german = document("Der Kunde bekam eine doppelte Abbuchung erstattet.", &[]);
    assert_eq!(sentiment::step(&german).summary.label, Label::Neutral);
    let german = document("Der Kunde war froh.", &[]);
    assert_eq!(sentiment::step(&german).summary.label, Label::Negative);
}

fn check(
    checker: &Checker,
    text: &str,
    transcript: &[(&str, &str)],
) -> session_pipeline::compliance::ComplianceReport {
    session_pipeline::compliance::step(checker, &document(text, transcript))
}

#[test]
fn compliance_passes_a_clean_summary_unchanged() {
    let report = check(
        &Checker::new(&Policy::default()).unwrap(),
        CLEAN,
        &[("cust-9", "Thanks, bye")],
    );
    assert_eq!(report.outcome, Outcome::Pass);
    assert!(report.findings.is_empty() && report.reasons.is_empty());
    assert_eq!(report.masked.summary, document(CLEAN, &[]).summary.text);
    assert_eq!(report.masked.transcript, ["Thanks, bye"]);
}

#[test]
fn compliance_finds_and_masks_personal_data_in_several_languages() {
    let checker = Checker::new(&Policy::default()).unwrap();
    // English: email and phone -> flag.
    let r = check(
        &checker,
        "Customer (jane.doe+billing@example.co.uk) asked to be called back on (555) 010-0100 or +1 415 555 0132.",
        &[],
    );
    assert_eq!(r.outcome, Outcome::Flag, "{r:?}");
    assert_eq!(
        r.masked.summary,
        "Customer ([EMAIL]) asked to be called back on [PHONE] or [PHONE]."
    );
    assert_eq!(
        r.reasons,
        ["1 email address(es) (masked)", "2 phone number(s) (masked)"]
    );
    // German: IBAN -> block, phone masked too.
    let r = check(
        &checker,
        "Der Kunde gab seine IBAN DE89 3704 0044 0532 0130 00 durch und bat um Rückruf unter 030 12345678.",
        &[],
    );
    assert_eq!(r.outcome, Outcome::Block, "{r:?}");
    assert_eq!(
        r.masked.summary,
        "Der Kunde gab seine IBAN [IBAN] durch und bat um Rückruf unter [PHONE]."
    );
    // French: a card number passing Luhn -> block; one failing it is not a card.
    let r = check(
        &checker,
        "La cliente a dicté sa carte 4111 1111 1111 1111 ; le numéro 4111 1111 1111 1112 était une erreur. Rendez-vous le 28.11.2026.",
        &[],
    );
    assert_eq!(r.outcome, Outcome::Block, "{r:?}");
    assert!(
        r.masked
            .summary
            .starts_with("La cliente a dicté sa carte [CARD] ;"),
        "{}",
        r.masked.summary
    );
    assert!(
        r.masked
            .summary
            .contains("le numéro 4111 1111 1111 1112 était"),
        "not Luhn-valid: kept"
    );
    assert!(
        r.masked.summary.ends_with("le 28.11.2026."),
        "a date is not a phone number"
    );
    assert_eq!(
        r.findings
            .iter()
            .filter(|f| f.kind == FindingKind::CardNumber)
            .map(|f| f.count)
            .sum::<usize>(),
        1
    );
    // Japanese: phone and an internationalized email address, in the transcript.
    let r = check(
        &checker,
        "顧客は配送について問い合わせた。",
        &[(
            "cust-9",
            "電話番号は090-1234-5678、メールは yamada.taro@例子.中国 です",
        )],
    );
    assert_eq!(r.outcome, Outcome::Flag, "{r:?}");
    assert_eq!(
        r.masked.transcript,
        ["電話番号は[PHONE]、メールは [EMAIL] です"]
    );
    assert_eq!(
        r.findings
            .iter()
            .map(|f| f.field.as_str())
            .collect::<Vec<_>>(),
        ["transcript[0]", "transcript[0]"]
    );
    // Spanish: nothing personal, a short number and a year stay.
    let r = check(
        &checker,
        "El cliente pidió 3 cajas en 2026 por 45,90 EUR.",
        &[],
    );
    assert_eq!(r.outcome, Outcome::Pass, "{r:?}");
}

#[test]
fn compliance_applies_the_environments_terms_as_whole_words() {
    let policy: Policy = serde_json::from_str(
        r#"{"blockTerms": ["lawsuit"], "flagTerms": ["refund", "cancel my account"]}"#,
    )
    .unwrap();
    let checker = Checker::new(&policy).unwrap();
    let r = check(
        &checker,
        "Customer wants a REFUND and said: cancel my account.",
        &[],
    );
    assert_eq!(r.outcome, Outcome::Flag);
    assert_eq!(r.reasons, ["flagged term(s): cancel my account, refund"]);
    let r = check(
        &checker,
        "Customer mentioned a lawsuit.",
        &[("cust-9", "refunds please")],
    );
    assert_eq!(r.outcome, Outcome::Block, "{r:?}");
    assert_eq!(
        r.reasons,
        ["blocked term(s): lawsuit"],
        "'refunds' is not the word 'refund'"
    );
    assert!(Checker::from_json(Some(r#"{"blockTerms": [""]}"#)).is_err());
    assert!(
        Checker::from_json(Some(r#"{"blocked": []}"#)).is_err(),
        "unknown keys are refused"
    );
    assert!(Checker::from_json(None).is_ok());
}

fn enriched(text: &str, version_ts: &str) -> Document {
    let mut e = event(payload(text, &[("cust-9", "mail me at a@b.example")]));
    e["detail"]["clientTs"] = json!(version_ts);
    let mut d = summary::normalize(e).unwrap();
    d.sentiment = Some(sentiment::step(&d));
    d.compliance = Some(session_pipeline::compliance::step(
        &Checker::new(&Policy::default()).unwrap(),
        &d,
    ));
    d
}

#[tokio::test]
async fn persistence_writes_a_version_once_and_lets_the_newer_win() {
    let store = MemorySummaries::default();
    let first = enriched("Call me on +49 30 1234567.", "2026-11-28T10:00:00Z");
    let p = session_pipeline::persistence::step(&store, &first, 1)
        .await
        .unwrap();
    assert_eq!(p.outcome, PersistOutcome::Written);
    // The same summary again (a retried or repeated execution): nothing written.
    let p = session_pipeline::persistence::step(&store, &first, 2)
        .await
        .unwrap();
    assert_eq!(
        (p.outcome, store.writes()),
        (PersistOutcome::AlreadyPersisted, 1)
    );
    // A newer summary of the conversation replaces it; the older one arriving late does not.
    let newer = enriched("Resolved.", "2026-11-28T10:05:00Z");
    let p = session_pipeline::persistence::step(&store, &newer, 3)
        .await
        .unwrap();
    assert_eq!(p.outcome, PersistOutcome::Written);
    let p = session_pipeline::persistence::step(&store, &first, 4)
        .await
        .unwrap();
    assert_eq!(p.outcome, PersistOutcome::Superseded);
    assert_eq!(p.stored_version, newer.summary.version);
    let stored = store.get("acme", "conv-1001").unwrap();
    assert_eq!(stored.summary, "Resolved.");
    assert_eq!(store.writes(), 2);
}

#[tokio::test]
async fn persistence_writes_only_masked_text_and_only_checked_documents() {
    let store = MemorySummaries::default();
    let d = enriched("Call me on +49 30 1234567.", "2026-11-28T10:00:00Z");
    session_pipeline::persistence::step(&store, &d, 1)
        .await
        .unwrap();
    let stored: StoredSummary = store.get("acme", "conv-1001").unwrap();
    assert_eq!(stored.summary, "Call me on [PHONE].");
    assert_eq!(stored.transcript[0].text, "mail me at [EMAIL]");
    assert_eq!(stored.compliance.outcome, Outcome::Flag);
    let item = serde_json::to_string(&stored).unwrap();
    assert!(
        !item.contains("1234567") && !item.contains("a@b.example"),
        "{item}"
    );

    let mut unchecked = d.clone();
    unchecked.compliance = None;
    let e = session_pipeline::persistence::step(&store, &unchecked, 2)
        .await
        .unwrap_err();
    assert!(
        matches!(e, StepError::Invalid(ref m) if m.starts_with("compliance: missing")),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_store_failure_is_an_error_the_definition_can_tell_apart() {
    let store = MemorySummaries::default();
    store.fail_next([StepError::StoreUnavailable("throttled".into())]);
    let d = enriched("Fine.", "2026-11-28T10:00:00Z");
    let e = store
        .put_if_newer(&StoredSummary::from_document(&d, 1).unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.error_type(), "StoreUnavailable");
    let input = serde_json::to_value(&d).unwrap();
    let answer = handler::persistence(&store, input, 2).await.unwrap();
    assert_eq!(answer["outcome"], "written");
}

#[test]
fn the_local_fixture_goes_through_every_pure_step() {
    // The README's local run feeds this file to `cargo lambda invoke session-summary`.
    let event: Value =
        serde_json::from_str(include_str!("../fixtures/summary-final.json")).unwrap();
    let document = handler::summary(event).unwrap();
    let sentiment = handler::sentiment(document.clone()).unwrap();
    let compliance =
        handler::compliance(&Checker::new(&Policy::default()).unwrap(), document).unwrap();
    assert_eq!(sentiment["turns"].as_array().unwrap().len(), 3);
    assert_eq!(compliance["outcome"], "flag");
    assert!(
        compliance["masked"]["summary"]
            .as_str()
            .unwrap()
            .ends_with("call back on [PHONE].")
    );
}

#[test]
fn hostile_summaries_get_a_named_bounded_error_never_a_panic() {
    let invalid = |e: Value| match handler::summary(e) {
        Err(e) => {
            let d: lambda_runtime::Diagnostic = e.into();
            assert_eq!(d.error_type, "InvalidInput");
            assert!(
                d.error_message.len() <= 301 + '…'.len_utf8(),
                "{}",
                d.error_message.len()
            );
            d.error_message
        }
        Ok(v) => panic!("accepted: {v}"),
    };
    // Timestamps at the edges of what RFC 3339 and i64 milliseconds hold.
    for (ts, ok) in [
        ("0000-01-01T00:00:00Z", true),
        ("9999-12-31T23:59:59.999Z", true),
        ("1969-12-31T23:59:59Z", true),
        ("10000-01-01T00:00:00Z", false),
        ("2026-11-28T10:00:00+99:00", false),
        ("", false),
    ] {
        let mut e = event(payload(CLEAN, &[]));
        e["detail"]["clientTs"] = json!(ts);
        assert_eq!(handler::summary(e).is_ok(), ok, "{ts}");
    }
    // Ids past the registry's (and DynamoDB's key) limits, integers past u64.
    let mut e = event(payload(CLEAN, &[]));
    e["detail"]["payload"]["tenantId"] = json!("t".repeat(65));
    assert!(invalid(e).starts_with("detail.payload at tenantId"));
    let mut e = event(payload(CLEAN, &[]));
    e["detail"]["payload"]["conversationId"] = json!("c".repeat(129));
    assert!(invalid(e).starts_with("detail.payload at conversationId"));
    let mut e = event(payload(CLEAN, &[]));
    e["detail"]["payload"]["turns"] = json!(-1);
    assert!(invalid(e).starts_with("detail.payload at turns"));
    let mut e = event(payload(CLEAN, &[]));
    e["detail"]["payload"]["turns"] =
        serde_json::from_str::<Value>("18446744073709551616").unwrap();
    assert!(invalid(e).starts_with("detail.payload at turns"));
    let mut e = event(payload(CLEAN, &[]));
    e["detail"]["payload"]["summary"] = json!("x".repeat(3001));
    assert!(invalid(e).starts_with("detail.payload at summary"));
    // A huge unknown key is named, but the message stays bounded.
    let mut e = event(payload(CLEAN, &[]));
    e["detail"]["payload"]["k".repeat(100_000)] = json!(1);
    assert!(invalid(e).starts_with("detail.payload at kkkk"));
    // Control characters and an escape sequence in the detail-type are quoted escaped.
    let mut e = event(payload(CLEAN, &[]));
    e["detail-type"] = json!("\u{1b}[31mred\n");
    assert_eq!(
        invalid(e),
        "event: detail-type '\\u{1b}[31mred\\n' is not session.summary.final"
    );
    // Control characters inside the summary are text: normalized, analyzed, never a panic.
    let d = document("line one\u{0}\u{7}\r\nline two\u{2028}end", &[]);
    assert_eq!(d.summary.text, "line one\u{0}\u{7} line two end");
    // Nesting deeper than serde_json's recursion limit is an error, not a stack overflow.
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(serde_json::from_str::<Value>(&deep).is_err());
}
