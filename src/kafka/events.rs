//! Where a producer's events (delivery reports, statistics, errors) are served: a thread
//! of its own that sleeps until librdkafka has something for it.
//!
//! Why not rust-rdkafka's `FutureProducer`: its polling thread polls in rounds of 100 ms,
//! and each round ends spinning — the last fraction of a millisecond of the round's
//! deadline becomes a 0 ms poll, called again and again until the deadline passes
//! (rdkafka 0.39, `BaseProducer::poll` with `Deadline::remaining` truncated to whole
//! milliseconds). Measured: 166 ms of CPU in 20 s of an idle `edm payment-consumer` on
//! that thread (0.8 % of a core per producer, most of an idle service's cost). Here
//! librdkafka writes a byte to a socket when its queue goes from empty to not empty
//! (`rd_kafka_queue_io_event_enable`), and the thread then serves every event queued.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::bindings as rdsys;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext};
use tokio::sync::{oneshot, watch};

use super::health::ClusterHealth;

/// What a delivery report tells its sender.
pub type Delivered = Result<(), KafkaError>;

/// Producer callbacks: completes each record's delivery channel, and tells when the
/// idempotent producer has its producer id, from librdkafka's statistics
/// (`statistics.interval.ms`), so that a service can wait for it before it takes work.
/// Until then every record waits: librdkafka first asks for the id 500 ms after the
/// producer is created (a timer of its own, whatever the broker), so a fresh producer's
/// first record waits up to half a second. That matters where the first saga's latency is
/// on show — the lab on edm's own broker — and is why only there producers pay for
/// statistics.
pub struct EventContext {
    ready: watch::Sender<bool>,
    health: ClusterHealth,
}

impl EventContext {
    /// A context, and the receiver that learns when the producer is ready.
    pub fn new(health: ClusterHealth) -> (Self, watch::Receiver<bool>) {
        let (ready, receiver) = watch::channel(false);
        (Self { ready, health }, receiver)
    }
}

/// The key of the idempotent producer's state in librdkafka's statistics.
const IDEMP_STATE: &[u8] = b"\"idemp_state\"";

impl ClientContext for EventContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.health.client_error(&error, reason, "producer");
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.health.log(level, facility, message);
    }

    fn stats_raw(&self, statistics: &[u8]) {
        if *self.ready.borrow() {
            return;
        }
        let assigned = statistics
            .windows(IDEMP_STATE.len())
            .position(|w| w == IDEMP_STATE)
            .and_then(|at| statistics.get(at..(at + IDEMP_STATE.len() + 16)))
            .is_some_and(|around| around.windows(8).any(|w| w == b"Assigned"));
        if assigned {
            self.ready.send_replace(true);
        }
    }
}

impl ProducerContext for EventContext {
    type DeliveryOpaque = Box<oneshot::Sender<Delivered>>;

    fn delivery(&self, result: &DeliveryResult<'_>, delivered: Self::DeliveryOpaque) {
        let _ = delivered.send(
            result
                .as_ref()
                .map(|_| ())
                .map_err(|(error, _)| error.clone()),
        );
    }
}

/// librdkafka's main queue of one producer (a handle of our own, released on drop).
struct MainQueue(*mut rdsys::rd_kafka_queue_t);

// librdkafka's queues are thread-safe; the handle is only a counted reference.
unsafe impl Send for MainQueue {}
unsafe impl Sync for MainQueue {}

impl MainQueue {
    fn len(&self) -> usize {
        // SAFETY: the handle is valid until `drop`, which runs after the serving thread ended.
        unsafe { rdsys::rd_kafka_queue_length(self.0) }
    }
}

impl Drop for MainQueue {
    fn drop(&mut self) {
        // SAFETY: no event goes to the socket any more, and the handle is released once.
        unsafe {
            rdsys::rd_kafka_queue_io_event_enable(self.0, -1, std::ptr::null(), 0);
            rdsys::rd_kafka_queue_destroy(self.0);
        }
    }
}

/// The thread that serves a producer's events; stops when dropped.
pub struct EventServer {
    stop: Arc<AtomicBool>,
    wake: UnixStream,
    thread: Option<JoinHandle<()>>,
    queue: Option<Arc<MainQueue>>,
    /// Held so that the client is destroyed only after the queue handle is released, as
    /// librdkafka requires.
    producer: Option<Arc<BaseProducer<EventContext>>>,
}

impl EventServer {
    /// Starts serving `producer`'s events.
    pub fn start(producer: Arc<BaseProducer<EventContext>>) -> std::io::Result<Self> {
        let (mut woken, wake) = UnixStream::pair()?;
        // librdkafka must never block on the socket: a full socket means a wake is pending.
        wake.set_nonblocking(true)?;
        // SAFETY: the client outlives the handle (the thread holds the producer until the
        // handle is released in `Drop`).
        let queue = Arc::new(MainQueue(unsafe {
            rdsys::rd_kafka_queue_get_main(producer.client().native_ptr())
        }));
        let signal = [1u8];
        // SAFETY: librdkafka copies the one-byte payload; the socket lives as long as `self`.
        unsafe {
            rdsys::rd_kafka_queue_io_event_enable(
                queue.0,
                wake.as_raw_fd(),
                signal.as_ptr().cast(),
                signal.len(),
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("producer events".into())
            .spawn({
                let (stop, queue, producer) = (stop.clone(), queue.clone(), producer.clone());
                move || {
                    let mut bytes = [0u8; 64];
                    loop {
                        // Whatever was queued before the socket was set up is served too.
                        while queue.len() > 0 && !stop.load(Ordering::Acquire) {
                            producer.poll(Duration::ZERO);
                        }
                        if stop.load(Ordering::Acquire)
                            || matches!(woken.read(&mut bytes), Ok(0) | Err(_))
                        {
                            break;
                        }
                    }
                }
            })?;
        Ok(Self {
            stop,
            wake,
            thread: Some(thread),
            queue: Some(queue),
            producer: Some(producer),
        })
    }
}

impl Drop for EventServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = (&self.wake).write(&[0]);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // The thread is gone: release the queue handle, then (maybe) the client.
        self.queue.take();
        self.producer.take();
    }
}
