//! A committed offset: what a group's OffsetCommit stores, kept by the coordinator and,
//! with `--data-dir`, written by the data directory (both use it; neither owns it).

/// Where a group goes on reading a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The next offset to read.
    pub offset: i64,
    /// The leader epoch it was read in.
    pub leader_epoch: i32,
    /// What the client stored with it.
    pub metadata: Option<String>,
}

/// An offset to commit: topic, partition and what is stored.
pub type OffsetCommit = ((String, i32), Committed);
