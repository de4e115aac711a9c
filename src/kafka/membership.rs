//! Static membership (KIP-345) for the services' consumers: each joins its group with a
//! `group.instance.id`, so that a service restarted after a crash or a `kill -9` gets its
//! partitions back as soon as it joins, without a rebalance — instead of waiting out the
//! session of the instance it replaces (librdkafka's default, 45 s), during which an
//! orchestrated saga's step could time out for want of a reader.
//!
//! The id is `-X group.instance.id=ID` when given, else `HOST-N`: N is the lowest slot
//! free on this machine for this group and broker, held as a lock on a file for the
//! process's life. The kernel releases the lock when the process ends, however it ends, so
//! two instances side by side get 1 and 2, and a restarted instance gets its number back.
//!
//! A static member sends no LeaveGroup when it closes (librdkafka, like the Java client,
//! keeps its place for a restart). A clean stop (Ctrl-C, SIGTERM) should still hand the
//! partitions on at once, so [`Membership::leave`] then removes the instance by its id
//! (LeaveGroup v3 naming the instance, as Kafka's admin API does).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::{
    FindCoordinatorRequest, GroupId, LeaveGroupRequest, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Kafka;

/// Most instances of one service side by side on one machine.
const SLOTS: usize = 64;

/// How long leaving may take (a stop should not hang on a broker that went away).
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A consumer's place in its group: its instance id, and the lock that keeps it.
#[derive(Debug)]
pub struct Membership {
    /// The `group.instance.id` it joins with.
    pub instance_id: String,
    group: String,
    servers: String,
    /// Held while the process runs (none for an id given with `-X`).
    _slot: Option<File>,
}

impl Membership {
    /// The instance id of this process in `group`: the one given with `-X`, or the lowest
    /// free slot of this machine.
    pub fn claim(kafka: &Kafka, group: &str) -> Membership {
        let given = kafka
            .args
            .kafka_properties()
            .filter(|(key, _)| key == "group.instance.id")
            .map(|(_, value)| value.clone())
            .last();
        let (instance_id, slot) = match given {
            Some(id) => (id, None),
            None => match claim_slot(kafka.servers(), group) {
                Ok((n, file)) => (format!("{}-{n}", host()), Some(file)),
                Err(error) => {
                    // Unique but not stable: a restart waits out the old session.
                    let id = format!("{}-p{}", host(), std::process::id());
                    tracing::warn!(%error, group, id, "no slot for a stable group.instance.id; a restart of this service will wait for its old session to end");
                    (id, None)
                }
            },
        };
        Membership {
            instance_id,
            group: group.to_string(),
            servers: kafka.servers().to_string(),
            _slot: slot,
        }
    }

    /// Leaves the group by instance id (after the consumer has closed), so that the
    /// partitions go to the other instances at once. A group that no longer has the
    /// instance (it never joined, or was removed) is fine.
    /// A coordinator that is still loading or moving (a broker just started: Apache
    /// Kafka answers NOT_COORDINATOR then) is asked again until [`LEAVE_TIMEOUT`].
    pub async fn leave(&self) -> Result<(), String> {
        let attempts = async {
            loop {
                match leave_group(&self.servers, &self.group, &self.instance_id).await {
                    Err(Failure::Coordinator(_)) => {
                        tokio::time::sleep(Duration::from_millis(100)).await
                    }
                    outcome => return outcome,
                }
            }
        };
        match tokio::time::timeout(LEAVE_TIMEOUT, attempts).await {
            Ok(outcome) => outcome.map_err(|failure| failure.to_string()),
            Err(_) => Err(format!("no answer within {LEAVE_TIMEOUT:?}")),
        }
    }
}

/// This machine's name (instance ids of two machines must differ).
fn host() -> String {
    gethostname::gethostname()
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The lowest slot of `group` on `servers` that no running process holds.
fn claim_slot(servers: &str, group: &str) -> std::io::Result<(usize, File)> {
    let dir: PathBuf = std::env::temp_dir().join("edm-group-members");
    std::fs::create_dir_all(&dir)?;
    let key = format!(
        "{:08x}",
        crc32c::crc32c(format!("{servers}|{group}").as_bytes())
    );
    for n in 1..=SLOTS {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{key}.{n}.lock")))?;
        match file.try_lock() {
            Ok(()) => return Ok((n, file)),
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(error)) => return Err(error),
        }
    }
    Err(std::io::Error::other(format!(
        "{SLOTS} instances of group {group} already run here"
    )))
}

