//! Tells an `index_parallel` task as soon as one of its sub-tasks has ended, on the task's chat
//! API. Without it the task learns of the end on its next status poll: up to a poll interval
//! later, and a parallel task's run ends one phase after another, so every phase would pay it.
//! The call is a hint: the task asks the overlord for the sub-task's status and acts on that,
//! and still polls now and then, so a hint that is lost (the task's port unreachable, a new
//! leader that stored the status before it started listening) costs time, never a result.

use drover_core::{RunnerTaskState, TaskId};
use tokio::sync::broadcast::error::RecvError;

use crate::queue::{Completed, QueueHandle};
use crate::runner::{RunnerHandle, TaskFilter};
use crate::scope::LeaderScope;
use crate::supervisor::chat::{chat_base, ChatClient};

/// Listens for the rest of the term. Each hint is a call of its own, so a slow task delays only
/// its own.
pub fn start(queue: &QueueHandle, runner: RunnerHandle, chat: ChatClient, scope: &LeaderScope) {
    let mut completions = queue.completions();
    let calls = scope.clone();
    scope.spawn(async move {
        loop {
            match completions.recv().await {
                Ok(Completed {
                    status,
                    supervisor: Some(supervisor),
                }) => {
                    let (runner, chat) = (runner.clone(), chat.clone());
                    calls.spawn(async move {
                        tell(&runner, &chat, &supervisor, &status.id).await;
                    });
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "sub-task ends not told: their tasks poll for them");
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
}

async fn tell(runner: &RunnerHandle, chat: &ChatClient, supervisor: &TaskId, sub_task: &TaskId) {
    let view = runner
        .tasks(TaskFilter::One(supervisor.clone()))
        .await
        .and_then(|mut found| found.pop());
    let Some(base) = view
        .filter(|v| v.state == RunnerTaskState::Running)
        .and_then(|v| chat_base(&v.location))
    else {
        return;
    };
    if let Err(e) = chat.sub_task_ended(&base, supervisor, sub_task).await {
        tracing::debug!(task = %supervisor, sub_task = %sub_task, error = %e,
            "cannot tell the task its sub-task ended; it will see it on its next poll");
    }
}
