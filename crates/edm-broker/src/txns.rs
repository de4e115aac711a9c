//! The transaction coordinator's bookkeeping: which producer id and epoch each
//! `transactional.id` has, which partitions and groups its open transaction touched, the
//! offsets it will commit, and when it times out.
//!
//! Ending a transaction means writing a marker to each of its partitions and committing
//! its offsets; that is the request handler's work (it owns the logs and groups), given the
//! [`Ended`] this module returns. A transaction that outlives its timeout is aborted, and
//! its producer's epoch bumped, so that an abandoned producer never holds back
//! read_committed readers for good.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;

use super::groups::OffsetCommit;

/// A transaction that ended: the markers and offsets to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The producer.
    pub producer_id: i64,
    /// The epoch the markers carry.
    pub producer_epoch: i16,
    /// Committed (or aborted).
    pub commit: bool,
    /// Partitions that get a marker.
    pub partitions: Vec<(String, i32)>,
    /// Offsets to commit, per group (empty when aborted).
    pub offsets: Vec<(String, Vec<OffsetCommit>)>,
}

#[derive(Debug)]
struct Transaction {
    producer_id: i64,
    epoch: i16,
    timeout: Duration,
    /// When the open transaction started; `None` when none is open.
    started: Option<Instant>,
    partitions: BTreeSet<(String, i32)>,
    offsets: Vec<(String, OffsetCommit)>,
    /// How the last transaction ended, so a repeated EndTxn gets the same answer.
    last_ended: Option<bool>,
}

impl Transaction {
    fn check(&self, producer_id: i64, epoch: i16) -> Result<(), ResponseError> {
        if producer_id != self.producer_id {
            Err(ResponseError::InvalidProducerIdMapping)
        } else if epoch != self.epoch {
            Err(ResponseError::ProducerFenced)
        } else {
            Ok(())
        }
    }

    fn open(&mut self) {
        self.started.get_or_insert_with(Instant::now);
    }

    fn end(&mut self, commit: bool) -> Ended {
        self.started = None;
        self.last_ended = Some(commit);
        let mut offsets: Vec<(String, Vec<OffsetCommit>)> = Vec::new();
        for (group, offset) in self.offsets.drain(..) {
            match offsets.iter_mut().find(|(g, _)| *g == group) {
                Some((_, list)) => list.push(offset),
                None => offsets.push((group, vec![offset])),
            }
        }
        Ended {
            producer_id: self.producer_id,
            producer_epoch: self.epoch,
            commit,
            partitions: std::mem::take(&mut self.partitions).into_iter().collect(),
            offsets: if commit { offsets } else { Vec::new() },
        }
    }

