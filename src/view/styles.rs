//! The Both styles tab: choreography and orchestration side by side — each style's
//! figures over every saga the view has read (how many ended how, messages per saga,
//! latency), where its state lives and who decides, and the same orders placed in each
//! (`edm lab --saga both --ui`: the demo's, and those placed from the page).

use serde::Serialize;

use super::book::{State, Summary};
use crate::orchestration::SagaStyle;

/// One style's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub style: &'static str,
    pub sagas: usize,
    pub complete: usize,
    pub cancelled: usize,
    /// In flight, stuck or dead-lettered.
    pub open: usize,
    /// Mean messages on the topics per completed saga, and per cancelled one.
    pub messages_complete: Option<f64>,
    pub messages_cancelled: Option<f64>,
    /// First to last message of the completed sagas: median and 95th percentile, ms.
    pub latency_p50_ms: Option<i64>,
    pub latency_p95_ms: Option<i64>,
    /// Where its state lives, who decides, how it is undone, what a silence does.
    pub traits: Vec<(&'static str, &'static str)>,
}

/// The same order in each style.
#[derive(Debug, Clone, Serialize)]
pub struct Pair {
    /// What the order is, e.g. "alice, payment accepted".
    pub story: String,
    /// Its saga in each style: the style and the transaction id.
    pub transactions: Vec<(&'static str, String)>,
}

/// A pair as the page shows it: each saga's summary (`None` until the view has read it).
#[derive(Debug, Clone, Serialize)]
pub struct PairShown {
    pub story: String,
    pub sagas: Vec<(&'static str, String, Option<Summary>)>,
}

/// Each style's figures over `sagas` (both styles always, in the same order).
pub fn figures<'a>(sagas: impl IntoIterator<Item = &'a Summary>) -> Vec<Figures> {
    let sagas: Vec<&Summary> = sagas.into_iter().collect();
    [SagaStyle::Choreography, SagaStyle::Orchestration]
        .into_iter()
        .map(|style| {
            let mine: Vec<&&Summary> = sagas.iter().filter(|s| s.style == style.as_str()).collect();
            let ended = |state: State| mine.iter().filter(move |s| s.state == state);
            let mean = |state: State| {
                let counts: Vec<usize> = ended(state).map(|s| s.messages).collect();
                (!counts.is_empty())
                    .then(|| counts.iter().sum::<usize>() as f64 / counts.len() as f64)
            };
            let mut latencies: Vec<i64> = ended(State::Complete)
                .filter_map(|s| s.latency_ms)
                .collect();
            latencies.sort_unstable();
            let complete = ended(State::Complete).count();
            let cancelled = ended(State::Cancelled).count();
            Figures {
                style: style.as_str(),
                sagas: mine.len(),
                complete,
                cancelled,
                open: mine.len() - complete - cancelled,
                messages_complete: mean(State::Complete),
                messages_cancelled: mean(State::Cancelled),
                latency_p50_ms: percentile(&latencies, 50),
                latency_p95_ms: percentile(&latencies, 95),
                traits: style.traits().to_vec(),
            }
        })
        .collect()
}

/// The `p`th percentile of sorted `values` (nearest rank).
fn percentile(values: &[i64], p: usize) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let rank = (p * values.len()).div_ceil(100).max(1);
    values.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saga(style: SagaStyle, state: State, messages: usize, latency: i64) -> Summary {
        Summary {
            transaction_id: format!("{}-{messages}-{latency}", style.as_str()),
            style: style.as_str(),
            state,
            reason: None,
            user_id: None,
            started_ms: Some(0),
            last_ms: Some(latency),
            latency_ms: Some(latency),
            messages,
        }
    }

    #[test]
    fn each_style_is_counted_apart() {
        use SagaStyle::{Choreography as C, Orchestration as O};
        let sagas = [
            saga(C, State::Complete, 3, 10),
            saga(C, State::Complete, 3, 30),
            saga(C, State::Cancelled, 4, 20),
            saga(O, State::Complete, 4, 40),
            saga(O, State::Cancelled, 6, 50),
            saga(O, State::InFlight, 1, 0),
        ];
        let [c, o] = <[Figures; 2]>::try_from(figures(&sagas)).expect("two styles");
        assert_eq!((c.sagas, c.complete, c.cancelled, c.open), (3, 2, 1, 0));
        assert_eq!(c.messages_complete, Some(3.0));
        assert_eq!(c.messages_cancelled, Some(4.0));
        assert_eq!((c.latency_p50_ms, c.latency_p95_ms), (Some(10), Some(30)));
        assert_eq!((o.sagas, o.complete, o.cancelled, o.open), (3, 1, 1, 1));
        assert_eq!(o.messages_complete, Some(4.0));
        assert_eq!(o.traits[0].0, "saga state lives in");
        assert_ne!(o.traits[0].1, c.traits[0].1);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let values: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50), Some(50));
        assert_eq!(percentile(&values, 95), Some(95));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }
}