/// Why leaving failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// The group's coordinator is loading, moving or not yet known: worth asking again.
    #[error("{0}: the group's coordinator is not ready")]
    Coordinator(String),
    #[error("{0}")]
    Other(String),
}

impl From<String> for Failure {
    fn from(detail: String) -> Self {
        Failure::Other(detail)
    }
}

/// Kafka's error codes for a coordinator not (yet) in place.
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;
const UNKNOWN_MEMBER_ID: i16 = 25;

/// A failure for a non-zero `code` in the answer to `request`.
fn failure(request: &str, code: i16) -> Failure {
    let detail = format!("{request}: error {code}");
    match code {
        COORDINATOR_LOAD_IN_PROGRESS | COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR => {
            Failure::Coordinator(detail)
        }
        _ => Failure::Other(detail),
    }
}

/// FindCoordinator, then LeaveGroup naming `instance` to the coordinator.
async fn leave_group(servers: &str, group: &str, instance: &str) -> Result<(), Failure> {
    let bootstrap = servers.split(',').next().unwrap_or(servers).trim();
    let mut stream = TcpStream::connect(bootstrap)
        .await
        .map_err(|e| format!("cannot connect to {bootstrap}: {e}"))?;
    let group_id = GroupId(StrBytes::from_string(group.to_string()));
    let found = ask(
        &mut stream,
        &FindCoordinatorRequest::default().with_key(group_id.0.clone()),
        2,
    )
    .await?;
    if found.error_code != 0 {
        return Err(failure("FindCoordinator", found.error_code));
    }
    let coordinator = format!("{}:{}", found.host, found.port);
    if coordinator != bootstrap {
        stream = TcpStream::connect(&coordinator)
            .await
            .map_err(|e| format!("cannot connect to the coordinator {coordinator}: {e}"))?;
    }
    let leave = LeaveGroupRequest::default()
        .with_group_id(group_id)
        .with_members(vec![
            MemberIdentity::default()
                .with_member_id(StrBytes::default())
                .with_group_instance_id(Some(StrBytes::from_string(instance.to_string()))),
        ]);
    let answer = ask(&mut stream, &leave, 3).await?;
    let errors: Vec<i16> = std::iter::once(answer.error_code)
        .chain(answer.members.iter().map(|m| m.error_code))
        .filter(|&code| code != 0 && code != UNKNOWN_MEMBER_ID)
        .collect();
    match errors.first() {
        None => Ok(()),
        Some(&code) => Err(failure("LeaveGroup", code)),
    }
}

/// One request and its answer on `stream`.
async fn ask<R: Request>(
    stream: &mut TcpStream,
    request: &R,
    version: i16,
) -> Result<R::Response, String> {
    let mut frame = BytesMut::new();
    frame.put_u32(0);
    RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("edm")))
        .encode(&mut frame, R::header_version(version))
        .and_then(|()| request.encode(&mut frame, version))
        .map_err(|e| format!("cannot encode the request: {e}"))?;
    let length = (frame.len() - 4) as u32;
    frame[..4].copy_from_slice(&length.to_be_bytes());
    stream.write_all(&frame).await.map_err(|e| e.to_string())?;
    let length = stream.read_u32().await.map_err(|e| e.to_string())? as usize;
    if length > 1 << 20 {
        return Err(format!("an answer of {length} bytes to a small request"));
    }
    let mut answer = vec![0; length];
    stream
        .read_exact(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Bytes::from(answer);
    ResponseHeader::decode(&mut answer, R::Response::header_version(version))
        .map_err(|e| format!("a malformed answer: {e}"))?;
    let response = R::Response::decode(&mut answer, version)
        .map_err(|e| format!("a malformed answer: {e}"))?;
    Ok(response)
}
