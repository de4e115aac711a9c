//! The newest messages of each topic, as the view's Topics tab shows them: the saga's
//! topics and their dead-letter topics, poison messages included (they name no saga).
//! Bounded: [`TAIL_LEN`] messages per topic, bodies cut at [`MAX_BODY`] bytes.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;

/// Messages kept per topic.
pub const TAIL_LEN: usize = 100;

/// Bytes of a body kept (the rest is cut, and said so).
pub const MAX_BODY: usize = 8 * 1024;

/// One message as the tail keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub partition: i32,
    pub offset: i64,
    pub at_ms: Option<i64>,
    pub key: Option<String>,
    /// The saga message's name (`?` for one that is none).
    pub name: String,
    /// Its size in bytes.
    pub size: usize,
    #[serde(skip)]
    body: String,
}

/// A topic as the Topics tab lists it.
#[derive(Debug, Clone, Serialize)]
pub struct TopicSeen {
    pub topic: String,
    /// Messages read from it since the view started.
    pub seen: u64,
}

/// The newest messages of each topic.
#[derive(Debug, Default)]
pub struct Tail {
    topics: HashMap<String, (u64, VecDeque<Line>)>,
}

impl Tail {
    /// Keeps one message of `topic`.
    pub fn take(
        &mut self,
        topic: &str,
        position: (i32, i64),
        at_ms: Option<i64>,
        key: Option<&[u8]>,
        payload: &[u8],
        name: &str,
    ) {
        let kept = &payload[..payload.len().min(MAX_BODY)];
        let mut body = String::from_utf8_lossy(kept).into_owned();
        if payload.len() > MAX_BODY {
            body.push_str(&format!("… ({} bytes in all)", payload.len()));
        }
        let (seen, lines) = self.topics.entry(topic.to_string()).or_default();
        *seen += 1;
        if lines.len() == TAIL_LEN {
            lines.pop_front();
        }
        lines.push_back(Line {
            partition: position.0,
            offset: position.1,
            at_ms,
            key: key.map(|k| String::from_utf8_lossy(&k[..k.len().min(256)]).into_owned()),
            name: name.to_string(),
            size: payload.len(),
            body,
        });
    }

    /// The topics seen, by name.
    pub fn topics(&self) -> Vec<TopicSeen> {
        let mut topics: Vec<TopicSeen> = self
            .topics
            .iter()
            .map(|(topic, (seen, _))| TopicSeen {
                topic: topic.clone(),
                seen: *seen,
            })
            .collect();
        topics.sort_by(|a, b| a.topic.cmp(&b.topic));
        topics
    }

    /// The newest messages of `topic`, newest first.
    pub fn newest(&self, topic: &str) -> Option<Vec<Line>> {
        self.topics
            .get(topic)
            .map(|(_, lines)| lines.iter().rev().cloned().collect())
    }

    /// The body of one message, if it is still kept.
    pub fn body(&self, topic: &str, partition: i32, offset: i64) -> Option<String> {
        self.topics.get(topic).and_then(|(_, lines)| {
            lines
                .iter()
                .find(|l| (l.partition, l.offset) == (partition, offset))
                .map(|l| l.body.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_keeps_the_newest_messages_bounded_and_their_bodies_cut() {
        let mut tail = Tail::default();
        for offset in 0..(TAIL_LEN as i64 + 5) {
            tail.take("t", (0, offset), Some(offset), None, b"{}", "?");
        }
        let big = vec![b'x'; MAX_BODY + 10];
        tail.take("t", (0, 999), None, Some(b"k"), &big, "?");
        let newest = tail.newest("t").expect("topic");
        assert_eq!(newest.len(), TAIL_LEN);
        assert_eq!(
            (newest[0].offset, newest[1].offset),
            (999, TAIL_LEN as i64 + 4)
        );
        assert_eq!(tail.topics()[0].seen, TAIL_LEN as u64 + 6);
        let body = tail.body("t", 0, 999).expect("body");
        assert!(body.ends_with(&format!("… ({} bytes in all)", MAX_BODY + 10)));
        assert!(tail.body("t", 0, 0).is_none(), "dropped with its line");
    }
}
