//! Druid's `noop` task: sleeps `runTime` and succeeds. The start and end lines let tests and
//! operators see exactly when it ran.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use drover_core::{TaskId, TaskStatus};
use drover_task::NoopSpec;

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

pub fn run(id: &TaskId, spec: &NoopSpec) -> TaskStatus {
    println!(
        "noop task {id} started at {} runTime={}ms",
        now_ms(),
        spec.run_time_ms
    );
    std::thread::sleep(Duration::from_millis(spec.run_time_ms));
    println!("noop task {id} ended at {}", now_ms());
    TaskStatus::success(id.clone())
}
