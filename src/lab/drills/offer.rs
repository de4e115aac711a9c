//! What running labs offer the web view (`edm lab --ui`): their drills and their stock.

use std::sync::Arc;

use super::{Drill, Lab, run};
use crate::orchestration::SagaStyle;

/// Running labs as the web view sees them; their drills run one at a time (each ends with
/// the lab's invariant checks, which another drill in flight would blur).
pub struct RunningLabs {
    labs: Vec<(Arc<Lab>, SagaStyle)>,
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
}

impl RunningLabs {
    /// The drills of `labs`.
    pub fn new(labs: Vec<(Arc<Lab>, SagaStyle)>) -> Self {
        Self {
            labs,
            one_at_a_time: Arc::default(),
        }
    }
}

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

    fn stock(&self) -> futures_util::future::BoxFuture<'static, Result<serde_json::Value, String>> {
        let labs = self.labs.clone();
        Box::pin(async move {
            let mut answer = Vec::new();
            for (lab, style) in labs {
                let items = lab.stock.items().await.map_err(|e| e.to_string())?;
                let mut history = lab.stock.history().await.map_err(|e| e.to_string())?;
                history.reverse();
                history.truncate(STOCK_CHANGES);
                answer.push(serde_json::json!({
                    "style": style.as_str(),
                    "items": items,
                    "history": history,
                }));
            }
            Ok(serde_json::Value::Array(answer))
        })
    }
}

/// Newest stock changes shown per lab.
const STOCK_CHANGES: usize = 500;
