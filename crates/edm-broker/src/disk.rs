//! `edm broker --data-dir DIR`: the broker's data on disk, so that stopping it (or a
//! `kill -9`) loses neither events nor committed offsets.
//!
//! ```text
//! DIR/cluster.id                    the cluster id, kept so clients see the same cluster
//! DIR/topics.json                   topics: name, id, partition count
//! DIR/logs/<topic>-<partition>.log  each partition's batches, as fetch answers carry them
//! DIR/offsets.jsonl                 committed offsets, a line per commit (compacted at start)
//! ```
//!
//! Writes go to the page cache without fsync, as Kafka's do by default: a crashed process
//! loses nothing, a power cut may lose the last writes. At start every log is read back
//! (a batch cut short by a crash is dropped from the file), producers' sequences and
//! transactions are rebuilt from the batches, and a transaction left without its marker
//! is aborted — the coordinator that knew it is gone.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::batch;
use super::committed::{Committed, OffsetCommit};
use super::log::PartitionLog;

/// A topic as `topics.json` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopicEntry {
    pub name: String,
    /// Kept so that clients that name topics by id (Metadata v10+) find them again.
    pub id: uuid::Uuid,
    /// Partition count.
    pub partitions: i32,
    /// The configs it was given (none in a directory written before edm had them).
    #[serde(default)]
    pub configs: super::configs::TopicConfigs,
}

/// One committed offset, as `offsets.jsonl` has it.
#[derive(Debug, Serialize, Deserialize)]
struct OffsetEntry {
    group: String,
    topic: String,
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: Option<String>,
}

/// What the data directory held at start.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Each topic with its partitions' logs (already writing to their files).
    pub topics: Vec<(TopicEntry, Vec<PartitionLog>)>,
    /// Committed offsets by group.
    pub offsets: HashMap<String, Vec<OffsetCommit>>,
    /// The largest producer id in the logs (new ids start above it).
    pub max_producer_id: i64,
    /// The cluster id the directory was created with: a restarted broker is the same
    /// cluster to its clients (librdkafka warns when a cluster id changes under it).
    pub cluster_id: String,
}

/// The data directory.
#[derive(Debug)]
pub struct Disk {
    dir: PathBuf,
    offsets: Mutex<File>,
}

impl Disk {
    /// Opens (or creates) `dir` and reads back what it holds; a new directory gets
    /// `new_cluster_id` as its cluster id.
    pub fn open(dir: &Path, new_cluster_id: &str) -> std::io::Result<(Arc<Disk>, Recovered)> {
        fs::create_dir_all(dir.join("logs"))?;
        let cluster_id = match fs::read_to_string(dir.join("cluster.id")) {
            Ok(id) if !id.trim().is_empty() => id.trim().to_string(),
            Ok(_) => new_cluster_id.to_string(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                fs::write(dir.join("cluster.id"), new_cluster_id)?;
                new_cluster_id.to_string()
            }
            Err(error) => return Err(error),
        };
        let mut recovered = Recovered {
            max_producer_id: -1,
            cluster_id,
            ..Recovered::default()
        };
        let topics: Vec<TopicEntry> = match fs::read(dir.join("topics.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other)?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(error),
        };
        let committed = read_offsets(&dir.join("offsets.jsonl"))?;
        let disk = Disk {
            dir: dir.to_path_buf(),
            offsets: Mutex::new(File::create(dir.join("offsets.jsonl.new"))?),
        };
        for entry in topics {
            let mut logs = Vec::new();
            for partition in 0..entry.partitions {
                let (log, max_producer_id) = disk.recover_partition(&entry.name, partition)?;
                recovered.max_producer_id = recovered.max_producer_id.max(max_producer_id);
                logs.push(log);
            }
            recovered.topics.push((entry, logs));
        }
        // Only the last commit of each partition matters: the file starts over with those.
        for entry in committed.into_values() {
            let commit = (
                (entry.topic.clone(), entry.partition),
                Committed {
                    offset: entry.offset,
                    leader_epoch: entry.leader_epoch,
                    metadata: entry.metadata.clone(),
                },
            );
            disk.offsets_committed(&entry.group, std::slice::from_ref(&commit));
            recovered
                .offsets
                .entry(entry.group)
                .or_default()
                .push(commit);
        }
        fs::rename(dir.join("offsets.jsonl.new"), dir.join("offsets.jsonl"))?;
        Ok((Arc::new(disk), recovered))
    }

    fn log_path(&self, topic: &str, partition: i32) -> PathBuf {
        // Topic names are letters, digits, `.`, `_` and `-`, never `.` or `..` alone.
        self.dir
            .join("logs")
            .join(format!("{topic}-{partition}.log"))
    }

    /// A new partition's file, opened for appending.
    pub fn new_partition(&self, topic: &str, partition: i32) -> std::io::Result<PartitionLog> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(self.log_path(topic, partition))?;
        let mut log = PartitionLog::default();
        log.keep_in(file, self.log_path(topic, partition));
        Ok(log)
    }

