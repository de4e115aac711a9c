//! The lab's load mode, the project's end-to-end benchmark: N orders through the HTTP API
//! with C in flight, a share of them declined, then throughput, saga latency percentiles
//! and the invariant checks.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressState, ProgressStyle};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::{Lab, LabArgs, invariants};
use crate::event::Status;
use crate::orchestration::SagaStyle;
use crate::services::payment_consumer::Gateway;
use crate::tools::order_client::NewOrder;
pub use report::{LoadReport, process_cpu};

/// Runs the load mode with `orders` orders started in `style`; the report says whether the
/// books hold. On `interrupt` it places no more orders, waits for the sagas already
/// placed, and reports on those.
pub async fn run_load(
    args: &LabArgs,
    orders: usize,
    style: SagaStyle,
    interrupt: &CancellationToken,
) -> anyhow::Result<LoadReport> {
    let mut lab = Lab::start(args, Gateway::DeclineRate(args.decline_rate), style).await?;
    let watched = match args.ui {
        true => match Watched::start(&lab, style, args.listen).await {
            Ok(watched) => Some(watched),
            Err(error) => {
                lab.stop().await?;
                return Err(error);
            }
        },
        false => None,
    };
    let measured = drive(
        &mut lab,
        orders,
        args.concurrency.max(1),
        args.rate,
        interrupt,
    )
    .await;
    if let Ok(report) = &measured {
        print!("{}", report.render());
    }
    // A failed run ends at once: its view would show a lab with services stopped.
    let viewed = match watched {
        Some(watched) if measured.is_ok() => watched.until(interrupt).await,
        Some(watched) => {
            let now = CancellationToken::new();
            now.cancel();
            watched.until(&now).await
        }
        None => Ok(()),
    };
    let stopped = lab.stop().await;
    let report = measured?;
    viewed?;
    stopped?;
    Ok(report)
}

/// The web view of a load run's lab (`--orders N --ui`): it follows the load, and stays
/// after the report until Ctrl-C.
struct Watched {
    stop: CancellationToken,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Watched {
    async fn start(
        lab: &Lab,
        style: SagaStyle,
        listen: std::net::SocketAddr,
    ) -> anyhow::Result<Self> {
        let listener = crate::view::bind(listen).await?;
        println!("web view of the sagas: http://{}/", listener.local_addr()?);
        let sources = [crate::view::Source {
            name: style.as_str(),
            kafka: lab.kafka.clone(),
            orders: Some(lab.orders.clone()),
            stock: Some(lab.stock.clone()),
        }];
        let stop = CancellationToken::new();
        let serving = stop.clone();
        let served = tokio::spawn(async move {
            crate::view::View::serve(&sources, None, listener, serving).await
        });
        Ok(Self { stop, served })
    }

    /// Serves until `interrupt` (at once if the run was already interrupted).
    async fn until(mut self, interrupt: &CancellationToken) -> anyhow::Result<()> {
        if !interrupt.is_cancelled() {
            println!("the web view stays; Ctrl-C ends the lab");
        }
        let served = tokio::select! {
            _ = interrupt.cancelled() => {
                self.stop.cancel();
                (&mut self.served).await
            }
            served = &mut self.served => served,
        };
        served.map_err(|e| anyhow::anyhow!("the web view failed: {e}"))?
    }
}

/// Places one order and waits until its saga is final, so that the measured run starts
/// with every client warm: a consumer's first fetches after it joins its group take about
/// 100 ms (the services already waited for their producer ids when they started).
async fn warm_up(lab: &mut Lab) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let tx = lab
        .client
        .place(&load_order("load-warm-up".into(), 1, 1))
        .await?
        .transaction_id;
    lab.wait_final(&[tx]).await?;
    Ok(started.elapsed())
}

/// A load order of `user_id` for `quantity` of item `item`.
fn load_order(user_id: String, item: i64, quantity: i64) -> NewOrder {
    NewOrder {
        user_id,
        name: "Hong Gil Dong".into(),
        addr: "29, Hansil-ro, Jung-gu, Seoul".into(),
        tel: "01012341234".into(),
        email: "hong@gil.com".into(),
        item,
        quantity,
    }
}

