//! Reading what a new leader needs from the metadata store, again and again until it answers:
//! a leader that gave up on a store outage at start would run without its tasks or supervisors.
//! The caller's task is cancelled when leadership ends, which ends the retrying too.

use std::future::Future;
use std::time::Duration;

/// Calls `attempt` until it succeeds, waiting 200 ms, then twice as long each time up to 10 s,
/// and logging every failure with `what`.
pub async fn until_ok<T, E: std::fmt::Display, Fut>(
    what: &str,
    mut attempt: impl FnMut() -> Fut,
) -> T
where
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Duration::from_millis(200);
    loop {
        match attempt().await {
            Ok(v) => return v,
            Err(e) => {
                tracing::error!(error = %e, "cannot {what} from the metadata store; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}
