//! Retention by size (Kafka's `retention.bytes`): a partition drops its oldest batches
//! once it holds more, so that a long-running broker does not grow without end, and its
//! file (`--data-dir`) is rewritten without them once they outweigh what it still holds.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use super::PartitionLog;

/// The file a partition's batches are also written to (`edm broker --data-dir`).
#[derive(Debug)]
pub(super) struct Journal {
    pub(super) file: File,
    path: PathBuf,
    /// Bytes at the start of the file that retention has dropped from the log.
    dropped: u64,
}

/// Bytes dropped by retention that a journal keeps before it is rewritten (and at least
/// as many as it still holds, so that each byte is rewritten a bounded number of times).
const REWRITE_AFTER: u64 = 1024 * 1024;

impl PartitionLog {
    /// Bytes held.
    #[cfg(test)]
    pub fn size(&self) -> u64 {
        self.bytes
    }

    /// Drops the oldest batches until the log holds at most `max_bytes` (Kafka's
    /// `retention.bytes`), keeping at least the last batch, as Kafka keeps its active
    /// segment, and every batch from the first open transaction on (read_committed
    /// readers still wait for them).
    pub fn retain(&mut self, max_bytes: u64) {
        let stable = self.last_stable_offset();
        let mut dropped = 0;
        while self.bytes > max_bytes && self.batches.len() > 1 {
            let Some(oldest) = self.batches.front() else {
                break;
            };
            if oldest.last_offset >= stable {
                break;
            }
            let size = oldest.bytes.len() as u64;
            self.batches.pop_front();
            self.bytes -= size;
            dropped += size;
        }
        if dropped == 0 {
            return;
        }
        let start = self.log_start_offset();
        self.aborted.retain(|a| a.last_offset >= start);
        self.journal_dropped(dropped);
    }

    /// Counts `dropped` bytes against the journal, and rewrites it without them once they
    /// outweigh what it still holds. A failed rewrite keeps the whole file (nothing lost:
    /// a restart then reads back more than retention kept).
    fn journal_dropped(&mut self, dropped: u64) {
        let Some(journal) = &mut self.journal else {
            return;
        };
        journal.dropped += dropped;
        if journal.dropped < REWRITE_AFTER.max(self.bytes) {
            return;
        }
        journal.dropped = 0;
        let rewritten = journal.path.with_extension("log.new");
        let write = || -> std::io::Result<File> {
            let mut file = File::create(&rewritten)?;
            for stored in &self.batches {
                file.write_all(&stored.bytes)?;
            }
            std::fs::rename(&rewritten, &journal.path)?;
            std::fs::OpenOptions::new().append(true).open(&journal.path)
        };
        match write() {
            Ok(file) => journal.file = file,
            Err(error) => {
                tracing::warn!(path = %journal.path.display(), %error, "cannot rewrite a partition's file without the batches retention dropped: it keeps them");
            }
        }
    }

    /// Writes every later batch to `file` (open for appending at `path`) as well.
    pub fn keep_in(&mut self, file: File, path: PathBuf) {
        self.journal = Some(Journal {
            file,
            path,
            dropped: 0,
        });
    }
}
