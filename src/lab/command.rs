//! `edm lab` as a command: the demo, or a load run with `--orders N`; either way the exit
//! status says whether the books hold.

use super::LabArgs;

/// Runs the demo or the load run and fails if an invariant is broken.
pub async fn command(args: LabArgs) -> anyhow::Result<()> {
    let hold = match args.orders {
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
                let report = super::load::run_load(&args, orders, style).await?;
                print!("{}", report.render());
                hold &= report.books.hold();
            }
            hold
        }
        None => super::run_demo(&args).await?,
    };
    if !hold {
        anyhow::bail!("invariants broken (see above)");
    }
    Ok(())
}
