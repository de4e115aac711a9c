//! Failure drills on a running lab (`edm lab --drill NAME`, and the web view's buttons):
//! each does one thing that goes wrong in real systems, says what should happen, shows
//! what did — judged on what the topics and the stores hold — and ends with the invariant
//! checks. Drills act only on the lab's own topics and services.

use std::time::Duration;

use serde::Serialize;

use super::{DECLINED_USER, Lab, invariants};
use crate::kafka::{Record, Topics};
use crate::orchestration::SagaStyle;

mod lab_io;
mod offer;
mod restarts;
use lab_io::{final_status, first_message, history, place, wait_count, wait_for};
pub use offer::RunningLabs;

/// The drills there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Drill {
    /// An order whose payment the gateway declines: compensation, in reverse order.
    DeclinePayment,
    /// Bytes that are no saga message, on the first step's topic: dead-lettered, and the
    /// consumer goes on.
    PoisonMessage,
    /// A finished saga's first message, published again: answered as before, nothing
    /// doubled.
    DuplicateEvent,
    /// The payment participant stopped, an order placed, the participant started again.
    StopPayment,
    /// The inventory consumer crashed (`kill -9`) with orders in flight, then restarted.
    CrashInventory,
    /// The orchestrator crashed with orders in flight, then restarted (orchestration).
    CrashOrchestrator,
}

impl Drill {
    /// Every drill, in the page's order.
    pub const ALL: [Drill; 6] = [
        Drill::DeclinePayment,
        Drill::PoisonMessage,
        Drill::DuplicateEvent,
        Drill::StopPayment,
        Drill::CrashInventory,
        Drill::CrashOrchestrator,
    ];

    /// The drills that apply to sagas in `style`.
    pub fn for_style(style: SagaStyle) -> Vec<Drill> {
        Self::ALL
            .into_iter()
            .filter(|d| *d != Drill::CrashOrchestrator || style == SagaStyle::Orchestration)
            .collect()
    }

    /// Its name on the command line and in the page.
    pub fn name(self) -> &'static str {
        match self {
            Drill::DeclinePayment => "decline-payment",
            Drill::PoisonMessage => "poison-message",
            Drill::DuplicateEvent => "duplicate-event",
            Drill::StopPayment => "stop-payment",
            Drill::CrashInventory => "crash-inventory",
            Drill::CrashOrchestrator => "crash-orchestrator",
        }
    }

    /// The drill named `name`.
    pub fn named(name: &str) -> Option<Drill> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// What should happen to sagas in `style`, in words.
    pub fn expected(self, style: SagaStyle) -> &'static str {
        match (self, style) {
            (Drill::StopPayment, SagaStyle::Choreography) => {
                "the saga waits, its event unread in the payment topic, and completes once \
                 the payment consumer is back"
            }
            (Drill::StopPayment, SagaStyle::Orchestration) => {
                "TAKE_PAYMENT times out, the orchestrator compensates (the stock given back, \
                 the order cancelled for TIMEOUT), and the payment consumer, back, refunds \
                 the late payment"
            }
            (drill, _) => drill.outcome(),
        }
    }

    /// What should happen, whatever the style.
    fn outcome(self) -> &'static str {
        match self {
            Drill::StopPayment => "the saga waits for the payment consumer, or times out",
            Drill::CrashInventory => {
                "the batch in hand is not committed: the restarted consumer gets it again and \
                 answers it as before; every order ends, no stock is taken twice"
            }
            Drill::CrashOrchestrator => {
                "the replies wait in their topic; the restarted orchestrator reads them and \
                 every saga ends where its replies take it, none timed out for want of a reader"
            }
            Drill::DeclinePayment => {
                "the gateway declines the payment; the stock reserved for the order is given \
                 back (compensation, in reverse order); the order ends ORDER_CANCEL with \
                 PAYMENT_DECLINED"
            }
            Drill::PoisonMessage => {
                "the message is copied to the dead-letter topic with the error, its offset is \
                 committed, and the consumer goes on: the next order completes"
            }
            Drill::DuplicateEvent => {
                "the consumer recognises the saga's step as done and answers as it did the \
                 first time; the stock is taken once, not twice"
            }
        }
    }
}

/// One check of a drill: whether it held, and what it says.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub ok: bool,
    pub text: String,
}

/// What a drill did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub drill: &'static str,
    pub style: &'static str,
    pub expected: &'static str,
    pub observed: Vec<String>,
    pub checks: Vec<Check>,
    pub passed: bool,
}

impl Report {
    /// The report as the terminal shows it.
    pub fn render(&self) -> String {
        let mut out = format!("Drill {} ({})\n", self.drill, self.style);
        out.push_str(&format!("  expected: {}\n", self.expected));
        for line in &self.observed {
            out.push_str(&format!("  observed: {line}\n"));
        }
        for check in &self.checks {
            let mark = if check.ok { "✓" } else { "✗" };
            out.push_str(&format!("  {mark} {}\n", check.text));
        }
        out
    }
}

