//! The web view of the sagas (`edm lab --ui`, `edm ui`): every saga, live, stuck ones
//! first; one saga as a sequence diagram of its messages, compensations marked, with the
//! steps it still has to take.
//!
//! - [`book`]: what is known of each saga (pure data).
//! - [`follow`]: reads the lab's topics into a book.
//! - `tail`: the newest messages of each topic (the Topics tab).
//! - `consumers`, `arrivals`: each saga step's group and its lag (the Consumers tab).
//! - `styles`: both saga styles side by side (the Both styles tab).
//! - `states`: what the order store holds of a saga (its status, the orchestrator's state
//!   changes and timers), drawn into its diagram.
//! - [`routes`]: the page, its JSON API and the live stream of changes.
//! - `command`: `edm ui`, the view of a running stack.
//!
//! The page, its script and its styles are compiled into the binary (no CDN, no build
//! step: it works on a laptop with no internet). Every value from a message is put on
//! the page as text, never as markup. Changes reach the page as server-sent events,
//! batched every [`TICK`] so that a load run does not flood it.

mod arrivals;
pub mod book;
mod command;
mod consumers;
mod follow;
mod routes;
mod states;
mod styles;
mod tail;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use book::{Book, State, Summary};
pub use command::{UiArgs, command};
pub use styles::Pair;

use crate::kafka::Kafka;
use crate::store::inventory::InventoryStore;
use crate::store::orders::OrderStore;

/// What one set of saga topics is read from: the topics' Kafka, and the stores the
/// services write those sagas' orders and stock to (those the view can read).
#[derive(Clone)]
pub struct Source {
    /// What the page calls it: the lab's style, or `stack` for `edm ui`.
    pub name: &'static str,
    pub kafka: Kafka,
    pub orders: Option<OrderStore>,
    pub stock: Option<InventoryStore>,
}

/// How often changes are sent to the pages.
pub const TICK: Duration = Duration::from_millis(250);

/// A saga in flight with no message for this long counts as stuck.
pub const STUCK_AFTER: Duration = Duration::from_secs(10);

/// A drill the page offers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DrillOffer {
    pub style: &'static str,
    pub name: &'static str,
    /// What should happen, in words.
    pub expected: &'static str,
}

/// What running labs offer the page besides their topics and stores: failure drills, and
/// orders placed in each style (`edm ui` has no lab: it never acts on a stack it did not
/// start).
pub trait Labs: Send + Sync + 'static {
    /// The drills the page offers.
    fn offered(&self) -> Vec<DrillOffer>;
    /// Runs drill `name` on the lab of `style`: its report, or why it could not run.
    fn run(
        &self,
        style: String,
        name: String,
    ) -> futures_util::future::BoxFuture<'static, Result<serde_json::Value, String>>;
    /// The same orders placed in each lab: the demo's, then those placed from the page.
    fn pairs(&self) -> Vec<Pair>;
    /// Places `order` in each lab; the pair, or why it could not be placed.
    fn place_in_each(
        &self,
        order: crate::tools::order_client::NewOrder,
    ) -> futures_util::future::BoxFuture<'static, Result<Pair, String>>;
}

/// What the pages are served from: one book per lab (a lab per saga style).
#[derive(Clone)]
pub struct View {
    books: Vec<Arc<Mutex<Book>>>,
    /// `sources[i]`: where `books[i]`'s sagas are read from.
    sources: Vec<Source>,
    labs: Option<Arc<dyn Labs>>,
    consumers: Arc<consumers::Consumers>,
    /// Each tick's changed sagas, as the JSON array the stream sends.
    updates: broadcast::Sender<Arc<str>>,
    /// Ends the live streams too (a page's stream would keep the server from stopping).
    shutdown: CancellationToken,
}

/// The web view's listener on `listen`, or an error that says what to do.
pub async fn bind(listen: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(listen).await.map_err(|error| {
        anyhow::anyhow!(
            "the web view cannot listen on {listen}: {error} (choose another with --listen)"
        )
    })
}

impl View {
    /// Serves the view of the sagas of `sources` on `listener` until `shutdown`, with
    /// what running `labs` offer, if any.
    pub async fn serve(
        sources: &[Source],
        labs: Option<Arc<dyn Labs>>,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let kafkas: Vec<Kafka> = sources.iter().map(|s| s.kafka.clone()).collect();
        let books: Vec<Arc<Mutex<Book>>> = kafkas
            .iter()
            .map(|kafka| {
                Arc::new(Mutex::new(Book::new(
                    kafka.topics.clone(),
                    STUCK_AFTER.as_millis() as i64,
                )))
            })
            .collect();
        let (updates, _) = broadcast::channel(64);
        let view = View {
            books,
            sources: sources.to_vec(),
            labs,
            consumers: Arc::new(consumers::Consumers::new(&kafkas)),
            updates,
            shutdown: shutdown.clone(),
        };
        let mut followers = tokio::task::JoinSet::new();
        for (kafka, book) in kafkas.iter().zip(&view.books) {
            followers.spawn(follow::follow(
                kafka.clone(),
                book.clone(),
                shutdown.clone(),
            ));
        }
        let ticker = tokio::spawn(view.clone().tick(shutdown.clone()));
        let served = crate::http::serve(listener, routes::router(view), shutdown.clone()).await;
        shutdown.cancel();
        let _ = ticker.await;
        while let Some(followed) = followers.join_next().await {
            followed.map_err(|e| anyhow::anyhow!("the web view's reader failed: {e}"))??;
        }
        served?;
        Ok(())
    }

    /// Every [`TICK`], sends the sagas changed since the last one to the pages.
    async fn tick(self, shutdown: CancellationToken) {
        let mut last = crate::kafka::now_ms();
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            let now = crate::kafka::now_ms();
            let changed: Vec<Summary> = self
                .books
                .iter()
                .flat_map(|book| lock(book).take_changed(now, last))
                .collect();
            last = now;
            if changed.is_empty() || self.updates.receiver_count() == 0 {
                continue;
            }
            if let Ok(json) = serde_json::to_string(&changed) {
                let _ = self.updates.send(json.into());
            }
        }
    }
}

fn lock(book: &Mutex<Book>) -> std::sync::MutexGuard<'_, Book> {
    book.lock().unwrap_or_else(|p| p.into_inner())
}
