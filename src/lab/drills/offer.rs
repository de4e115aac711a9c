//! The drills of running labs as the web view offers them (`edm lab --ui`).

use std::sync::Arc;

use super::{Drill, Lab, run};
use crate::orchestration::SagaStyle;

/// The drills of running labs, as the web view offers them (one at a time: each ends with
/// the lab's invariant checks, which another drill in flight would blur).
pub struct LabDrills {
    labs: Vec<(Arc<Lab>, SagaStyle)>,
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
}

impl LabDrills {
    /// The drills of `labs`.
    pub fn new(labs: Vec<(Arc<Lab>, SagaStyle)>) -> Self {
        Self {
            labs,
            one_at_a_time: Arc::default(),
        }
    }
}

impl crate::view::Drills for LabDrills {
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
}