    /// A new epoch fences every earlier instance of the producer.
    fn bump_epoch(&mut self, new_producer_id: impl FnOnce() -> i64) {
        if self.epoch == i16::MAX - 1 {
            self.producer_id = new_producer_id();
            self.epoch = 0;
        } else {
            self.epoch += 1;
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<String, Transaction>,
    by_producer: HashMap<i64, String>,
}

/// Every transactional producer of the broker.
#[derive(Debug, Default)]
pub struct Transactions {
    inner: Mutex<Inner>,
}

impl Transactions {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// InitProducerId for `transactional_id`: a producer id and a new epoch; an open
    /// transaction of an earlier instance is aborted (returned, to be written).
    pub fn init(
        &self,
        transactional_id: &str,
        timeout: Duration,
        new_producer_id: impl FnOnce() -> i64,
    ) -> (i64, i16, Option<Ended>) {
        let mut inner = self.inner();
        let (producer_id, epoch, aborted) = match inner.by_id.get_mut(transactional_id) {
            Some(txn) => {
                txn.bump_epoch(new_producer_id);
                txn.timeout = timeout;
                let aborted = txn.started.is_some().then(|| txn.end(false));
                (txn.producer_id, txn.epoch, aborted)
            }
            None => {
                let producer_id = new_producer_id();
                inner.by_id.insert(
                    transactional_id.to_string(),
                    Transaction {
                        producer_id,
                        epoch: 0,
                        timeout,
                        started: None,
                        partitions: BTreeSet::new(),
                        offsets: Vec::new(),
                        last_ended: None,
                    },
                );
                (producer_id, 0, None)
            }
        };
        inner
            .by_producer
            .insert(producer_id, transactional_id.to_string());
        (producer_id, epoch, aborted)
    }

    fn with<T>(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        act: impl FnOnce(&mut Transaction) -> Result<T, ResponseError>,
    ) -> Result<T, ResponseError> {
        let mut inner = self.inner();
        let txn = inner
            .by_id
            .get_mut(transactional_id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        txn.check(producer_id, epoch)?;
        act(txn)
    }

    /// AddPartitionsToTxn.
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: impl IntoIterator<Item = (String, i32)>,
    ) -> Result<(), ResponseError> {
        self.with(transactional_id, producer_id, epoch, |txn| {
            txn.open();
            txn.partitions.extend(partitions);
            Ok(())
        })
    }

    /// AddOffsetsToTxn.
    pub fn add_offsets(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
    ) -> Result<(), ResponseError> {
        self.with(transactional_id, producer_id, epoch, |txn| {
            txn.open();
            Ok(())
        })
    }

    /// TxnOffsetCommit: offsets committed to `group` when the transaction commits.
    pub fn stage_offsets(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        group: &str,
        offsets: Vec<OffsetCommit>,
    ) -> Result<(), ResponseError> {
        self.with(transactional_id, producer_id, epoch, |txn| {
            if txn.started.is_none() {
                return Err(ResponseError::InvalidTxnState);
            }
            txn.offsets
                .extend(offsets.into_iter().map(|o| (group.to_string(), o)));
            Ok(())
        })
    }

    /// EndTxn: the markers and offsets to write. Ending a transaction again the same way
    /// (a retried request) writes nothing and succeeds.
    pub fn end(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<Option<Ended>, ResponseError> {
        self.with(transactional_id, producer_id, epoch, |txn| {
            match (txn.started, txn.last_ended) {
                (Some(_), _) => Ok(Some(txn.end(commit))),
                (None, Some(last)) if last == commit => Ok(None),
                (None, _) => Err(ResponseError::InvalidTxnState),
            }
        })
    }

    /// A transactional batch from `producer_id` reached `partition`: the partition belongs
    /// to the producer's open transaction (so it gets a marker) — or the batch is refused.
    pub fn produced(
        &self,
        producer_id: i64,
        epoch: i16,
        partition: (String, i32),
    ) -> Result<(), ResponseError> {
        let mut inner = self.inner();
        let Some(id) = inner.by_producer.get(&producer_id).cloned() else {
            return Err(ResponseError::InvalidProducerIdMapping);
        };
        let txn = inner
            .by_id
            .get_mut(&id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        if epoch < txn.epoch {
            return Err(ResponseError::ProducerFenced);
        }
        if txn.started.is_none() {
            return Err(ResponseError::InvalidTxnState);
        }
        txn.partitions.insert(partition);
        Ok(())
    }

    /// Aborts every transaction open longer than its timeout, bumping its producer's epoch.
    pub fn abort_expired(&self, new_producer_id: impl Fn() -> i64) -> Vec<Ended> {
        let now = Instant::now();
        let mut inner = self.inner();
        let mut aborted = Vec::new();
        let mut moved = Vec::new();
        for (id, txn) in inner.by_id.iter_mut() {
            if txn
                .started
                .is_some_and(|s| now.duration_since(s) > txn.timeout)
            {
                let old_producer = txn.producer_id;
                txn.bump_epoch(&new_producer_id);
                tracing::warn!(transactional_id = %id, timeout = ?txn.timeout, "transaction timed out: aborted");
                aborted.push(txn.end(false));
                if txn.producer_id != old_producer {
                    moved.push((old_producer, txn.producer_id, id.clone()));
                }
            }
        }
        for (old, new, id) in moved {
            inner.by_producer.remove(&old);
            inner.by_producer.insert(new, id);
        }
        aborted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    fn ids() -> impl Fn() -> i64 {
        let next = AtomicI64::new(100);
        move || next.fetch_add(1, Ordering::Relaxed)
    }

    fn committed(offset: i64) -> OffsetCommit {
        (
            ("t".into(), 0),
            super::super::groups::Committed {
                offset,
                leader_epoch: -1,
                metadata: None,
            },
        )
    }

    #[test]
    fn a_transaction_commits_its_partitions_and_offsets() {
        let txns = Transactions::default();
        let new_id = ids();
        let (pid, epoch, aborted) = txns.init("tx", Duration::from_secs(60), &new_id);
        assert_eq!((pid, epoch, aborted), (100, 0, None));
        txns.add_partitions("tx", pid, epoch, [("t".into(), 0), ("u".into(), 1)])
            .expect("added");
        txns.add_offsets("tx", pid, epoch).expect("offsets");
        txns.stage_offsets("tx", pid, epoch, "g", vec![committed(5)])
            .expect("staged");
        let ended = txns
            .end("tx", pid, epoch, true)
            .expect("ended")
            .expect("markers");
        assert_eq!(ended.partitions, [("t".into(), 0), ("u".into(), 1)]);
        assert_eq!(ended.offsets, [("g".to_string(), vec![committed(5)])]);
        assert_eq!(
            txns.end("tx", pid, epoch, true),
            Ok(None),
            "a retry succeeds"
        );
        assert_eq!(
            txns.end("tx", pid, epoch, false),
            Err(ResponseError::InvalidTxnState)
        );
    }

    #[test]
    fn a_new_instance_fences_the_old_one_and_aborts_its_transaction() {
        let txns = Transactions::default();
        let new_id = ids();
        let (pid, epoch, _) = txns.init("tx", Duration::from_secs(60), &new_id);
        txns.produced(pid, epoch, ("t".into(), 0))
            .expect_err("no transaction open yet");
        txns.add_partitions("tx", pid, epoch, [("t".into(), 0)])
            .expect("added");
        txns.produced(pid, epoch, ("t".into(), 3))
            .expect("joins the transaction");

        let (same_pid, new_epoch, aborted) = txns.init("tx", Duration::from_secs(60), &new_id);
        assert_eq!((same_pid, new_epoch), (pid, 1));
        let aborted = aborted.expect("the old transaction is aborted");
        assert!(!aborted.commit);
        assert_eq!(aborted.partitions, [("t".into(), 0), ("t".into(), 3)]);
        assert_eq!(aborted.producer_epoch, 1, "markers fence the old epoch");
        assert_eq!(
            txns.add_partitions("tx", pid, epoch, [("t".into(), 0)]),
            Err(ResponseError::ProducerFenced)
        );
    }

    #[test]
    fn a_transaction_past_its_timeout_is_aborted() {
        let txns = Transactions::default();
        let new_id = ids();
        let (pid, epoch, _) = txns.init("tx", Duration::ZERO, &new_id);
        txns.add_partitions("tx", pid, epoch, [("t".into(), 0)])
            .expect("added");
        std::thread::sleep(Duration::from_millis(2));
        let aborted = txns.abort_expired(&new_id);
        assert_eq!(aborted.len(), 1);
        assert_eq!(aborted[0].producer_epoch, 1);
        assert!(txns.abort_expired(&new_id).is_empty());
        assert_eq!(
            txns.end("tx", pid, epoch, true),
            Err(ResponseError::ProducerFenced)
        );
    }
}
