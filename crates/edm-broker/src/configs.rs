//! Topic configs: the keys Apache Kafka knows for a topic, with its defaults, and the
//! values a topic was given (CreateTopics, AlterConfigs, IncrementalAlterConfigs). What
//! DescribeConfigs answers, and what the broker acts on: `max.message.bytes` (produce),
//! `cleanup.policy` (a compacted topic refuses records without a key).
//!
//! `retention.bytes` bounds each partition (the broker's `--retention-bytes` when the
//! topic does not set it: edm keeps partitions in memory). Nothing else deletes records:
//! `cleanup.policy=compact` keeps every record, as Apache Kafka keeps every record of a
//! segment still active (README, "edm broker and Apache Kafka").

use std::collections::BTreeMap;

/// What kind of value a config takes (DescribeConfigs v3+ `config_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

/// A topic config Kafka knows: its name, kind and default (Apache Kafka 4.x's).
#[derive(Debug, Clone, Copy)]
pub struct Known {
    pub name: &'static str,
    pub kind: Kind,
    pub default: &'static str,
}

const fn known(name: &'static str, kind: Kind, default: &'static str) -> Known {
    Known {
        name,
        kind,
        default,
    }
}

/// Apache Kafka 4.x's topic configs and defaults (`TopicConfig`, `LogConfig`), the ones a
/// broker without tiered storage describes.
pub const KNOWN: &[Known] = &[
    known("cleanup.policy", Kind::List, "delete"),
    known("compression.gzip.level", Kind::Int, "-1"),
    known("compression.lz4.level", Kind::Int, "9"),
    known("compression.type", Kind::String, "producer"),
    known("compression.zstd.level", Kind::Int, "3"),
    known("delete.retention.ms", Kind::Long, "86400000"),
    known("file.delete.delay.ms", Kind::Long, "60000"),
    known("flush.messages", Kind::Long, "9223372036854775807"),
    known("flush.ms", Kind::Long, "9223372036854775807"),
    known("index.interval.bytes", Kind::Int, "4096"),
    known("max.compaction.lag.ms", Kind::Long, "9223372036854775807"),
    known("max.message.bytes", Kind::Int, "1048588"),
    known("message.timestamp.after.max.ms", Kind::Long, "3600000"),
    known(
        "message.timestamp.before.max.ms",
        Kind::Long,
        "9223372036854775807",
    ),
    known("message.timestamp.type", Kind::String, "CreateTime"),
    known("min.cleanable.dirty.ratio", Kind::Double, "0.5"),
    known("min.compaction.lag.ms", Kind::Long, "0"),
    known("min.insync.replicas", Kind::Int, "1"),
    known("preallocate", Kind::Boolean, "false"),
    known("retention.bytes", Kind::Long, "-1"),
    known("retention.ms", Kind::Long, "604800000"),
    known("segment.bytes", Kind::Int, "1073741824"),
    known("segment.index.bytes", Kind::Int, "10485760"),
    known("segment.jitter.ms", Kind::Long, "0"),
    known("segment.ms", Kind::Long, "604800000"),
    known("unclean.leader.election.enable", Kind::Boolean, "false"),
];

/// Why a config was refused (Kafka's INVALID_CONFIG).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown topic config name: {0}")]
    Unknown(String),
    #[error("invalid value {value} for configuration {name}: {why}")]
    Invalid {
        name: String,
        value: String,
        why: &'static str,
    },
}

fn find(name: &str) -> Option<&'static Known> {
    KNOWN.iter().find(|k| k.name == name)
}

/// Checks one config as Kafka would before taking it.
pub fn check(name: &str, value: &str) -> Result<(), ConfigError> {
    let known = find(name).ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
    let invalid = |why| ConfigError::Invalid {
        name: name.to_string(),
        value: value.to_string(),
        why,
    };
    let value = value.trim();
    match known.kind {
        Kind::Boolean if !matches!(value, "true" | "false") => Err(invalid("not true or false")),
        Kind::Int if value.parse::<i32>().is_err() => Err(invalid("not a 32-bit integer")),
        Kind::Long if value.parse::<i64>().is_err() => Err(invalid("not a 64-bit integer")),
        Kind::Double if value.parse::<f64>().is_err() => Err(invalid("not a number")),
        _ => match name {
            "cleanup.policy"
                if value.is_empty()
                    || !value
                        .split(',')
                        .all(|p| matches!(p.trim(), "delete" | "compact")) =>
            {
                Err(invalid("each policy is delete or compact"))
            }
            "message.timestamp.type" if !matches!(value, "CreateTime" | "LogAppendTime") => {
                Err(invalid("CreateTime or LogAppendTime"))
            }
            "max.message.bytes" | "retention.bytes" | "retention.ms"
                if value.parse::<i64>().is_ok_and(|v| v < -1) =>
            {
                Err(invalid("at least -1"))
            }
            "max.message.bytes" if value.parse::<i64>().is_ok_and(|v| v < 0) => {
                Err(invalid("at least 0"))
            }
            _ => Ok(()),
        },
    }
}

