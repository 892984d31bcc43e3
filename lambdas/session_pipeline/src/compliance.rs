//! Step 3, `compliance`: personal data and banned terms in the summary and its transcript.
//!
//! - Card numbers: 13–19 digits (spaces or dashes between groups) passing the Luhn check.
//! - IBANs: country code, check digits, 11–30 characters, passing the ISO 13616 mod-97 check.
//! - Email addresses: local part in Latin script, domain in any (`josé@exemplo.com.br`,
//!   `yamada@例子.中国`).
//! - Phone numbers: 9–15 digits (E.164's maximum), optionally `+`, with the separators people
//!   write (`+49 30 1234567`, `06 12 34 56 78`, `090-1234-5678`, `(555) 010-0100`). Dates and
//!   short numbers stay below 9 digits.
//! - Terms from the environment's policy ([`Policy`]), matched as whole words ignoring case.
//!
//! Outcome: `block` for a card number, an IBAN or a `blockTerms` term; else `flag` for any
//! email, phone number or `flagTerms` term; else `pass`. Personal data is masked in the text
//! the persistence step writes (`[CARD]`, `[IBAN]`, `[EMAIL]`, `[PHONE]`); reasons and findings
//! name kinds and counts, never the values.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::document::{Document, Summary};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Flag,
    Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    CardNumber,
    Iban,
    Email,
    Phone,
    BlockTerm,
    FlagTerm,
}

impl FindingKind {
    fn mask(self) -> Option<&'static str> {
        match self {
            FindingKind::CardNumber => Some("[CARD]"),
            FindingKind::Iban => Some("[IBAN]"),
            FindingKind::Email => Some("[EMAIL]"),
            FindingKind::Phone => Some("[PHONE]"),
            FindingKind::BlockTerm | FindingKind::FlagTerm => None,
        }
    }

    fn outcome(self) -> Outcome {
        match self {
            FindingKind::CardNumber | FindingKind::Iban | FindingKind::BlockTerm => Outcome::Block,
            FindingKind::Email | FindingKind::Phone | FindingKind::FlagTerm => Outcome::Flag,
        }
    }
}

/// What was found where: `field` is `summary` or `transcript[i]`; `term` names the policy term
/// for term findings (policy text, not the client's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub kind: FindingKind,
    pub field: String,
    pub count: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
}

/// The text as it may be persisted: personal data replaced by its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Masked {
    pub summary: String,
    pub transcript: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComplianceReport {
    pub outcome: Outcome,
    /// One line per finding kind, e.g. `2 email addresses (masked)`.
    pub reasons: Vec<String>,
    pub findings: Vec<Finding>,
    pub masked: Masked,
}

/// Per-environment terms (`COMPLIANCE_POLICY`, JSON: `{"blockTerms": [...], "flagTerms": [...]}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub block_terms: Vec<String>,
    #[serde(default)]
    pub flag_terms: Vec<String>,
}

/// A [`Policy`] compiled once at start-up.
#[derive(Debug, Clone)]
pub struct Checker {
    terms: Vec<(FindingKind, String, Regex)>,
}

#[derive(Debug, thiserror::Error)]
#[error("COMPLIANCE_POLICY: {0}")]
pub struct PolicyError(String);

impl Checker {
    pub fn new(policy: &Policy) -> Result<Self, PolicyError> {
        let mut terms = Vec::new();
        for (kind, list) in [
            (FindingKind::BlockTerm, &policy.block_terms),
            (FindingKind::FlagTerm, &policy.flag_terms),
        ] {
            for term in list {
                let trimmed = term.trim();
                if trimmed.is_empty() || trimmed.len() > 100 {
                    return Err(PolicyError(format!(
                        "a term must be 1–100 characters, got {} characters",
                        trimmed.len()
                    )));
                }
                let pattern = format!(r"(?i)\b{}\b", regex::escape(trimmed));
                let regex = Regex::new(&pattern).map_err(|e| PolicyError(e.to_string()))?;
                terms.push((kind, trimmed.to_owned(), regex));
            }
        }
        Ok(Self { terms })
    }

    /// Reads the policy from its JSON text (absent or empty: no terms).
    pub fn from_json(text: Option<&str>) -> Result<Self, PolicyError> {
        let policy = match text.map(str::trim) {
            None | Some("") => Policy::default(),
            Some(text) => serde_json::from_str(text).map_err(|e| PolicyError(e.to_string()))?,
        };
        Self::new(&policy)
    }

    pub fn check(&self, summary: &Summary) -> ComplianceReport {
        let mut findings = Vec::new();
        let masked_summary = self.scan("summary", &summary.text, &mut findings);
        let masked_transcript = summary
            .transcript
            .iter()
            .enumerate()
            .map(|(i, turn)| self.scan(&format!("transcript[{i}]"), &turn.text, &mut findings))
            .collect();
        let outcome = findings
            .iter()
            .map(|f| f.kind.outcome())
            .max()
            .unwrap_or(Outcome::Pass);
        ComplianceReport {
            outcome,
            reasons: reasons(&findings),
            findings,
            masked: Masked {
                summary: masked_summary,
                transcript: masked_transcript,
            },
        }
    }

