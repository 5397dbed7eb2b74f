//! Starts real ZooKeeper and real Drover processes for tests and benchmarks, on free ports and in
//! temporary directories, and stops them all when dropped, also when a test fails.

mod client;
mod cluster;
mod process;
mod proxy;
mod zookeeper;

pub use client::{ApiClient, RawResponse};
pub use cluster::{Cluster, ClusterSpec, MiddleManagerSpec, Overlord};
pub use process::{bin_dir, binary, free_port, ManagedProcess};
pub use proxy::FreezableProxy;
pub use zookeeper::ZooKeeper;
