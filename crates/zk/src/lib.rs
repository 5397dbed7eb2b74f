//! ZooKeeper for Drover: Druid's indexer paths, payload codec (plain or gzipped JSON), and a
//! session keeper that replaces an expired session with a new one.

mod codec;
mod latch;
mod paths;
mod session;

pub use codec::{decode_json, encode_json, CodecError};
pub use latch::{participants, LatchState, LeaderLatch};
pub use paths::ZkPaths;
pub use session::{claim_ephemeral, ensure_path, with_timeout, ZkError, ZkSession, CALL_TIMEOUT};
pub use zookeeper_client as client;
