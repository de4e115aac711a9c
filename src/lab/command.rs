//! `edm lab` as a command: the demo, or a load run with `--orders N`; either way the exit
//! status says whether the books hold. Ctrl-C (or SIGTERM) stops it cleanly: no new orders,
//! the sagas in flight finish, the services stop and the run's stores are removed; a second
//! Ctrl-C exits at once.

use super::LabArgs;
use crate::shutdown;

/// Runs the demo or the load run and fails if an invariant is broken.
pub async fn command(args: LabArgs) -> anyhow::Result<()> {
    let interrupt = shutdown::on_signal();
    let hold = match args.orders {
        Some(_) if args.ui && args.saga.styles().len() > 1 => anyhow::bail!(
            "--ui with --orders follows one style's load: choose --saga choreography or \
             --saga orchestration (the demo, without --orders, shows both side by side)"
        ),
        Some(orders) => {
            let pace = match args.rate {
                Some(rate) => format!("offered at {rate} orders/s"),
                None => "as fast as they are accepted".to_string(),
            };
            let mut hold = true;
            for style in args.saga.styles() {
                println!(
                    "edm lab load ({}): {orders} orders {pace}, at most {} being placed at \
                     once, decline rate {:.2}",
                    style.as_str(),
                    args.concurrency,
                    args.decline_rate
                );
                let report = super::load::run_load(&args, orders, style, &interrupt).await?;
                hold &= report.books.hold();
                if interrupt.is_cancelled() {
                    break;
                }
            }
            hold
        }
        None => super::run_demo(&args, &interrupt).await?,
    };
    // With --ui, Ctrl-C is how the run ends.
    if interrupt.is_cancelled() && !args.ui {
        anyhow::bail!("interrupted (Ctrl-C); the run's stores are removed");
    }
    if !hold {
        anyhow::bail!("invariants broken or a drill failed (see above)");
    }
    Ok(())
}
