//! The scenario tests: real ZooKeeper, real databases, the real Kafka protocol and the real
//! Drover binaries as child processes, driven over HTTP only. One binary, so they share one
//! ZooKeeper server (`drover_testkit::ZooKeeper::shared`); run one module with
//! `cargo test -p drover-scenarios --test scenarios kafka_ingestion::`.

mod bad_input;
mod batch_ingestion;
mod cli;
mod console;
mod deploy;
mod failover;
mod failures;
mod hardening;
mod http_runner;
mod kafka_ingestion;
mod live_reports;
mod metrics;
mod middle_manager_restart;
mod openapi;
mod parallel_ingestion;
mod peon_launcher;
mod s3_storage;
mod safe_inputs;
mod security;
mod segment_lifecycle;
mod task_lifecycle;
mod task_locks;
mod worker_selection;
mod zookeeper_restart;
mod zookeeper_sessions;
