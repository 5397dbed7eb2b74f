//! The lifetime of one leadership term. The queue, the runner, the supervisors and the I/O they
//! start (ZooKeeper writes, calls to workers and tasks) are spawned in the term's scope; stepping
//! down cancels them all and waits until they are gone, so nothing of a deposed term is still
//! writing while a new one starts.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone, Default)]
pub struct LeaderScope {
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl LeaderScope {
    pub fn new() -> LeaderScope {
        LeaderScope::default()
    }

    /// Runs `work` until it ends or the term does.
    pub fn spawn(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.tasks
            .spawn(self.stop.clone().run_until_cancelled_owned(work));
    }

    /// Runs `step` every `period` (the first at once; ticks missed while a step runs are not
    /// made up) until the term ends: the leader's periodic duties.
    pub fn spawn_every<F, Fut>(&self, period: Duration, mut step: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                step().await;
            }
        });
    }

    /// Cancels everything in the scope and waits up to `within` for it to finish; whether it
    /// did.
    pub async fn end(&self, within: Duration) -> bool {
        self.stop.cancel();
        self.tasks.close();
        tokio::time::timeout(within, self.tasks.wait())
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ending_the_scope_cancels_and_joins_its_work() {
        let scope = LeaderScope::new();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        scope.spawn(async move {
            // Holds the sender until cancelled.
            let _tx = tx;
            std::future::pending::<()>().await;
        });
        assert!(scope.end(Duration::from_secs(1)).await);
        // The work is gone: its sender was dropped.
        assert!(rx.recv().await.is_none());
    }
}
