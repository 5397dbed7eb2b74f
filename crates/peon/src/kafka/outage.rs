//! Broker outages, as a reading task lives through them. librdkafka reports a broker restart, a
//! network blip or a leader change as consumer errors and reconnects by itself; Druid's Java
//! consumer simply keeps polling through them. So a task waits such errors out (and says so in
//! its log) and fails only on an error that will not go away by itself, or when no broker has
//! answered for `brokerOutageTimeout`.

use std::time::{Duration, Instant};

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// How often the log says the outage goes on.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Errors librdkafka recovers from by itself: connections, leaders and coordinators that come
/// and go. Everything else (offsets out of range, authorization, configuration, librdkafka's
/// fatal error) ends the task, as it did before.
pub fn is_transient(e: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    if matches!(e, KafkaError::MessageConsumptionFatal(_)) {
        return false;
    }
    matches!(
        e.rdkafka_error_code(),
        Some(
            BrokerTransportFailure
                | AllBrokersDown
                | Resolve
                | OperationTimedOut
                | RequestTimedOut
                | NetworkException
                | NotLeaderForPartition
                | LeaderNotAvailable
                | BrokerNotAvailable
                | ReplicaNotAvailable
                | UnknownTopicOrPartition
                | NotCoordinator
                | CoordinatorNotAvailable
                | CoordinatorLoadInProgress
                | KafkaStorageError
                | FencedLeaderEpoch
                | UnknownLeaderEpoch
                | OffsetNotAvailable
                | PreferredLeaderNotAvailable
                | NotEnoughReplicas
        )
    )
}

/// An outage under way: when it began and when the log last spoke of it.
#[derive(Debug, Clone)]
pub struct Outage {
    since: Instant,
    reported: Instant,
    timeout: Duration,
}

/// What the reading loop should do about an outage now.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Keep waiting; print the line, if any.
    Wait(Option<String>),
    /// Give up: the task fails with this reason.
    Fail(String),
}

impl Outage {
    /// The first transient error: the outage begins now.
    pub fn begin(now: Instant, error: &str, timeout: Duration) -> (Outage, String) {
        let line = format!(
            "cannot reach the Kafka brokers ({error}); reading waits for them \
             (the task fails after {timeout:?} without them, tuningConfig.brokerOutageTimeout)"
        );
        (
            Outage {
                since: now,
                reported: now,
                timeout,
            },
            line,
        )
    }

    /// Called on every further error and every empty poll while the outage lasts.
    pub fn check(&mut self, now: Instant, last_error: Option<&str>) -> Verdict {
        let lasted = now.saturating_duration_since(self.since);
        if lasted >= self.timeout {
            return Verdict::Fail(format!(
                "no Kafka broker could be reached for {:?} (tuningConfig.brokerOutageTimeout is \
                 {:?}){}",
                lasted,
                self.timeout,
                last_error
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default()
            ));
        }
        if now.saturating_duration_since(self.reported) >= REPORT_EVERY {
            self.reported = now;
            return Verdict::Wait(Some(format!(
                "still waiting for the Kafka brokers after {}s",
                lasted.as_secs()
            )));
        }
        Verdict::Wait(None)
    }

    /// The line the log prints when the brokers answer again.
    pub fn end(&self, now: Instant) -> String {
        format!(
            "Kafka brokers reachable again after {} ms; reading goes on",
            now.saturating_duration_since(self.since).as_millis()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_and_leader_errors_are_waited_out_offset_errors_are_not() {
        let consumption = |code| KafkaError::MessageConsumption(code);
        assert!(is_transient(&consumption(
            RDKafkaErrorCode::BrokerTransportFailure
        )));
        assert!(is_transient(&consumption(RDKafkaErrorCode::AllBrokersDown)));
        assert!(is_transient(&consumption(
            RDKafkaErrorCode::NotLeaderForPartition
        )));
        assert!(!is_transient(&consumption(
            RDKafkaErrorCode::OffsetOutOfRange
        )));
        assert!(!is_transient(&consumption(
            RDKafkaErrorCode::TopicAuthorizationFailed
        )));
        assert!(!is_transient(&consumption(RDKafkaErrorCode::Fatal)));
        assert!(!is_transient(&KafkaError::Canceled));
        // librdkafka's own word that an error is fatal wins over its code.
        assert!(!is_transient(&KafkaError::MessageConsumptionFatal(
            RDKafkaErrorCode::BrokerTransportFailure
        )));
    }

    #[test]
    fn an_outage_is_reported_now_and_then_and_fails_at_its_timeout() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let (mut outage, first) = Outage::begin(t0, "transport failure", s(60));
        assert!(first.contains("transport failure") && first.contains("60s"));
        assert_eq!(outage.check(t0 + s(3), None), Verdict::Wait(None));
        let Verdict::Wait(Some(line)) = outage.check(t0 + s(10), None) else {
            panic!("reported after 10 s")
        };
        assert!(line.contains("10s"));
        assert_eq!(outage.check(t0 + s(12), None), Verdict::Wait(None));
        let Verdict::Fail(reason) = outage.check(t0 + s(60), Some("all brokers down")) else {
            panic!("fails at the timeout")
        };
        assert!(reason.contains("brokerOutageTimeout") && reason.contains("all brokers down"));
        assert!(outage.end(t0 + s(5)).contains("5000 ms"));
    }
}
