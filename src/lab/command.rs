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
            println!(
                "edm lab load: {orders} orders {pace}, at most {} being placed at once, \
                 decline rate {:.2}",
                args.concurrency, args.decline_rate
            );
            let report = super::load::run_load(&args, orders).await?;
            print!("{}", report.render());
            report.books.hold()
        }
        None => super::run_demo(&args).await?,
    };
    if !hold {
        anyhow::bail!("invariants broken (see above)");
    }
    Ok(())
}
