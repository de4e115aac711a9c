//! The broker's topics: names, ids and partition logs; created, grown and deleted by the
//! admin requests (or on first use, when auto-creation is on).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use super::configs::{ConfigError, TopicConfigs};
use super::disk::{Disk, TopicEntry};
use super::limits::Limits;
use super::log::PartitionLog;

/// Longest topic name Kafka accepts.
const MAX_NAME_LEN: usize = 249;

/// Most partitions one topic may have (a guard against a typo such as `--partitions 100000`).
pub const MAX_PARTITIONS: i32 = 10_000;

/// A topic and its partitions.
#[derive(Debug)]
pub struct Topic {
    /// Its name.
    pub name: String,
    /// Its id (Metadata v10 and later carry it).
    pub id: uuid::Uuid,
    /// One log per partition, by partition index.
    pub partitions: Vec<Arc<Mutex<PartitionLog>>>,
    /// The configs it was given (the rest are Kafka's defaults).
    pub configs: TopicConfigs,
}

impl Topic {
    /// The log of partition `index`, if the topic has it.
    pub fn partition(&self, index: i32) -> Option<&Arc<Mutex<PartitionLog>>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }
}

/// Why a topic request failed (each maps to a Kafka error code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// No such topic.
    #[error("topic `{0}` does not exist")]
    Unknown(String),
    /// Creating a topic that exists.
    #[error("topic `{0}` already exists")]
    AlreadyExists(String),
    /// A name Kafka would refuse.
    #[error("invalid topic name `{name}`: {why}")]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A partition count out of range, or smaller than the topic has.
    #[error("{0}")]
    InvalidPartitions(String),
    /// A config Kafka does not know, or a value it would refuse.
    #[error(transparent)]
    InvalidConfig(#[from] ConfigError),
    /// The broker holds as many topics or partitions as its limits allow.
    #[error("{0}")]
    LimitReached(String),
    /// The data directory could not be written (`edm broker --data-dir`).
    #[error("cannot write the broker's data directory: {0}")]
    Storage(String),
}

/// Locks a partition log. A panic while the lock was held leaves the log as it was after
/// the panicking step (each step changes it in one go), so the lock is taken over.
pub fn lock(log: &Mutex<PartitionLog>) -> MutexGuard<'_, PartitionLog> {
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Every topic of the broker.
#[derive(Debug)]
pub struct Topics {
    by_name: RwLock<HashMap<String, Arc<Topic>>>,
    /// Partitions of all topics together (changed only under the write lock).
    partitions: AtomicU64,
    /// Most topics and partitions held at once (`--max-topics`, `--max-partitions`).
    max_topics: u64,
    max_partitions: u64,
    /// Where topics and their batches are kept, if anywhere but memory.
    disk: Option<Arc<Disk>>,
}

impl Default for Topics {
    fn default() -> Self {
        let limits = Limits::default();
        Self {
            by_name: RwLock::default(),
            partitions: AtomicU64::new(0),
            max_topics: limits.max_topics,
            max_partitions: limits.max_partitions,
            disk: None,
        }
    }
}

impl Topics {
    /// Topics kept on `disk`, starting with those it held.
    pub fn on_disk(disk: Arc<Disk>, recovered: Vec<(TopicEntry, Vec<PartitionLog>)>) -> Self {
        let by_name = recovered
            .into_iter()
            .map(|(entry, logs)| {
                let topic = Topic {
                    name: entry.name.clone(),
                    id: entry.id,
                    partitions: logs.into_iter().map(|l| Arc::new(Mutex::new(l))).collect(),
                    configs: entry.configs,
                };
                (entry.name, Arc::new(topic))
            })
            .collect();
        let topics = Self {
            by_name: RwLock::new(by_name),
            disk: Some(disk),
            ..Self::default()
        };
        let partitions = topics
            .read()
            .values()
            .map(|t| t.partitions.len() as u64)
            .sum();
        topics.partitions.store(partitions, Ordering::Relaxed);
        topics
    }

