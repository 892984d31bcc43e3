//! Step 2, `sentiment`: a score and a label for the summary, for every transcript turn, and
//! per participant (the mean of their turns), with VADER (Hutto & Gilbert, ICWSM 2014: a
//! lexicon of ~7,500 rated words plus rules for negation, intensifiers, "but", capitals,
//! punctuation and emoji) through the `qsv_vader_sentiment_analysis` crate. VADER's lexicon is
//! English: text in other languages mostly scores neutral, which the label then says.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use vader_sentiment::SentimentIntensityAnalyzer;

use crate::document::{Document, Summary};

/// VADER's own thresholds on the compound score (its authors' recommendation).
pub const POSITIVE_AT: f64 = 0.05;
pub const NEGATIVE_AT: f64 = -0.05;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Positive,
    Neutral,
    Negative,
}

impl Label {
    pub fn of(compound: f64) -> Self {
        if compound >= POSITIVE_AT {
            Label::Positive
        } else if compound <= NEGATIVE_AT {
            Label::Negative
        } else {
            Label::Neutral
        }
    }
}

/// A compound score in [-1, 1] (rounded to 4 places, as VADER reports it) and its label.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub score: f64,
    pub label: Label,
}

impl Score {
    fn of(compound: f64) -> Self {
        let score = (compound * 10_000.0).round() / 10_000.0;
        Score {
            score,
            label: Label::of(score),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TurnScore {
    /// Position in the summary's transcript.
    pub index: usize,
    pub participant_id: String,
    #[serde(flatten)]
    pub score: Score,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantScore {
    pub participant_id: String,
    pub turns: usize,
    #[serde(flatten)]
    pub score: Score,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SentimentReport {
    /// `vader` — which model produced the scores, for whoever compares them later.
    pub model: String,
    pub summary: Score,
    pub turns: Vec<TurnScore>,
    pub participants: Vec<ParticipantScore>,
}

static ANALYZER: LazyLock<SentimentIntensityAnalyzer<'static>> =
    LazyLock::new(SentimentIntensityAnalyzer::new);

/// Loads the lexicon (about 7,500 entries): at start-up, so no invocation pays for it.
pub fn warm_up() {
    LazyLock::force(&ANALYZER);
}

fn compound(text: &str) -> f64 {
    ANALYZER
        .polarity_scores(text)
        .get("compound")
        .copied()
        .unwrap_or(0.0)
}

/// Scores the summary, its turns and its participants.
pub fn analyze(summary: &Summary) -> SentimentReport {
    let turns: Vec<TurnScore> = summary
        .transcript
        .iter()
        .enumerate()
        .map(|(index, turn)| TurnScore {
            index,
            participant_id: turn.participant_id.clone(),
            score: Score::of(compound(&turn.text)),
        })
        .collect();
    // Participants in the order they are listed, then any that only appear in the transcript.
    let mut ids: Vec<&str> = summary.participants.iter().map(|p| p.id.as_str()).collect();
    for turn in &turns {
        if !ids.contains(&turn.participant_id.as_str()) {
            ids.push(&turn.participant_id);
        }
    }
    let participants = ids
        .into_iter()
        .filter_map(|id| {
            let theirs: Vec<f64> = turns
                .iter()
                .filter(|t| t.participant_id == id)
                .map(|t| t.score.score)
                .collect();
            (!theirs.is_empty()).then(|| ParticipantScore {
                participant_id: id.to_owned(),
                turns: theirs.len(),
                score: Score::of(theirs.iter().sum::<f64>() / theirs.len() as f64),
            })
        })
        .collect();
    SentimentReport {
        model: "vader".into(),
        summary: Score::of(compound(&summary.text)),
        turns,
        participants,
    }
}

/// The step: the document in, its sentiment report out.
pub fn step(document: &Document) -> SentimentReport {
    analyze(&document.summary)
}
