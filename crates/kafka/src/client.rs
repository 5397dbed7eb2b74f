//! The supervisor's and the tasks' view of Kafka through librdkafka: consumer configuration as
//! Druid sets it (its own `kafka-supervisor-<random>` group, no auto-commit, `read_committed`),
//! partitions of a topic, and earliest/latest offsets. The calls block; callers run them on a
//! blocking thread.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::task::Offsets;

/// Consumer configuration: the user's properties, with Druid's fixed settings around them.
pub fn consumer_config(properties: &BTreeMap<String, String>) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set(
        "group.id",
        format!("kafka-supervisor-{}", crate::task::random_suffix()),
    );
    config.set("isolation.level", "read_committed");
    config.set("metadata.max.age.ms", "10000");
    // librdkafka waits this long before fetching again once its local queue is over
    // `queued.max.messages.kbytes` (default 1 s). A task that parses as fast as it can drains
    // that queue in well under a second and would then sit idle for the rest: measured, it read
    // at a third of its speed. The user's properties can still set it.
    config.set("fetch.queue.backoff.ms", "10");
    for (k, v) in properties {
        // Java-client-only settings librdkafka does not know would make it refuse to start.
        if JAVA_ONLY.contains(&k.as_str()) {
            continue;
        }
        config.set(k, v);
    }
    // Offsets live in the metadata store, never in Kafka.
    config.set("enable.auto.commit", "false");
    config.set("enable.auto.offset.store", "false");
    config
}

/// Properties Druid users write for the Java client that librdkafka does not have.
const JAVA_ONLY: &[&str] = &[
    "key.deserializer",
    "value.deserializer",
    "druid.dynamic.config.provider",
    "request.timeout.ms.config",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StreamError(pub String);

/// What the supervisor asks of Kafka.
pub struct StreamClient {
    consumer: BaseConsumer,
    timeout: Duration,
}

impl StreamClient {
    pub fn new(
        properties: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> Result<StreamClient, StreamError> {
        let consumer: BaseConsumer = consumer_config(properties)
            .create()
            .map_err(|e| StreamError(format!("cannot create a Kafka consumer: {e}")))?;
        Ok(StreamClient { consumer, timeout })
    }

    /// The topic's partition ids; an error if the topic is unknown.
    pub fn partitions(&self, topic: &str) -> Result<Vec<i32>, StreamError> {
        let md = self
            .consumer
            .fetch_metadata(Some(topic), self.timeout)
            .map_err(|e| StreamError(format!("cannot fetch metadata of topic [{topic}]: {e}")))?;
        let t = md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .ok_or_else(|| StreamError(format!("topic [{topic}] is not known to the brokers")))?;
        if let Some(e) = t.error() {
            return Err(StreamError(format!("topic [{topic}]: {e:?}")));
        }
        let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// Earliest and latest ("next to be written") offsets of each partition.
    pub fn watermarks(
        &self,
        topic: &str,
        partitions: &[i32],
    ) -> Result<(Offsets, Offsets), StreamError> {
        let mut earliest = Offsets::new();
        let mut latest = Offsets::new();
        for &p in partitions {
            let (lo, hi) = self
                .consumer
                .fetch_watermarks(topic, p, self.timeout)
                .map_err(|e| {
                    StreamError(format!(
                        "cannot fetch offsets of [{topic}] partition {p}: {e}"
                    ))
                })?;
            earliest.insert(p, lo);
            latest.insert(p, hi);
        }
        Ok((earliest, latest))
    }
}