    /// Holds at most `limits`' topics and partitions from now on (those held already
    /// stay).
    pub fn set_limits(&mut self, limits: &Limits) {
        self.max_topics = limits.max_topics;
        self.max_partitions = limits.max_partitions;
    }

    /// Refuses `added` more partitions (and a topic more, when `new_topic`) past the
    /// limits, as a policy would (POLICY_VIOLATION): `topics` is the map under its write
    /// lock.
    fn check_room(
        &self,
        topics: &HashMap<String, Arc<Topic>>,
        new_topic: bool,
        added: u64,
    ) -> Result<(), TopicError> {
        if new_topic && topics.len() as u64 >= self.max_topics {
            return Err(TopicError::LimitReached(format!(
                "the broker holds {} topics, its limit (edm broker --max-topics)",
                topics.len()
            )));
        }
        let held = self.partitions.load(Ordering::Relaxed);
        if held + added > self.max_partitions {
            return Err(TopicError::LimitReached(format!(
                "the broker holds {held} partitions and {added} more would pass its limit of {} \
                 (edm broker --max-partitions)",
                self.max_partitions
            )));
        }
        Ok(())
    }

    /// A new, empty partition (writing to its file, if topics are on disk).
    fn new_partition(
        &self,
        topic: &str,
        index: usize,
    ) -> Result<Arc<Mutex<PartitionLog>>, TopicError> {
        let log = match &self.disk {
            Some(disk) => disk
                .new_partition(topic, index as i32)
                .map_err(|e| TopicError::Storage(e.to_string()))?,
            None => PartitionLog::default(),
        };
        Ok(Arc::new(Mutex::new(log)))
    }