/// How long a drill waits for a saga to end or a message to show.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// Runs `drill` on `lab` (its sagas in `style`).
pub async fn run(lab: &Lab, style: SagaStyle, drill: Drill) -> anyhow::Result<Report> {
    let mut observed = Vec::new();
    let mut checks = Vec::new();
    match drill {
        Drill::DeclinePayment => {
            let tx = place(lab, DECLINED_USER).await?;
            let (status, reason) = final_status(lab, &tx, DECLINED_USER).await?;
            let history = history(lab, &tx).await?;
            observed.push(format!("order {tx} ended {status} ({reason})"));
            observed.push(format!("its stock history: {history:?}"));
            checks.push(check(
                status == "ORDER_CANCEL" && reason == "PAYMENT_DECLINED",
                "the order was cancelled for the declined payment",
            ));
            checks.push(check(
                history.len() == 2 && history.iter().sum::<i32>() == 0,
                "the stock taken was given back, once",
            ));
        }
        Drill::PoisonMessage => {
            let key = format!("drill-poison-{}", uuid::Uuid::new_v4().simple());
            let topic = first_topic(lab, style);
            lab.kafka
                .producer()?
                .send_raw(&topic, Some(&key), b"this is not a saga message", &[])
                .await?;
            observed.push(format!(
                "sent `this is not a saga message` to {topic}, key {key}"
            ));
            let dead = Topics::dead_letter(&topic);
            let dead_lettered = wait_for(lab, &key, |e| e.topic == dead).await?;
            observed.push(match dead_lettered {
                true => format!("it was copied to {dead}"),
                false => format!("nothing reached {dead} within {WAIT:?}"),
            });
            checks.push(check(dead_lettered, "the poison message was dead-lettered"));
            let tx = place(lab, "alice").await?;
            let (status, _) = final_status(lab, &tx, "alice").await?;
            observed.push(format!("the next order {tx} ended {status}"));
            checks.push(check(
                status == "ORDER_COMPLETE",
                "the consumer went on: the next order completed",
            ));
        }
        Drill::StopPayment => {
            restarts::stop_payment(lab, style, &mut observed, &mut checks).await?
        }
        Drill::CrashInventory => {
            restarts::crash(lab, "inventory-consumer", &mut observed, &mut checks).await?
        }
        Drill::CrashOrchestrator => {
            restarts::crash(lab, "orchestrator", &mut observed, &mut checks).await?
        }
        Drill::DuplicateEvent => {
            let tx = place(lab, "alice").await?;
            let (status, _) = final_status(lab, &tx, "alice").await?;
            let topic = first_topic(lab, style);
            let (key, payload) = first_message(lab, &topic, &tx).await?;
            lab.kafka
                .producer()?
                .send_record(&Record {
                    topic: topic.clone(),
                    key,
                    payload,
                    headers: Vec::new(),
                })
                .await?;
            observed.push(format!(
                "order {tx} ended {status}; its first message sent again to {topic}"
            ));
            // The inventory's answer, given a second time, shows the duplicate was read.
            let answer = match style {
                SagaStyle::Choreography => "INVENTORY_RESERVED",
                SagaStyle::Orchestration => "STOCK_RESERVED",
            };
            let answered = wait_count(lab, &tx, answer, 2).await?;
            observed.push(match answered {
                true => format!("the inventory answered {answer} again"),
                false => format!("no second {answer} within {WAIT:?}"),
            });
            let history = history(lab, &tx).await?;
            observed.push(format!("its stock history: {history:?}"));
            checks.push(check(
                answered,
                "the duplicate was read and answered as before",
            ));
            checks.push(check(
                history.len() == 1,
                "the stock was taken once, not twice",
            ));
        }
    }
    let books = invariants::check(&lab.stock, &lab.orders, &lab.initial_stock).await?;
    checks.push(check(
        books.hold(),
        &format!(
            "the lab's invariants: every order final, stock consistent with its history ({} violation(s))",
            books.violations.len()
        ),
    ));
    Ok(Report {
        drill: drill.name(),
        style: style.as_str(),
        expected: drill.expected(style),
        passed: checks.iter().all(|c| c.ok),
        observed,
        checks,
    })
}

pub(crate) fn check(ok: bool, text: &str) -> Check {
    Check {
        ok,
        text: text.to_string(),
    }
}

/// The topic of a saga's first step in `style`.
fn first_topic(lab: &Lab, style: SagaStyle) -> String {
    match style {
        SagaStyle::Choreography => lab.kafka.topics.inventory.clone(),
        SagaStyle::Orchestration => lab.kafka.topics.inventory_commands.clone(),
    }
}