/// Where a described value comes from (DescribeConfigs `config_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Set on the topic.
    Topic = 1,
    /// A broker setting from its command line (Kafka's server.properties).
    StaticBroker = 4,
    /// Kafka's default.
    Default = 5,
}

/// One described config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub name: &'static str,
    pub value: String,
    pub source: Source,
    pub kind: Kind,
}

/// The configs set on one topic (the rest are Kafka's defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct TopicConfigs(BTreeMap<String, String>);

impl TopicConfigs {
    /// Configs from `pairs`, each checked.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let mut configs = Self::default();
        for (name, value) in pairs {
            configs.set(name, value)?;
        }
        Ok(configs)
    }

    /// Sets `name` to `value`, checked.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        check(name, value)?;
        self.0.insert(name.to_string(), value.trim().to_string());
        Ok(())
    }

    /// Back to Kafka's default.
    pub fn reset(&mut self, name: &str) -> Result<(), ConfigError> {
        find(name).ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
        self.0.remove(name);
        Ok(())
    }

    /// `name`'s value: set, or Kafka's default (`None` for a name Kafka does not know).
    pub fn value(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .or_else(|| find(name).map(|k| k.default))
    }

    /// The largest record batch a producer may send (`max.message.bytes`).
    pub fn max_message_bytes(&self) -> usize {
        self.value("max.message.bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_048_588)
    }

    /// Whether the topic keeps the latest record per key (`cleanup.policy` has
    /// `compact`): its records must have a key.
    pub fn compacted(&self) -> bool {
        self.value("cleanup.policy")
            .is_some_and(|p| p.split(',').any(|p| p.trim() == "compact"))
    }

    /// Bytes each partition keeps (`retention.bytes`, or the broker's
    /// `--retention-bytes` when the topic does not set it); `None`: everything, as for a
    /// compacted topic (edm broker does not compact) or a negative value.
    pub fn retention_bytes(&self, broker_default: i64) -> Option<u64> {
        if self.compacted() {
            return None;
        }
        let value = match self.0.get("retention.bytes") {
            Some(value) => value.parse().unwrap_or(-1),
            None => broker_default,
        };
        u64::try_from(value).ok()
    }

    /// Every known config, or those of `names` (unknown names left out, as Kafka does);
    /// `retention.bytes` defaults to the broker's `retention_default`.
    pub fn describe(&self, names: Option<&[String]>, retention_default: i64) -> Vec<Described> {
        KNOWN
            .iter()
            .filter(|k| names.is_none_or(|names| names.iter().any(|n| n == k.name)))
            .map(|k| match self.0.get(k.name) {
                Some(value) => Described {
                    name: k.name,
                    value: value.clone(),
                    source: Source::Topic,
                    kind: k.kind,
                },
                None => Described {
                    name: k.name,
                    value: match k.name {
                        "retention.bytes" => retention_default.to_string(),
                        _ => k.default.to_string(),
                    },
                    source: Source::Default,
                    kind: k.kind,
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_are_checked_as_kafka_checks_them() {
        assert!(TopicConfigs::from_pairs([("cleanup.policy", "compact")]).is_ok());
        assert!(TopicConfigs::from_pairs([("cleanup.policy", "compact,delete")]).is_ok());
        assert!(matches!(
            TopicConfigs::from_pairs([("cleanup.policy", "shred")]),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            TopicConfigs::from_pairs([("retention.mss", "1")]),
            Err(ConfigError::Unknown(_))
        ));
        assert!(TopicConfigs::from_pairs([("max.message.bytes", "big")]).is_err());
    }

    #[test]
    fn a_topic_describes_what_it_was_given_and_defaults_for_the_rest() {
        let configs = TopicConfigs::from_pairs([("cleanup.policy", "compact")]).expect("valid");
        assert!(configs.compacted());
        let names = ["cleanup.policy".to_string(), "retention.ms".to_string()];
        let described = configs.describe(Some(&names), -1);
        assert_eq!(described.len(), 2);
        assert_eq!(
            (described[0].value.as_str(), described[0].source),
            ("compact", Source::Topic)
        );
        assert_eq!(
            (described[1].value.as_str(), described[1].source),
            ("604800000", Source::Default)
        );
        assert!(!TopicConfigs::default().compacted());
        assert_eq!(TopicConfigs::default().max_message_bytes(), 1_048_588);
    }
}
