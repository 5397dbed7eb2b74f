//! What a running ingestion task shows before it ends (Druid's live reports): its ingestion
//! state, row counts with their moving averages, and its most recent parse errors. The reading
//! loop writes here; the chat API reads. A thread ticks the moving averages every five seconds,
//! for as long as anyone holds the report, and writes the counts to `live-stats.json` in the
//! attempt directory, where the middle manager reads them for its metrics while the task runs.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use drover_ingest::moving_average::{RowMeters, TICK};
use drover_ingest::row_builder::RowStats;
use serde_json::{json, Value};

pub struct LiveReport {
    task_id: String,
    inner: Mutex<Inner>,
}

struct Inner {
    state: &'static str,
    totals: RowStats,
    meters: RowMeters,
    /// The newest `keep` parse errors, oldest first.
    errors: VecDeque<Value>,
    keep: usize,
    output: Output,
    /// Where the counts go for the middle manager, with the labels of its metrics.
    stats_file: Option<(PathBuf, Value)>,
}

/// What a task wrote: rows in its segments (`ingest/rows/output`), and the sorted runs it spilled
/// to disk and the time that took (`ingest/persists/count`, `ingest/persists/timeMs`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Output {
    pub rows: u64,
    pub persists: u64,
    pub persist_ms: u64,
}

impl LiveReport {
    /// `keep`: how many parse errors to show (`maxSavedParseExceptions`).
    pub fn new(task_id: &str, keep: usize) -> Arc<LiveReport> {
        let live = Arc::new(LiveReport {
            task_id: task_id.to_string(),
            inner: Mutex::new(Inner {
                state: "NOT_STARTED",
                totals: RowStats::default(),
                meters: RowMeters::new(Instant::now()),
                errors: VecDeque::new(),
                keep,
                output: Output::default(),
                stats_file: None,
            }),
        });
        let weak: Weak<LiveReport> = Arc::downgrade(&live);
        std::thread::spawn(move || loop {
            std::thread::sleep(TICK);
            let Some(live) = weak.upgrade() else { return };
            {
                let mut inner = live.lock();
                let totals = inner.totals;
                inner.meters.observe(Instant::now(), totals);
            }
            live.write_stats_file();
        });
        live
    }

    /// Counts go to `path` from now on (every tick, and when [`write_stats_file`] is called),
    /// labelled with the task's data source and type.
    pub fn write_stats_to(&self, path: PathBuf, data_source: &str, task_type: &str) {
        self.lock().stats_file = Some((
            path,
            json!({"dataSource": data_source, "taskType": task_type}),
        ));
    }

    pub fn add_output(&self, output: Output) {
        let mut inner = self.lock();
        inner.output.rows += output.rows;
        inner.output.persists += output.persists;
        inner.output.persist_ms += output.persist_ms;
    }

    /// Writes the counts as of now, whole or not at all.
    pub fn write_stats_file(&self) {
        let (path, mut stats) = {
            let inner = self.lock();
            let Some((path, labels)) = &inner.stats_file else {
                return;
            };
            let mut stats = labels.clone();
            stats["totals"] = json!(inner.totals);
            stats["rowsOutput"] = json!(inner.output.rows);
            stats["persists"] = json!(inner.output.persists);
            stats["persistMs"] = json!(inner.output.persist_ms);
            (path.clone(), stats)
        };
        stats["taskId"] = json!(self.task_id);
        let tmp = path.with_extension("json.tmp");
        let written =
            std::fs::write(&tmp, stats.to_string()).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            eprintln!("cannot write {}: {e}", path.display());
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not take the reports down with it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn task_id(&self) -> &str {
        &self.task_id
    }

    pub fn state(&self) -> &'static str {
        self.lock().state
    }

    pub fn totals(&self) -> RowStats {
        self.lock().totals
    }

    pub fn set_state(&self, state: &'static str) {
        self.lock().state = state;
    }

    pub fn set_keep(&self, keep: usize) {
        self.lock().keep = keep;
    }

    pub fn set_totals(&self, totals: RowStats) {
        self.lock().totals = totals;
    }

    /// A `ParseExceptionReport`; the oldest goes when more than `keep` are held.
    pub fn push_error(&self, report: Value) {
        let mut inner = self.lock();
        if inner.keep == 0 {
            return;
        }
        while inner.errors.len() >= inner.keep {
            inner.errors.pop_front();
        }
        inner.errors.push_back(report);
    }

    /// The parse errors held, newest first (as Druid lists them).
    pub fn errors(&self) -> Vec<Value> {
        self.lock().errors.iter().rev().cloned().collect()
    }

    /// `GET …/rowStats`: `{"movingAverages": {"buildSegments": …}, "totals": {"buildSegments": …}}`.
    pub fn row_stats(&self) -> Value {
        let inner = self.lock();
        json!({
            "movingAverages": {"buildSegments": inner.meters.json()},
            "totals": {"buildSegments": inner.totals},
        })
    }

    /// `GET …/liveReports`: Druid's `ingestionStatsAndErrors` report as of now.
    pub fn live_reports(&self) -> Value {
        let row_stats = self.row_stats();
        let errors = self.errors();
        let state = self.lock().state;
        json!({"ingestionStatsAndErrors": {
            "type": "ingestionStatsAndErrors",
            "taskId": self.task_id,
            "payload": {
                "ingestionState": state,
                "unparseableEvents": if errors.is_empty() { json!({}) } else { json!({"buildSegments": errors}) },
                "rowStats": row_stats,
                "errorMsg": null,
            }
        }})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_errors_and_lists_them_newest_first() {
        let live = LiveReport::new("t", 2);
        for i in 0..3 {
            live.push_error(json!(i));
        }
        assert_eq!(live.errors(), vec![json!(2), json!(1)]);
        live.set_state("BUILD_SEGMENTS");
        live.set_totals(RowStats {
            processed: 5,
            ..RowStats::default()
        });
        let report = live.live_reports();
        let payload = &report["ingestionStatsAndErrors"]["payload"];
        assert_eq!(payload["ingestionState"], "BUILD_SEGMENTS");
        assert_eq!(
            payload["rowStats"]["totals"]["buildSegments"]["processed"],
            5
        );
        assert_eq!(payload["unparseableEvents"]["buildSegments"][0], 2);
        assert!(payload["rowStats"]["movingAverages"]["buildSegments"]["1m"].is_object());
    }
}