    /// Reads a partition's file back; returns its log and the largest producer id in it.
    fn recover_partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> std::io::Result<(PartitionLog, i64)> {
        let path = self.log_path(topic, partition);
        let bytes = match fs::read(&path) {
            Ok(bytes) => Bytes::from(bytes),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Bytes::new(),
            Err(error) => return Err(error),
        };
        let (stored, good) = batch::read_log(&bytes);
        if good < bytes.len() {
            tracing::warn!(
                topic,
                partition,
                "{} bytes at the end of {} were not a whole batch (a write cut short): dropped",
                bytes.len() - good,
                path.display()
            );
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)?;
        file.set_len(good as u64)?;
        let mut log = PartitionLog::default();
        let mut max_producer_id = -1;
        for batch in stored {
            max_producer_id = max_producer_id.max(batch.header.producer_id);
            log.replay(batch);
        }
        let mut file = file;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))?;
        log.keep_in(file, path);
        Ok((log, max_producer_id))
    }

    /// Rewrites `topics.json` (a new file renamed over the old one: never half written).
    pub fn save_topics(&self, topics: &[TopicEntry]) -> std::io::Result<()> {
        let temporary = self.dir.join("topics.json.new");
        fs::write(
            &temporary,
            serde_json::to_vec_pretty(topics).map_err(std::io::Error::other)?,
        )?;
        fs::rename(temporary, self.dir.join("topics.json"))
    }

    /// Removes a deleted topic's files.
    pub fn remove_partitions(&self, topic: &str, partitions: usize) {
        for partition in 0..partitions {
            let _ = fs::remove_file(self.log_path(topic, partition as i32));
        }
    }

    /// Appends committed offsets to `offsets.jsonl`.
    pub fn offsets_committed(&self, group: &str, offsets: &[OffsetCommit]) {
        let mut lines = Vec::new();
        for ((topic, partition), committed) in offsets {
            let entry = OffsetEntry {
                group: group.to_string(),
                topic: topic.clone(),
                partition: *partition,
                offset: committed.offset,
                leader_epoch: committed.leader_epoch,
                metadata: committed.metadata.clone(),
            };
            if serde_json::to_writer(&mut lines, &entry).is_ok() {
                lines.push(b'\n');
            }
        }
        let mut file = self.offsets.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(error) = file.write_all(&lines) {
            tracing::error!(%error, group, "committed offsets not written to disk");
        }
    }
}

/// The last committed offset of each (group, topic, partition) in `path`.
fn read_offsets(path: &Path) -> std::io::Result<HashMap<(String, String, i32), OffsetEntry>> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error),
    };
    let mut last = HashMap::new();
    // A line cut short by a crash is the last one, and is skipped.
    for entry in text
        .lines()
        .filter_map(|line| serde_json::from_str::<OffsetEntry>(line).ok())
    {
        last.insert(
            (entry.group.clone(), entry.topic.clone(), entry.partition),
            entry,
        );
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Node, State};
    use crate::topics;

    fn broker(dir: &Path) -> State {
        let node = Node {
            id: 1,
            host: "127.0.0.1".into(),
            port: 9092,
        };
        let (disk, recovered) = Disk::open(dir, "edm-test").expect("data directory");
        State::new(node, "edm-test".into(), true, 1).with_data(disk, recovered)
    }

    fn append(state: &State, partition: i32, bytes: Bytes) -> i64 {
        let log = state.topics.partition("t", partition).expect("partition");
        let batches = batch::split(&bytes).expect("valid");
        topics::lock(&log)
            .append(&batches[0].0, &batches[0].1)
            .expect("appended")
    }

    #[test]
    fn the_cluster_id_survives_a_restart() {
        let dir = std::env::temp_dir().join(format!("edm-disk-{}", uuid::Uuid::new_v4().simple()));
        let (_, first) = Disk::open(&dir, "edm-first").expect("data directory");
        let (_, again) = Disk::open(&dir, "edm-second").expect("data directory");
        assert_eq!(
            (first.cluster_id.as_str(), again.cluster_id.as_str()),
            ("edm-first", "edm-first")
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn topics_batches_and_offsets_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("edm-disk-{}", uuid::Uuid::new_v4().simple()));
        {
            let state = broker(&dir);
            state
                .topics
                .create("t", 2, Default::default())
                .expect("topic");
            for sequence in 0..3 {
                assert_eq!(
                    append(&state, 0, batch::test_batch(1, 7, sequence, false)),
                    i64::from(sequence)
                );
            }
            append(&state, 1, batch::test_batch(1, 8, 0, true)); // a transaction never ended
            let committed = Committed {
                offset: 2,
                leader_epoch: 0,
                metadata: None,
            };
            state
                .groups
                .commit("g", ("", None), -1, vec![(("t".into(), 0), committed)]);
        }
        // A write cut short by a crash: half a batch at the end of the file.
        let torn = batch::test_batch(1, 7, 3, false);
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.join("logs").join("t-0.log"))
            .expect("log file");
        file.write_all(&torn[..torn.len() / 2]).expect("write");
        drop(file);

        let state = broker(&dir);
        let log = state.topics.partition("t", 0).expect("partition");
        assert_eq!(
            topics::lock(&log).high_watermark(),
            3,
            "the torn batch is dropped"
        );
        // The producer goes on where it was; a repeat of a stored batch is recognised.
        assert_eq!(
            append(&state, 0, batch::test_batch(1, 7, 2, false)),
            2,
            "a duplicate"
        );
        assert_eq!(append(&state, 0, batch::test_batch(1, 7, 3, false)), 3);
        let committed = state.groups.committed("g", Some(vec![("t".into(), 0)]));
        assert_eq!(committed[0].1.as_ref().map(|c| c.offset), Some(2));
        // The open transaction was aborted: its marker follows, readers move on.
        let log = state.topics.partition("t", 1).expect("partition");
        let log = topics::lock(&log);
        assert_eq!((log.high_watermark(), log.last_stable_offset()), (2, 2));
        assert_eq!(log.aborted_between(0, 2).len(), 1);
        drop(log);
        drop(state);
        let _ = fs::remove_dir_all(&dir);
    }
}
