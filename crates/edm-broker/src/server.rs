//! Connections: length-prefixed frames in, one answer per request out, in order.
//!
//! As Kafka does, a connection's next request is read only once the current one is
//! answered, so a connection holds at most one request (at most `max_request_bytes`),
//! and the bytes of requests being read count against one budget for the whole broker
//! (Kafka's `queued.max.request.bytes`): a client that announces a large request and
//! sends it slowly holds only what it has sent. While a request waits (a fetch holding
//! for data, a JoinGroup waiting for the other members), the connection is watched for a
//! hang-up, and the request is dropped when it comes, so the group coordinator learns at
//! once that the member is gone. The number of connections is bounded too
//! (`max.connections`: past it, new ones wait in the listen backlog), and a connection
//! with no request for `connections.max.idle.ms` is closed.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::handle::{self, Client, Reply};
use super::limits::Limits;
use super::state::State;

/// Bytes read from a socket in one go while a request arrives.
const CHUNK: usize = 64 * 1024;

/// Accepts connections until `shutdown`, runs the periodic work of `state`, and returns
/// once every connection task has ended.
pub async fn serve(listener: TcpListener, state: Arc<State>, shutdown: CancellationToken) {
    let tasks = TaskTracker::new();
    tasks.spawn({
        let (state, shutdown) = (state.clone(), shutdown.clone());
        async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                never = tick(state) => match never {},
            }
        }
    });
    let limits = state.limits.clone();
    let connections = Arc::new(Semaphore::new(to_usize(limits.max_connections)));
    let budget = Arc::new(Semaphore::new(kib(to_usize(limits.queued_request_bytes))));
    loop {
        // Past max.connections, wait for one to close (new ones queue in the backlog).
        let slot = tokio::select! {
            _ = shutdown.cancelled() => break,
            slot = connections.clone().acquire_owned() => slot,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let connection = Connection {
                    peer,
                    state: state.clone(),
                    budget: budget.clone(),
                    shutdown: shutdown.clone(),
                };
                tasks.spawn(async move {
                    connection.serve(stream).await;
                    drop(slot);
                });
            }
            Err(error) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                warn!(%error, "cannot accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    tasks.close();
    tasks.wait().await;
}

/// The broker's periodic work (sessions, rebalance deadlines, transaction timeouts),
/// every [`super::groups::TICK`], for as long as it is polled.
pub(crate) async fn tick(state: Arc<State>) -> std::convert::Infallible {
    let mut every = tokio::time::interval(super::groups::TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        state.tick();
    }
}

/// Permits of the request-bytes budget for `bytes`: one per KiB, rounded up (a semaphore
/// counts at most `u32::MAX` permits at a time).
fn kib(bytes: usize) -> usize {
    bytes.div_ceil(1024)
}

/// A limit as a size in memory (limits are at most 2^40, well within `usize`).
fn to_usize(limit: u64) -> usize {
    usize::try_from(limit).unwrap_or(usize::MAX)
}

/// One client connection and what it shares with the others.
struct Connection {
    peer: SocketAddr,
    state: Arc<State>,
    budget: Arc<Semaphore>,
    shutdown: CancellationToken,
}

/// A request read off the wire, with its share of the request-bytes budget (given back
/// when it is dropped) and the signal that lets the reader go on to the next request.
struct Frame {
    bytes: Bytes,
    _budget: OwnedSemaphorePermit,
    answered: oneshot::Sender<()>,
}

impl Connection {
    async fn serve(self, stream: TcpStream) {
        let (reader, mut writer) = stream.into_split();
        let (frames, mut requests) = mpsc::channel(1);
        let hung_up = CancellationToken::new();
        let reading = tokio::spawn(read_frames(
            reader,
            frames,
            hung_up.clone(),
            self.peer,
            self.state.limits.clone(),
            self.budget.clone(),
        ));
        let mut client = Client {
            id: String::new(),
            host: format!("/{}", self.peer.ip()),
        };
        loop {
            let frame = tokio::select! {
                frame = requests.recv() => frame,
                _ = self.shutdown.cancelled() => None,
            };
            let Some(frame) = frame else { break };
            let Frame {
                bytes, answered, ..
            } = frame;
            let answer = tokio::select! {
                biased;
                answer = answer(&self.state, &mut client, bytes) => answer,
                _ = hung_up.cancelled() => break,
                _ = self.shutdown.cancelled() => break,
            };
            match answer {
                Ok(Some(bytes)) => {
                    if writer.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                Ok(None) => {}
                Err(why) => {
                    warn!(peer = %self.peer, client = %client.id, "closing the connection: {why}");
                    break;
                }
            }
            let _ = answered.send(());
        }
        reading.abort();
        let _ = reading.await;
    }
}

/// Why the reader stopped.
enum Stop {
    /// The client hung up, or the connection failed.
    Closed,
    /// The client sent something no Kafka client sends: WARN and close.
    Refused(String),
    /// No request for the idle limit.
    Idle,
}

/// Reads requests one at a time into `frames`, each only after the one before has been
/// answered, until the client hangs up (then cancels `hung_up`).
async fn read_frames(
    mut reader: OwnedReadHalf,
    frames: mpsc::Sender<Frame>,
    hung_up: CancellationToken,
    peer: SocketAddr,
    limits: Arc<Limits>,
    budget: Arc<Semaphore>,
) {
    let stop = loop {
        let frame = match read_frame(&mut reader, &limits, &budget).await {
            Ok(frame) => frame,
            Err(stop) => break stop,
        };
        let (bytes, permit) = frame;
        let (answered, done) = oneshot::channel();
        if frames
            .send(Frame {
                bytes,
                _budget: permit,
                answered,
            })
            .await
            .is_err()
        {
            break Stop::Closed;
        }
        if !wait_for_answer(&mut reader, done).await {
            break Stop::Closed;
        }
    };
    match stop {
        Stop::Closed => {}
        Stop::Idle => {
            debug!(%peer, "closing a connection idle for {:?}", limits.connections_max_idle())
        }
        Stop::Refused(why) => warn!(%peer, "closing the connection: {why}"),
    }
    hung_up.cancel();
}

/// Waits until the request being handled is answered; `false` if the client hung up
/// first. A client that sends its next request meanwhile (clients pipeline) is not read
/// further until then: it cannot have hung up before that request, and its hang-up shows
/// when the request is read.
async fn wait_for_answer(reader: &mut OwnedReadHalf, mut done: oneshot::Receiver<()>) -> bool {
    let mut probe = [0u8; 1];
    tokio::select! {
        answered = &mut done => return answered.is_ok(),
        peeked = reader.peek(&mut probe) => {
            if !matches!(peeked, Ok(n) if n > 0) {
                return false;
            }
        }
    }
    done.await.is_ok()
}

/// The next request's bytes, read as they arrive, and its share of the budget (the whole
/// request's, taken before its first byte is read, so that requests being read can never
/// hold parts of the budget each and wait for one another).
async fn read_frame(
    reader: &mut OwnedReadHalf,
    limits: &Limits,
    budget: &Arc<Semaphore>,
) -> Result<(Bytes, OwnedSemaphorePermit), Stop> {
    let idle = limits.connections_max_idle();
    let length = match tokio::time::timeout(idle, reader.read_u32()).await {
        Err(_) => return Err(Stop::Idle),
        Ok(Err(_)) => return Err(Stop::Closed),
        Ok(Ok(length)) => length as usize,
    };
    if length as u64 > limits.max_request_bytes {
        return Err(Stop::Refused(format!(
            "a request of {length} bytes (at most {}, socket.request.max.bytes): not a Kafka \
             client?",
            limits.max_request_bytes
        )));
    }
    let permits = u32::try_from(kib(length)).map_err(|_| Stop::Closed)?;
    let held = budget
        .clone()
        .acquire_many_owned(permits)
        .await
        .map_err(|_| Stop::Closed)?;
    // Memory follows the bytes that arrive, not the length announced.
    let mut frame = BytesMut::with_capacity(length.min(CHUNK));
    while frame.len() < length {
        let want = (length - frame.len()).min(CHUNK);
        frame.reserve(want);
        let mut arriving = (&mut *reader).take(want as u64);
        match tokio::time::timeout(idle, arriving.read_buf(&mut frame)).await {
            Err(_) => return Err(Stop::Idle),
            Ok(Ok(0) | Err(_)) => return Err(Stop::Closed),
            Ok(Ok(_)) => {}
        }
    }
    Ok((frame.freeze(), held))
}

/// The framed answer to one request frame: `Ok(None)` when it wants none, `Err` when the
/// connection must close.
pub(crate) async fn answer(
    state: &State,
    client: &mut Client,
    mut frame: Bytes,
) -> Result<Option<Bytes>, String> {
    if frame.len() < 8 {
        return Err(format!("a request of {} bytes has no header", frame.len()));
    }
    let (key, version, correlation_id) = {
        let mut peek = &frame[..8];
        (peek.get_i16(), peek.get_i16(), peek.get_i32())
    };
    let api = ApiKey::try_from(key).map_err(|_| format!("unknown API key {key}"))?;
    let Some((min, max)) = handle::supported(api) else {
        return Err(format!("{api:?} is not implemented by edm's broker"));
    };
    if !(min..=max).contains(&version) {
        if api == ApiKey::ApiVersions {
            // Answer in v0 with the versions spoken, and the client asks again.
            let versions = handle::api_versions_unsupported();
            return encode(
                correlation_id,
                ApiKey::ApiVersions,
                0,
                &ResponseKind::ApiVersions(versions),
            )
            .map(Some);
        }
        return Err(format!(
            "{api:?} v{version} is not spoken here (v{min} to v{max})"
        ));
    }
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version))
        .map_err(|e| format!("bad {api:?} request header: {e}"))?;
    if let Some(id) = header.client_id.filter(|id| **id != *client.id) {
        client.id = id.to_string();
    }
    let request = RequestKind::decode(api, &mut frame, version)
        .map_err(|e| format!("bad {api:?} v{version} request: {e}"))?;
    debug!(client = %client.id, ?api, version, "request");
    match handle::handle(state, client, request, version).await {
        Reply::Send(response) => encode(correlation_id, api, version, &response).map(Some),
        Reply::Nothing => Ok(None),
        Reply::Close => Err(format!("no handler for {api:?}")),
    }
}

/// Length prefix, response header and body.
fn encode(
    correlation_id: i32,
    api: ApiKey,
    version: i16,
    response: &ResponseKind,
) -> Result<Bytes, String> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_u32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, api.response_header_version(version))
        .and_then(|()| response.encode(&mut buf, version))
        .map_err(|e| format!("cannot encode the {api:?} v{version} answer: {e}"))?;
    let length = u32::try_from(buf.len() - 4).map_err(|_| "answer too large".to_string())?;
    buf[..4].copy_from_slice(&length.to_be_bytes());
    Ok(buf.freeze())
}