    /// Records the findings of one text and returns it masked.
    fn scan(&self, field: &str, text: &str, findings: &mut Vec<Finding>) -> String {
        let mut text = text.to_owned();
        for kind in [
            FindingKind::CardNumber,
            FindingKind::Iban,
            FindingKind::Email,
            FindingKind::Phone,
        ] {
            let (masked, count) = mask_all(kind, &text);
            if count > 0 {
                findings.push(Finding {
                    kind,
                    field: field.to_owned(),
                    count,
                    term: None,
                });
                text = masked;
            }
        }
        for (kind, term, regex) in &self.terms {
            let count = regex.find_iter(&text).count();
            if count > 0 {
                findings.push(Finding {
                    kind: *kind,
                    field: field.to_owned(),
                    count,
                    term: Some(term.clone()),
                });
            }
        }
        text
    }
}

static CARD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d(?:[ -]?\d){12,18}\b").expect("card pattern"));
static IBAN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b").expect("IBAN pattern"));
/// Local parts in Latin script (`josé.núñez@…`); domains in any script (`例子.中国`).
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[\p{Latin}\d._%+-]+@[\w-]+(?:\.[\w-]+)*\.\w{2,}").expect("email pattern")
});
/// Not `\b`-anchored: in scripts written without spaces (`電話番号は090-1234-5678`) a number
/// follows a letter directly. The neighbours are matched instead (group 1 is the number).
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^\d+])(\+?\(?\d(?:[ ().-]{0,2}\d){7,16})(?:$|[^\d])").expect("phone pattern")
});

/// Replaces every valid match of `kind` with its mask; returns the text and the count.
fn mask_all(kind: FindingKind, text: &str) -> (String, usize) {
    let (regex, valid): (&Regex, fn(&str) -> bool) = match kind {
        FindingKind::CardNumber => (&CARD, |m| {
            let digits = digits(m);
            (13..=19).contains(&digits.len()) && luhn(&digits)
        }),
        FindingKind::Iban => (&IBAN, iban_checks),
        FindingKind::Email => (&EMAIL, |_| true),
        FindingKind::Phone => (&PHONE, |m| (9..=15).contains(&digits(m).len())),
        FindingKind::BlockTerm | FindingKind::FlagTerm => return (text.to_owned(), 0),
    };
    let mask = kind.mask().unwrap_or("[REDACTED]");
    let mut count = 0;
    let masked = regex.replace_all(text, |caps: &regex::Captures<'_>| {
        let whole = caps.get(0).expect("a match");
        // Group 1, when the pattern has one, is the finding; the rest is kept.
        let found = caps.get(1).unwrap_or(whole);
        if valid(found.as_str()) {
            count += 1;
            let before = &whole.as_str()[..found.start() - whole.start()];
            let after = &whole.as_str()[found.end() - whole.start()..];
            format!("{before}{mask}{after}")
        } else {
            whole.as_str().to_owned()
        }
    });
    (masked.into_owned(), count)
}

fn digits(text: &str) -> Vec<u8> {
    text.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

/// The Luhn (mod 10) check of card numbers.
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    !digits.is_empty() && sum % 10 == 0
}

/// The ISO 13616 check of an IBAN: country and check digits moved to the end, letters as
/// 10–35, the number mod 97 is 1.
pub fn iban_checks(text: &str) -> bool {
    let compact: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let rotated = compact[4..].iter().chain(&compact[..4]);
    let mut remainder: u32 = 0;
    for c in rotated {
        let value = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        let width = if value < 10 { 10 } else { 100 };
        remainder = (remainder * width + value) % 97;
    }
    remainder == 1
}

fn reasons(findings: &[Finding]) -> Vec<String> {
    let mut out = Vec::new();
    for kind in [
        FindingKind::CardNumber,
        FindingKind::Iban,
        FindingKind::BlockTerm,
        FindingKind::Email,
        FindingKind::Phone,
        FindingKind::FlagTerm,
    ] {
        let count: usize = findings
            .iter()
            .filter(|f| f.kind == kind)
            .map(|f| f.count)
            .sum();
        if count == 0 {
            continue;
        }
        let line = match kind {
            FindingKind::CardNumber => format!("{count} card number(s) (masked)"),
            FindingKind::Iban => format!("{count} IBAN(s) (masked)"),
            FindingKind::Email => format!("{count} email address(es) (masked)"),
            FindingKind::Phone => format!("{count} phone number(s) (masked)"),
            FindingKind::BlockTerm | FindingKind::FlagTerm => {
                let mut terms: Vec<&str> = findings
                    .iter()
                    .filter(|f| f.kind == kind)
                    .filter_map(|f| f.term.as_deref())
                    .collect();
                terms.sort_unstable();
                terms.dedup();
                let which = if kind == FindingKind::BlockTerm {
                    "blocked"
                } else {
                    "flagged"
                };
                format!("{which} term(s): {}", terms.join(", "))
            }
        };
        out.push(line);
    }
    out
}

/// The step: the document in, its compliance report out.
pub fn step(checker: &Checker, document: &Document) -> ComplianceReport {
    checker.check(&document.summary)
}
