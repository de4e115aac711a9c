//! The drills that stop or crash a service of the lab and start it again: what a student
//! does by hand in the walkthrough with Ctrl-C and `kill -9`.

use super::lab_io::{final_status, history, place, stored_status, wait_count};
use super::{Check, check};
use crate::event::Status;
use crate::lab::{DECLINED_USER, Lab};
use crate::orchestration::SagaStyle;
use crate::orchestration::saga::TIMEOUT;

/// Orders in flight when a service crashes.
const IN_FLIGHT: usize = 10;

/// Stops the payment consumer (as Ctrl-C does), places an order, starts it again.
pub(super) async fn stop_payment(
    lab: &Lab,
    style: SagaStyle,
    observed: &mut Vec<String>,
    checks: &mut Vec<Check>,
) -> anyhow::Result<()> {
    lab.services().halt("payment-consumer", false).await?;
    observed.push("stopped the payment consumer (as Ctrl-C does)".into());
    let tx = place(lab, "alice").await?;
    match style {
        SagaStyle::Choreography => {
            let waiting = wait_count(lab, &tx, "INVENTORY_RESERVED", 1).await?;
            let (status, _) = stored_status(lab, &tx, "alice").await?;
            let open = !Status::is_final(&status);
            let status = if status.is_empty() { "?" } else { &status };
            observed.push(format!(
                "order {tx}: INVENTORY_RESERVED {} in the payment topic; the order is {status}",
                if waiting { "waits" } else { "never reached" }
            ));
            checks.push(check(
                waiting && open,
                "the saga waited, its event unread, while the payment consumer was away",
            ));
            lab.services().start_again("payment-consumer")?;
            observed.push("started the payment consumer again".into());
            let (status, _) = final_status(lab, &tx, "alice").await?;
            observed.push(format!("order {tx} ended {status}"));
            checks.push(check(
                status == "ORDER_COMPLETE",
                "the saga completed once the payment consumer was back",
            ));
        }
        SagaStyle::Orchestration => {
            let (status, reason) = final_status(lab, &tx, "alice").await?;
            let history = history(lab, &tx).await?;
            observed.push(format!(
                "order {tx} ended {status} ({reason}) while the payment consumer was away; \
                 its stock history: {history:?}"
            ));
            checks.push(check(
                status == "ORDER_CANCEL" && reason == TIMEOUT,
                "TAKE_PAYMENT timed out and the orchestrator cancelled the saga",
            ));
            checks.push(check(
                !history.is_empty() && history.iter().sum::<i32>() == 0,
                "the stock was given back",
            ));
            lab.services().start_again("payment-consumer")?;
            observed.push("started the payment consumer again".into());
            let refunded = wait_count(lab, &tx, "PAYMENT_CANCELLED", 1).await?;
            observed.push(match refunded {
                true => {
                    "it read the late TAKE_PAYMENT and the CANCEL_PAYMENT: PAYMENT_CANCELLED".into()
                }
                false => "no PAYMENT_CANCELLED came back".into(),
            });
            checks.push(check(
                refunded,
                "the payment consumer, back, refunded the late payment",
            ));
        }
    }
    Ok(())
}

/// Places orders, crashes service `name` (as `kill -9`: nothing committed) while they
/// are in flight, starts it again; every order must end, none with its stock taken twice.
pub(super) async fn crash(
    lab: &Lab,
    name: &str,
    observed: &mut Vec<String>,
    checks: &mut Vec<Check>,
) -> anyhow::Result<()> {
    let orders = (0..IN_FLIGHT).map(|n| {
        let user = if n % 3 == 0 { DECLINED_USER } else { "alice" };
        async move { place(lab, user).await.map(|tx| (tx, user)) }
    });
    let placed: Vec<(String, &str)> = futures_util::future::try_join_all(orders).await?;
    lab.services().halt(name, true).await?;
    let mut open = 0;
    for (tx, user) in &placed {
        if !Status::is_final(&stored_status(lab, tx, user).await?.0) {
            open += 1;
        }
    }
    observed.push(format!(
        "crashed the {name} (as kill -9) with {open} of {IN_FLIGHT} orders not final"
    ));
    lab.services().start_again(name)?;
    observed.push(format!("started the {name} again"));
    let mut taken_twice = Vec::new();
    let mut timed_out = Vec::new();
    let mut ended = 0;
    for (tx, user) in &placed {
        let (_, reason) = final_status(lab, tx, user).await?;
        if reason == TIMEOUT {
            timed_out.push(tx.clone());
        }
        ended += 1;
        if history(lab, tx).await?.iter().filter(|q| **q < 0).count() > 1 {
            taken_twice.push(tx.clone());
        }
    }
    observed.push(format!("{ended} of {IN_FLIGHT} orders ended"));
    checks.push(check(ended == IN_FLIGHT, "every order ended"));
    checks.push(check(
        taken_twice.is_empty(),
        &format!("no order had its stock taken twice {taken_twice:?}"),
    ));
    if name == "orchestrator" {
        checks.push(check(
            timed_out.is_empty(),
            &format!("no saga timed out for want of a reader {timed_out:?}"),
        ));
    }
    Ok(())
}
