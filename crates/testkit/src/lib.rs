//! Starts real ZooKeeper and real Drover processes for tests and benchmarks, on free ports and in
//! temporary directories, and stops them all when dropped, also when a test fails.

mod client;
mod cluster;
mod process;
mod proxy;
pub mod s3;
mod zookeeper;

pub use client::{ApiClient, RawResponse};
pub use cluster::{Cluster, ClusterSpec, MiddleManagerSpec, Overlord, S3Storage};
pub use process::{bin_dir, binary, free_port, ManagedProcess};
pub use proxy::FreezableProxy;
pub use s3::S3Server;
pub use zookeeper::ZooKeeper;
