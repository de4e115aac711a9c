//! A Kafka connection spoken by hand: requests no client library sends (a sequence gap, a
//! partition that is not there, a record over the limit), answers read field by field.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest a broker may take to answer one request (a fetch waits at most its
/// `max_wait_ms`, far less).
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// One connection to a broker.
pub struct Wire {
    stream: TcpStream,
    correlation_id: i32,
}

impl Wire {
    /// Connects to `address` (`host:port`).
    pub async fn connect(address: &str) -> Self {
        let stream = TcpStream::connect(address)
            .await
            .unwrap_or_else(|e| panic!("connect to {address}: {e}"));
        Self {
            stream,
            correlation_id: 0,
        }
    }

    /// Sends `request` in `version` and reads its answer.
    pub async fn ask<R: Request>(&mut self, request: &R, version: i16) -> R::Response {
        self.correlation_id += 1;
        let mut frame = BytesMut::new();
        frame.put_u32(0);
        RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("edm-conformance")))
            .encode(&mut frame, R::header_version(version))
            .expect("request header");
        request.encode(&mut frame, version).expect("request body");
        let mut answer = self.exchange(frame).await.expect("an answer");
        let header = ResponseHeader::decode(&mut answer, R::Response::header_version(version))
            .expect("response header");
        assert_eq!(header.correlation_id, self.correlation_id, "correlation id");
        R::Response::decode(&mut answer, version).expect("a well-formed answer")
    }

    /// Writes a whole frame (length prefix included) and reads one answer frame, without
    /// its length; `None` if the broker closed the connection instead.
    pub async fn exchange(&mut self, mut frame: BytesMut) -> Option<Bytes> {
        let length = (frame.len() - 4) as u32;
        frame[..4].copy_from_slice(&length.to_be_bytes());
        self.send_raw(&frame).await;
        self.read_frame().await
    }

    /// Writes bytes as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Reads one answer frame; `None` if the broker closed the connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let read = async {
            let length = self.stream.read_u32().await.ok()?;
            let mut answer = vec![0; length as usize];
            self.stream.read_exact(&mut answer).await.ok()?;
            Some(Bytes::from(answer))
        };
        tokio::time::timeout(ANSWER_WITHIN, read)
            .await
            .expect("an answer or a close within 30 s")
    }
}

/// The producer fields of a batch: none (-1), or an idempotent or transactional
/// producer's id, epoch and first sequence.
#[derive(Debug, Clone, Copy)]
pub struct Producer {
    pub id: i64,
    pub epoch: i16,
    pub sequence: i32,
    pub transactional: bool,
}

impl Producer {
    /// No producer id: a plain batch (base sequence −1).
    pub const NONE: Producer = Producer {
        id: -1,
        epoch: -1,
        sequence: -1,
        transactional: false,
    };
}

/// One record batch of `values` (keys `k0`, `k1`, …), timestamps `timestamp`,
/// `timestamp + 1`, …
pub fn batch(values: &[&[u8]], producer: Producer, timestamp: i64) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(n, value)| Record {
            transactional: producer.transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: producer.id,
            producer_epoch: producer.epoch,
            timestamp_type: TimestampType::Creation,
            offset: n as i64,
            // The encoder starts a new batch where offset − sequence changes: a batch
            // without a producer has base sequence −1, so its records count up from it.
            sequence: producer.sequence + n as i32,
            timestamp: timestamp + n as i64,
            key: Some(Bytes::from(format!("k{n}"))),
            value: Some(Bytes::copy_from_slice(value)),
            headers: Default::default(),
        })
        .collect();
    encode(&records)
}

/// `records` as one uncompressed batch (they must share their batch fields).
pub fn encode(records: &[Record]) -> Bytes {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("a batch");
    buf.freeze()
}

/// The records of the batches in `bytes` (a fetch answer's records): offset and value.
pub fn records(bytes: Option<&Bytes>) -> Vec<(i64, String)> {
    let Some(bytes) = bytes else {
        return Vec::new();
    };
    let mut bytes = bytes.clone();
    let mut out = Vec::new();
    while bytes.has_remaining() {
        let Ok(set) = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes) else {
            break;
        };
        for record in set.records {
            let value = record
                .value
                .map(|v| String::from_utf8_lossy(&v).into_owned())
                .unwrap_or_default();
            let shown = if record.control {
                format!("<control {}>", value.len())
            } else {
                value
            };
            out.push((record.offset, shown));
        }
    }
    out
}