fn bar(progress: &MultiProgress, len: usize, label: &str) -> ProgressBar {
    let bar = progress.add(ProgressBar::new(len as u64));
    // A rate in whole units: indicatif's `{per_sec}` prints "1,784.7593/s".
    let style = ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} {rate}")
        .map(|style| {
            style.with_key(
                "rate",
                |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                    let _ = write!(out, "{:.0}/s", state.per_sec());
                },
            )
        })
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(label.to_string());
    bar
}

/// Leaves `bar` on what it counted, out of `of` (`finish` would fill it to its length:
/// "cancelled 2000/2000" over 426 cancels, "placed 20000/20000" after a Ctrl-C at 600).
fn end_bar(bar: &ProgressBar, of: usize) {
    bar.set_length(of as u64);
    bar.abandon();
}

/// What the order placers share: the next order's number, when each placed order was
/// sent, how many were refused.
#[derive(Clone, Default)]
struct Placing {
    next: Arc<AtomicUsize>,
    placed_at: Arc<Mutex<HashMap<String, Instant>>>,
    refused: Arc<AtomicUsize>,
}

/// How the sagas ended, as the order consumer reported them.
struct Finishing {
    /// When each saga finished (its first report), and how.
    finished_at: HashMap<String, (Instant, Status)>,
    /// When the last one did.
    last: Instant,
    /// Whether Ctrl-C stopped the placing.
    interrupted: bool,
}

/// Places `orders` orders, `concurrency` at a time (or offered at `rate` a second), until
/// all are placed or `interrupt`; then waits for every placed saga to finish.
async fn drive(
    lab: &mut Lab,
    orders: usize,
    concurrency: usize,
    rate: Option<f64>,
    interrupt: &CancellationToken,
) -> anyhow::Result<LoadReport> {
    // The lab's own database: enough stock that declines, not shortages, drive the cancels.
    lab.stock
        .set_all_stock((orders as i64 * 3).max(100))
        .await?;
    let initial = lab.stock_by_item().await?;
    let warm_up = warm_up(lab).await?;

    let progress = MultiProgress::new();
    let placed_bar = bar(&progress, orders, "placed");
    let placing = Placing::default();
    let started = Instant::now();
    let cpu_at_start = process_cpu();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let placer = place_orders(
                lab.client.clone(),
                placing.clone(),
                Pace {
                    orders,
                    rate,
                    started,
                },
                placed_bar.clone(),
                interrupt.clone(),
            );
            tokio::spawn(placer)
        })
        .collect();
    let finishing = follow(
        lab, &placing, &workers, &progress, orders, interrupt, started,
    )
    .await?;
    let cpu = process_cpu().saturating_sub(cpu_at_start);
    for worker in workers {
        worker.await?;
    }
    end_bar(&placed_bar, orders);
    let Finishing {
        finished_at,
        last,
        interrupted,
    } = finishing;
    let Placing {
        placed_at, refused, ..
    } = placing;
    let placed_at = placed_at.lock().await;
    let mut latencies: Vec<Duration> = finished_at
        .iter()
        .filter_map(|(tx, (done, _))| {
            placed_at
                .get(tx)
                .map(|sent| done.saturating_duration_since(*sent))
        })
        .collect();
    latencies.sort();
    let completed = finished_at
        .values()
        .filter(|(_, s)| *s == Status::OrderComplete)
        .count();
    let books = invariants::check(&lab.stock, &lab.orders, &initial).await?;
    Ok(LoadReport {
        warm_up,
        interrupted,
        placed: placed_at.len(),
        refused: refused.load(Ordering::Relaxed),
        completed,
        cancelled: finished_at.len() - completed,
        elapsed: last.duration_since(started),
        latencies,
        cpu,
        books,
    })
}

