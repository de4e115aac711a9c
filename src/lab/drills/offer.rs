//! What running labs offer the web view (`edm lab --ui`): their drills, and orders placed
//! in each style.

use std::sync::{Arc, Mutex};

use super::{Drill, Lab, run};
use crate::orchestration::SagaStyle;
use crate::tools::order_client::NewOrder;
use crate::view::Pair;

/// Running labs as the web view sees them; their drills run one at a time (each ends with
/// the lab's invariant checks, which another drill in flight would blur).
pub struct RunningLabs {
    labs: Vec<(Arc<Lab>, SagaStyle)>,
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
    /// The same orders placed in each lab, oldest first (at most [`PAIRS`]).
    pairs: Arc<Mutex<Vec<Pair>>>,
}

impl RunningLabs {
    /// The drills of `labs`, and the `pairs` of orders their demos placed.
    pub fn new(labs: Vec<(Arc<Lab>, SagaStyle)>, pairs: Vec<Pair>) -> Self {
        Self {
            labs,
            one_at_a_time: Arc::default(),
            pairs: Arc::new(Mutex::new(pairs)),
        }
    }
}

/// Pairs of orders kept for the page (the oldest placed from the page go first).
const PAIRS: usize = 50;

impl crate::view::Labs for RunningLabs {
    fn offered(&self) -> Vec<crate::view::DrillOffer> {
        self.labs
            .iter()
            .flat_map(|(_, style)| {
                Drill::for_style(*style)
                    .into_iter()
                    .map(|drill| crate::view::DrillOffer {
                        style: style.as_str(),
                        name: drill.name(),
                        expected: drill.expected(*style),
                    })
            })
            .collect()
    }

    fn run(
        &self,
        style: String,
        name: String,
    ) -> futures_util::future::BoxFuture<'static, Result<serde_json::Value, String>> {
        let lab = self
            .labs
            .iter()
            .find(|(_, s)| s.as_str() == style)
            .map(|(lab, s)| (lab.clone(), *s));
        let one_at_a_time = self.one_at_a_time.clone();
        Box::pin(async move {
            let (lab, style) = lab.ok_or(format!("no {style} lab"))?;
            let drill = Drill::named(&name).ok_or(format!("no drill {name}"))?;
            let _turn = one_at_a_time.lock().await;
            let report = run(&lab, style, drill)
                .await
                .map_err(|error| format!("{error:#}"))?;
            serde_json::to_value(report).map_err(|error| error.to_string())
        })
    }

    fn pairs(&self) -> Vec<Pair> {
        self.pairs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn place_in_each(
        &self,
        order: NewOrder,
    ) -> futures_util::future::BoxFuture<'static, Result<Pair, String>> {
        let labs = self.labs.clone();
        let pairs = self.pairs.clone();
        let one_at_a_time = self.one_at_a_time.clone();
        Box::pin(async move {
            // Not while a drill runs: its checks count the lab's orders.
            let _turn = one_at_a_time.lock().await;
            let mut pair = Pair {
                story: format!(
                    "{} orders {} × item {}",
                    order.user_id, order.quantity, order.item
                ),
                transactions: Vec::new(),
            };
            let mut refused = None;
            for (lab, style) in labs {
                match lab.client.place(&order).await {
                    Ok(placed) => pair
                        .transactions
                        .push((style.as_str(), placed.transaction_id)),
                    Err(error) => {
                        refused = Some(format!("{}: {error}", style.as_str()));
                        break;
                    }
                }
            }
            // An order placed in one style is shown even when the next style refused it.
            if !pair.transactions.is_empty() {
                let mut kept = pairs.lock().unwrap_or_else(|p| p.into_inner());
                kept.push(pair.clone());
                if kept.len() > PAIRS {
                    kept.remove(0);
                }
            }
            match refused {
                None => Ok(pair),
                Some(why) if pair.transactions.is_empty() => Err(why),
                Some(why) => Err(format!(
                    "placed in {} only; {why}",
                    pair.transactions
                        .iter()
                        .map(|(style, tx)| format!("{style} ({tx})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        })
    }
}
