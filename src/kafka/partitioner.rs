//! Which partition a keyed record goes to, computed as librdkafka computes it, so that
//! the orchestrator knows which partition of `order-saga.replies` carries a saga's replies
//! (they are keyed by transaction id) without reading them: it may time a saga out only
//! on a partition it owns and has read to the end.

/// librdkafka's `partitioner` settings for keyed records that edm can compute (the
/// `_random` variants differ only for records without a key).
const KNOWN: &[&str] = &[
    "consistent_random",
    "consistent",
    "murmur2_random",
    "murmur2",
    "fnv1a_random",
    "fnv1a",
];

/// A producer's partitioner, by librdkafka's name (default `consistent_random`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partitioner(&'static str);

impl Partitioner {
    /// librdkafka's default.
    pub const DEFAULT: Partitioner = Partitioner("consistent_random");

    /// The partitioner called `name`, if edm can compute it.
    pub fn named(name: &str) -> Option<Partitioner> {
        KNOWN.iter().find(|k| **k == name).map(|k| Partitioner(k))
    }

    /// The partition of a record keyed `key` in a topic of `partitions` partitions.
    pub fn partition(self, key: &[u8], partitions: i32) -> i32 {
        let count = partitions.max(1) as u32;
        let hash = match self.0 {
            "murmur2" | "murmur2_random" => murmur2(key) & 0x7fff_ffff,
            // The absolute value of the signed hash, as librdkafka (after Sarama) takes it.
            "fnv1a" | "fnv1a_random" => (fnv1a(key) as i32).unsigned_abs(),
            _ => crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(key),
        };
        (hash % count) as i32
    }
}

/// Kafka's murmur2 (the Java client's default partitioner, and librdkafka's `murmur2`).
fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// 32-bit FNV-1a (librdkafka's `fnv1a`).
fn fnv1a(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_their_reference_values() {
        // Kafka's own test vectors for murmur2 (Utils.murmur2, UtilsTest).
        assert_eq!(murmur2(b"21") as i32, -973932308);
        assert_eq!(murmur2(b"foobar") as i32, -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58897971
        );
        // CRC-32 (ISO-HDLC, as zlib): "123456789" → 0xCBF43926.
        assert_eq!(
            crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(b"123456789"),
            0xcbf4_3926
        );
        assert_eq!(fnv1a(b""), 0x811c_9dc5);
        assert_eq!(fnv1a(b"a"), 0xe40c_292c);
    }
}