/// When the orders are placed: `orders` in all, as fast as the placers go, or order n at
/// `started` + n / `rate`.
#[derive(Clone, Copy)]
struct Pace {
    orders: usize,
    rate: Option<f64>,
    started: Instant,
}

/// One placer: takes the next order's number and places it, until all are placed or
/// `interrupt`.
async fn place_orders(
    client: crate::tools::order_client::OrderClient,
    placing: Placing,
    pace: Pace,
    placed_bar: ProgressBar,
    interrupt: CancellationToken,
) {
    loop {
        let n = placing.next.fetch_add(1, Ordering::Relaxed);
        if n >= pace.orders || interrupt.is_cancelled() {
            return;
        }
        let order = load_order(format!("load-{n}"), 1 + (n % 5) as i64, 1 + (n % 3) as i64);
        // Open loop: order n is due at n / rate; its latency counts from then.
        let sent = match pace.rate {
            Some(rate) => {
                let due = pace.started + Duration::from_secs_f64(n as f64 / rate);
                tokio::select! {
                    _ = tokio::time::sleep_until(due.into()) => {}
                    _ = interrupt.cancelled() => return,
                }
                due
            }
            None => Instant::now(),
        };
        match client.place(&order).await {
            Ok(placed) => {
                placing
                    .placed_at
                    .lock()
                    .await
                    .insert(placed.transaction_id, sent);
                placed_bar.inc(1);
            }
            Err(error) => {
                tracing::warn!(%error, "order refused");
                placing.refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Follows the sagas' ends until every placed order is final (or none finishes for 60 s),
/// showing them on two bars; the first Ctrl-C only stops the placing.
async fn follow(
    lab: &mut Lab,
    placing: &Placing,
    workers: &[tokio::task::JoinHandle<()>],
    progress: &MultiProgress,
    orders: usize,
    interrupt: &CancellationToken,
    started: Instant,
) -> anyhow::Result<Finishing> {
    let completed_bar = bar(progress, orders, "completed");
    let cancelled_bar = bar(progress, orders, "cancelled");
    let mut finishing = Finishing {
        finished_at: HashMap::new(),
        last: started,
        interrupted: false,
    };
    loop {
        let all_placed = workers.iter().all(|w| w.is_finished());
        let expected = placing.placed_at.lock().await.len();
        if all_placed && finishing.finished_at.len() >= expected {
            break;
        }
        lab.check_services()?;
        let finished = tokio::select! {
            finished = tokio::time::timeout(Duration::from_secs(60), lab.finished.recv()) => finished,
            _ = interrupt.cancelled(), if !finishing.interrupted => {
                finishing.interrupted = true;
                progress.println("interrupted: no more orders; waiting for the sagas in flight (Ctrl-C again to quit at once)")?;
                continue;
            }
        };
        match finished {
            Ok(Some(done)) => {
                // A saga may be reported twice (redelivered final event): count it once,
                // at its first report.
                if let std::collections::hash_map::Entry::Vacant(entry) =
                    finishing.finished_at.entry(done.transaction_id)
                {
                    finishing.last = Instant::now();
                    entry.insert((finishing.last, done.status));
                    match done.status {
                        Status::OrderComplete => completed_bar.inc(1),
                        _ => cancelled_bar.inc(1),
                    }
                }
            }
            Ok(None) => anyhow::bail!("the order consumer stopped"),
            Err(_) if finishing.finished_at.len() < expected => anyhow::bail!(
                "no saga finished for 60 s ({} of {expected} done)",
                finishing.finished_at.len()
            ),
            Err(_) => {}
        }
    }
    // The placing stops on Ctrl-C too, and the sagas in flight may all end before the
    // select above ever takes its interrupt branch: the token, not the branch, says whether
    // the run was interrupted (seen once: a Ctrl-C'd run reported as whole).
    finishing.interrupted |= interrupt.is_cancelled();
    let placed = placing.placed_at.lock().await.len();
    end_bar(&completed_bar, placed);
    end_bar(&cancelled_bar, placed);
    Ok(finishing)
}

mod report;
#[cfg(test)]
mod tests;
