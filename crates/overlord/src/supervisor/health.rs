//! A supervisor's state machine (see docs/architecture.md, Druid's `SupervisorStateManager`): each run
//! and each finished task is recorded; thresholds of consecutive failures make it unhealthy and
//! consecutive successes make it healthy again; the steady state shows only after a first fully
//! successful run. Pure; unit-tested.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// Druid's defaults for all four thresholds.
const THRESHOLD: u32 = 3;
const MAX_STORED_ERRORS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Running,
    Suspended,
    Stopping,
    UnhealthySupervisor,
    UnhealthyTasks,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Pending => "PENDING",
            State::Running => "RUNNING",
            State::Suspended => "SUSPENDED",
            State::Stopping => "STOPPING",
            State::UnhealthySupervisor => "UNHEALTHY_SUPERVISOR",
            State::UnhealthyTasks => "UNHEALTHY_TASKS",
        }
    }

    pub fn healthy(self) -> bool {
        !matches!(self, State::UnhealthySupervisor | State::UnhealthyTasks)
    }
}

#[derive(Debug, Clone)]
pub struct Health {
    state: State,
    /// Stream-specific detail of an unhealthy supervisor or of the first run.
    detail: Option<&'static str>,
    failed_runs: u32,
    good_runs: u32,
    failed_tasks: u32,
    good_tasks: u32,
    /// A run failed while this one was going on.
    run_failed: bool,
    ever_connected: bool,
    first_run_done: bool,
    errors: VecDeque<(DateTime<Utc>, String, String)>,
}

impl Health {
    pub fn new() -> Health {
        Health {
            state: State::Pending,
            detail: None,
            failed_runs: 0,
            good_runs: 0,
            failed_tasks: 0,
            good_tasks: 0,
            run_failed: false,
            ever_connected: false,
            first_run_done: false,
            errors: VecDeque::new(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// `detailedState`: the stream's detail where there is one, else the state.
    pub fn detailed(&self) -> &'static str {
        match (self.state, self.detail) {
            (State::UnhealthySupervisor, Some(d)) => d,
            (State::Pending, Some(d)) => d,
            (s, _) => s.name(),
        }
    }

    /// Reading from Kafka worked this run.
    pub fn connected(&mut self) {
        self.ever_connected = true;
        if self.state == State::Pending {
            self.detail = Some("DISCOVERING_INITIAL_TASKS");
        }
    }

    /// Something in this run failed: kept for `recentErrors`; the run counts as failed.
    pub fn error(&mut self, now: DateTime<Utc>, class: &str, message: String, stream: bool) {
        self.run_failed = true;
        if stream {
            self.detail = Some(if self.ever_connected {
                "LOST_CONTACT_WITH_STREAM"
            } else {
                "UNABLE_TO_CONNECT_TO_STREAM"
            });
        }
        self.errors.push_back((now, class.to_string(), message));
        while self.errors.len() > MAX_STORED_ERRORS {
            self.errors.pop_front();
        }
    }

    pub fn task_finished(&mut self, success: bool) {
        if success {
            self.good_tasks += 1;
            self.failed_tasks = 0;
        } else {
            self.failed_tasks += 1;
            self.good_tasks = 0;
        }
    }

    /// The end of a run: counters move and the state follows. `suspended` is the steady state
    /// the spec asks for.
    pub fn run_finished(&mut self, suspended: bool) {
        if self.run_failed {
            self.failed_runs += 1;
            self.good_runs = 0;
        } else {
            self.good_runs += 1;
            self.failed_runs = 0;
            self.first_run_done = true;
        }
        self.run_failed = false;
        let steady = if suspended {
            State::Suspended
        } else {
            State::Running
        };
        // Unhealthy past the failure threshold, and until as many successes in a row.
        self.state = if self.failed_runs >= THRESHOLD
            || (self.state == State::UnhealthySupervisor && self.good_runs < THRESHOLD)
        {
            State::UnhealthySupervisor
        } else if self.failed_tasks >= THRESHOLD
            || (self.state == State::UnhealthyTasks && self.good_tasks < THRESHOLD)
        {
            State::UnhealthyTasks
        } else if self.first_run_done {
            steady
        } else {
            State::Pending
        };
        if self.state != State::UnhealthySupervisor && self.first_run_done {
            self.detail = None;
        }
    }

    pub fn stopping(&mut self) {
        self.state = State::Stopping;
    }

    pub fn recent_errors(&self) -> Value {
        Value::Array(
            self.errors
                .iter()
                .map(|(t, class, message)| {
                    json!({
                        "timestamp": drover_core::time::to_iso(*t),
                        "exceptionClass": class,
                        "message": message,
                    })
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_until_a_good_run_then_steady() {
        let mut h = Health::new();
        assert_eq!(h.state(), State::Pending);
        h.error(Utc::now(), "StreamException", "no broker".into(), true);
        h.run_finished(false);
        assert_eq!(h.state(), State::Pending);
        assert_eq!(h.detailed(), "UNABLE_TO_CONNECT_TO_STREAM");
        h.connected();
        h.run_finished(false);
        assert_eq!(h.state(), State::Running);
        assert_eq!(h.detailed(), "RUNNING");
        h.run_finished(true);
        assert_eq!(h.state(), State::Suspended);
    }

    #[test]
    fn three_failed_runs_make_it_unhealthy_three_good_ones_heal_it() {
        let mut h = Health::new();
        h.connected();
        h.run_finished(false);
        for _ in 0..3 {
            h.error(Utc::now(), "StreamException", "gone".into(), true);
            h.run_finished(false);
        }
        assert_eq!(h.state(), State::UnhealthySupervisor);
        assert_eq!(h.detailed(), "LOST_CONTACT_WITH_STREAM");
        assert!(!h.state().healthy());
        h.run_finished(false);
        h.run_finished(false);
        assert_eq!(h.state(), State::UnhealthySupervisor);
        h.run_finished(false);
        assert_eq!(h.state(), State::Running);
        assert_eq!(h.recent_errors().as_array().unwrap().len(), 3);
    }

    #[test]
    fn failing_tasks_make_it_unhealthy() {
        let mut h = Health::new();
        h.run_finished(false);
        for _ in 0..3 {
            h.task_finished(false);
        }
        h.run_finished(false);
        assert_eq!(h.state(), State::UnhealthyTasks);
        h.task_finished(true);
        h.task_finished(true);
        h.run_finished(false);
        assert_eq!(h.state(), State::UnhealthyTasks);
        h.task_finished(true);
        h.run_finished(false);
        assert_eq!(h.state(), State::Running);
    }
}