    /// Rewrites the topic list on disk (when there is one).
    fn save(&self, topics: &HashMap<String, Arc<Topic>>) -> Result<(), TopicError> {
        let Some(disk) = &self.disk else {
            return Ok(());
        };
        let entries: Vec<TopicEntry> = topics
            .values()
            .map(|t| TopicEntry {
                name: t.name.clone(),
                id: t.id,
                partitions: t.partitions.len() as i32,
                configs: t.configs.clone(),
            })
            .collect();
        disk.save_topics(&entries)
            .map_err(|e| TopicError::Storage(e.to_string()))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Topic>>> {
        self.by_name.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Topic>>> {
        self.by_name.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The topic called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.read().get(name).cloned()
    }

    /// The topic with id `id`.
    pub fn by_id(&self, id: uuid::Uuid) -> Option<Arc<Topic>> {
        self.read().values().find(|t| t.id == id).cloned()
    }

    /// Every topic, by name.
    pub fn all(&self) -> Vec<Arc<Topic>> {
        let mut topics: Vec<Arc<Topic>> = self.read().values().cloned().collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
    }

    /// The log of `name`'s partition `index`.
    pub fn partition(&self, name: &str, index: i32) -> Option<Arc<Mutex<PartitionLog>>> {
        self.read()
            .get(name)
            .and_then(|t| t.partition(index).cloned())
    }

    /// Checks what creating `name` with `partitions` partitions would do, without doing it.
    pub fn check_new(&self, name: &str, partitions: i32) -> Result<(), TopicError> {
        validate_name(name)?;
        validate_count(partitions)?;
        let topics = self.read();
        if topics.contains_key(name) {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        self.check_room(&topics, true, partitions as u64)
    }

    /// Creates `name` with `partitions` empty partitions and `configs`.
    pub fn create(
        &self,
        name: &str,
        partitions: i32,
        configs: TopicConfigs,
    ) -> Result<Arc<Topic>, TopicError> {
        validate_name(name)?;
        validate_count(partitions)?;
        let mut topics = self.write();
        if topics.contains_key(name) {
            return Err(TopicError::AlreadyExists(name.to_string()));
        }
        self.check_room(&topics, true, partitions as u64)?;
        let partitions = (0..partitions as usize)
            .map(|index| self.new_partition(name, index))
            .collect::<Result<Vec<_>, _>>()?;
        let topic = Arc::new(Topic {
            name: name.to_string(),
            id: uuid::Uuid::new_v4(),
            partitions,
            configs,
        });
        topics.insert(name.to_string(), topic.clone());
        self.partitions
            .fetch_add(topic.partitions.len() as u64, Ordering::Relaxed);
        self.save(&topics)?;
        Ok(topic)
    }

    /// `name`, created with `partitions` partitions if it does not exist yet.
    pub fn get_or_create(&self, name: &str, partitions: i32) -> Result<Arc<Topic>, TopicError> {
        match self.create(name, partitions, TopicConfigs::default()) {
            Err(TopicError::AlreadyExists(_)) => self
                .get(name)
                .ok_or_else(|| TopicError::Unknown(name.into())),
            other => other,
        }
    }

    /// Grows `name` to `count` partitions (the existing ones keep their data); with
    /// `apply` false only checks.
    pub fn grow(&self, name: &str, count: i32, apply: bool) -> Result<(), TopicError> {
        validate_count(count)?;
        let mut topics = self.write();
        let topic = topics
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let current = topic.partitions.len();
        let wanted = usize::try_from(count).unwrap_or(0);
        if wanted <= current {
            return Err(TopicError::InvalidPartitions(format!(
                "topic `{name}` has {current} partitions; the count can only grow (asked for {count})"
            )));
        }
        self.check_room(&topics, false, (wanted - current) as u64)?;
        if apply {
            let mut partitions = topic.partitions.clone();
            for index in current..wanted {
                partitions.push(self.new_partition(name, index)?);
            }
            let grown = Arc::new(Topic {
                name: topic.name.clone(),
                id: topic.id,
                partitions,
                configs: topic.configs.clone(),
            });
            topics.insert(name.to_string(), grown);
            self.partitions
                .fetch_add((wanted - current) as u64, Ordering::Relaxed);
            self.save(&topics)?;
        }
        Ok(())
    }

    /// Gives `name` the configs `change` makes of its current ones (AlterConfigs,
    /// IncrementalAlterConfigs); with `apply` false, only checks them.
    pub fn alter_configs(
        &self,
        name: &str,
        apply: bool,
        change: impl FnOnce(&TopicConfigs) -> Result<TopicConfigs, ConfigError>,
    ) -> Result<(), TopicError> {
        let mut topics = self.write();
        let topic = topics
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let configs = change(&topic.configs)?;
        if apply {
            let altered = Arc::new(Topic {
                name: topic.name.clone(),
                id: topic.id,
                partitions: topic.partitions.clone(),
                configs,
            });
            topics.insert(name.to_string(), altered);
            self.save(&topics)?;
        }
        Ok(())
    }

    /// Deletes `name` and its data.
    pub fn delete(&self, name: &str) -> Result<Arc<Topic>, TopicError> {
        let mut topics = self.write();
        let topic = topics
            .remove(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        self.partitions
            .fetch_sub(topic.partitions.len() as u64, Ordering::Relaxed);
        self.save(&topics)?;
        if let Some(disk) = &self.disk {
            disk.remove_partitions(name, topic.partitions.len());
        }
        Ok(topic)
    }
}

fn validate_count(partitions: i32) -> Result<(), TopicError> {
    if !(1..=MAX_PARTITIONS).contains(&partitions) {
        return Err(TopicError::InvalidPartitions(format!(
            "{partitions} partitions: a topic has 1 to {MAX_PARTITIONS}"
        )));
    }
    Ok(())
}

/// Kafka's rule: 1–249 characters of `a-z A-Z 0-9 . _ -`, and not `.` or `..`.
fn validate_name(name: &str) -> Result<(), TopicError> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name == "." || name == ".." {
        Some("`.` and `..` are not allowed")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is longer than 249 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Some("only letters, digits, `.`, `_` and `-` are allowed")
    } else {
        None
    };
    match why {
        Some(why) => Err(TopicError::InvalidName {
            name: name.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
