//! What a process's Kafka clients say when the broker goes away or is replaced.
//!
//! librdkafka reports an outage from every client (a service has five or six), once per
//! connection and per retry: a student who stopped `edm broker` for a minute saw 12–20
//! lines per 10 s in each terminal, and nothing saying when it was over. Here an outage is
//! one WARN when it begins and one INFO when the broker answers again; the clients go on
//! retrying by themselves meanwhile, as librdkafka does.
//!
//! A broker restarted without its data (`edm broker` without `--data-dir`, a new
//! container) is another cluster: topics, committed offsets and producer ids are gone.
//! librdkafka notices (its `CLUSTERID` log line) but carries on with state that no longer
//! exists: consumers kept empty assignments for minutes and the next producer died on a
//! sequence error. So a replaced cluster is said once, plainly, and ends the service with
//! status 1 and what to do ([`ClusterHealth::replaced`]): rejoining by itself would have to
//! rebuild every client and would hide from the student that the topics are gone.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tokio_util::sync::CancellationToken;

/// How often a broker that went away is tried again (to say when it is back).
const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// Errors librdkafka reports for a short while after the broker is back (connections
/// refused before it listened again) do not start a new outage.
const SETTLE: Duration = Duration::from_secs(2);

/// Shared by every client one [`super::Kafka`] makes (clones share it).
#[derive(Debug, Clone)]
pub struct ClusterHealth(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    servers: String,
    state: Mutex<State>,
    replaced: CancellationToken,
    replaced_how: OnceLock<String>,
}

#[derive(Debug, Default)]
struct State {
    /// When the current outage began, if one is going on.
    down_since: Option<Instant>,
    /// When the last outage ended.
    back_at: Option<Instant>,
}

impl ClusterHealth {
    /// The health of the cluster at `servers` (bootstrap servers, comma-separated).
    pub fn new(servers: &str) -> Self {
        Self(Arc::new(Inner {
            servers: servers.to_string(),
            state: Mutex::new(State::default()),
            replaced: CancellationToken::new(),
            replaced_how: OnceLock::new(),
        }))
    }

    /// Whether `error` means the broker cannot be reached (which is said once per outage).
    pub fn is_unreachable(error: &KafkaError) -> bool {
        matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::BrokerTransportFailure)
        )
    }

    /// An error a client reported (librdkafka's error callback).
    pub fn client_error(&self, error: &KafkaError, reason: &str, client: &str) {
        if Self::is_unreachable(error) {
            self.unreachable(reason);
        } else {
            tracing::error!(target: "librdkafka", client, "{error}: {reason}");
        }
    }

    /// A line librdkafka logged: a new cluster id is a replaced cluster; connection
    /// failures, and any warning while the broker is away (a group session that timed out
    /// for want of it, say), are the outage's, said once; the rest is logged as
    /// librdkafka's.
    pub fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let outage = self.in_outage();
        match facility {
            "CLUSTERID" => self.cluster_replaced(message),
            "FAIL" => tracing::debug!(target: "librdkafka", "{facility} {message}"),
            _ if outage && level as i32 <= RDKafkaLogLevel::Warning as i32 => {
                tracing::debug!(target: "librdkafka", "during the outage: {facility} {message}")
            }
            _ => match level {
                RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error => {
                    tracing::error!(target: "librdkafka", "{facility} {message}")
                }
                RDKafkaLogLevel::Warning => {
                    tracing::warn!(target: "librdkafka", "{facility} {message}")
                }
                RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                    tracing::info!(target: "librdkafka", "{facility} {message}")
                }
                RDKafkaLogLevel::Debug => {
                    tracing::debug!(target: "librdkafka", "{facility} {message}")
                }
            },
        }
    }

    /// The broker cannot be reached: a WARN if this begins an outage, and a probe that
    /// says when it is over.
    fn unreachable(&self, detail: &str) {
        let detail = without_thread(detail);
        let mut state = self.state();
        let settling = state.back_at.is_some_and(|at| at.elapsed() < SETTLE);
        if state.down_since.is_some() || settling {
            tracing::debug!(target: "librdkafka", "still unreachable: {detail}");
            return;
        }
        state.down_since = Some(Instant::now());
        drop(state);
        tracing::warn!(
            "Kafka at {} cannot be reached ({detail}); waiting for it, and retrying by itself \
             (one line will say when it is back)",
            self.0.servers
        );
        let health = self.clone();
        let probe = std::thread::Builder::new()
            .name("kafka probe".into())
            .spawn(move || health.wait_until_back());
        if let Err(error) = probe {
            tracing::debug!(%error, "no thread to watch for the broker's return");
        }
    }

    /// Tries the first bootstrap server until it accepts a connection, then says so.
    fn wait_until_back(&self) {
        let first = self.0.servers.split(',').next().unwrap_or_default().trim();
        loop {
            std::thread::sleep(PROBE_INTERVAL);
            if self.0.replaced.is_cancelled() {
                return;
            }
            let answers = first.to_socket_addrs().is_ok_and(|mut addresses| {
                addresses
                    .any(|address| TcpStream::connect_timeout(&address, PROBE_INTERVAL).is_ok())
            });
            if answers {
                let mut state = self.state();
                if let Some(since) = state.down_since.take() {
                    state.back_at = Some(Instant::now());
                    tracing::info!(
                        "Kafka at {} answers again, after {:.1} s without it",
                        self.0.servers,
                        since.elapsed().as_secs_f64()
                    );
                }
                return;
            }
        }
    }

    /// librdkafka met a cluster id other than the one it knew: said once, and
    /// [`Self::replaced`] ends.
    fn cluster_replaced(&self, detail: &str) {
        let detail = without_thread(detail);
        let how = format!(
            "the Kafka cluster at {} was replaced ({detail}). A broker that restarts without \
             its data (`edm broker` without --data-dir, a new container) is a new cluster: \
             its topics, committed offsets and producer ids are gone, and this service's \
             clients cannot go on with it. Run `edm create-topics`, then start this service \
             again",
            self.0.servers
        );
        // Said once, by the service that ends on it (its exit error), not here as well.
        if self.0.replaced_how.set(how).is_ok() {
            self.0.replaced.cancel();
        }
    }

    /// Waits until the cluster is replaced; what happened and what to do.
    pub async fn replaced(&self) -> String {
        self.0.replaced.cancelled().await;
        self.0.replaced_how.get().cloned().unwrap_or_default()
    }

    /// Whether an outage is going on (said already).
    pub fn in_outage(&self) -> bool {
        self.state().down_since.is_some()
    }

    /// What happened, if the cluster was replaced.
    pub fn replaced_already(&self) -> Option<String> {
        self.0.replaced_how.get().cloned()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// librdkafka's message without the thread it came from (`[thrd:main]: `).
fn without_thread(message: &str) -> &str {
    match message.strip_prefix("[thrd:") {
        Some(rest) => rest.split_once("]: ").map_or(message, |(_, text)| text),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::without_thread;

    #[test]
    fn librdkafka_messages_lose_their_thread_only() {
        assert_eq!(
            without_thread("[thrd:main]: Broker 1 reports"),
            "Broker 1 reports"
        );
        assert_eq!(without_thread("Connect failed"), "Connect failed");
        assert_eq!(without_thread("[thrd:x no end"), "[thrd:x no end");
    }
}
