//! Connections: length-prefixed frames in, one answer per request out, in order.
//!
//! Each connection has a reader task that reads frames ahead (clients pipeline requests)
//! and notices at once when the client hangs up; the connection's own loop decodes,
//! handles and answers one request after another, as Kafka does. A request still waiting
//! when the client hangs up (a fetch holding for data, a JoinGroup waiting for the other
//! members) is dropped, so the group coordinator learns that the member is gone.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::handle::{self, Client, Reply};
use super::state::State;

/// Largest request accepted (Kafka's `socket.request.max.bytes`).
const MAX_FRAME: usize = 100 * 1024 * 1024;

/// Requests read ahead of the one being handled, per connection.
const READ_AHEAD: usize = 32;

/// Accepts connections until `shutdown`, and runs the periodic work of `state`.
pub async fn serve(listener: TcpListener, state: Arc<State>, shutdown: CancellationToken) {
    let ticker = tokio::spawn({
        let (state, shutdown) = (state.clone(), shutdown.clone());
        async move {
            let mut every = tokio::time::interval(super::groups::TICK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = every.tick() => state.tick(),
                }
            }
        }
    });
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, peer, state.clone(), shutdown.clone()));
            }
            Err(error) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                warn!(%error, "cannot accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    ticker.abort();
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<State>,
    shutdown: CancellationToken,
) {
    let (reader, mut writer) = stream.into_split();
    let (frames, mut requests) = mpsc::channel(READ_AHEAD);
    let hung_up = CancellationToken::new();
    let reading = tokio::spawn(read_frames(reader, frames, hung_up.clone(), peer));
    let mut client = Client {
        id: String::new(),
        host: format!("/{}", peer.ip()),
    };
    while let Some(frame) = requests.recv().await {
        let answer = tokio::select! {
            biased;
            answer = answer(&state, &mut client, frame) => answer,
            _ = hung_up.cancelled() => break,
            _ = shutdown.cancelled() => break,
        };
        match answer {
            Ok(Some(bytes)) => {
                if writer.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            Ok(None) => {}
            Err(why) => {
                warn!(%peer, client = %client.id, "closing the connection: {why}");
                break;
            }
        }
    }
    reading.abort();
}

/// Reads frames into `frames` until the client hangs up (then cancels `hung_up`).
async fn read_frames(
    mut reader: OwnedReadHalf,
    frames: mpsc::Sender<Bytes>,
    hung_up: CancellationToken,
    peer: SocketAddr,
) {
    while let Ok(length) = reader.read_u32().await {
        let length = length as usize;
        if length > MAX_FRAME {
            warn!(%peer, "a request of {length} bytes (at most {MAX_FRAME}): not a Kafka client? Closing the connection");
            break;
        }
        let mut frame = vec![0; length];
        if reader.read_exact(&mut frame).await.is_err()
            || frames.send(Bytes::from(frame)).await.is_err()
        {
            break;
        }
    }
    hung_up.cancel();
}

/// The framed answer to one request frame: `Ok(None)` when it wants none, `Err` when the
/// connection must close.
async fn answer(
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
