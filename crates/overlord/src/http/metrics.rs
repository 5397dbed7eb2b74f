//! `GET /metrics` on every overlord, never redirected: HTTP metrics always, and on the leader the
//! task and slot gauges, read fresh for each scrape (so a task that went leaves no stale series).

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use axum::response::Response;
use drover_core::RunnerTaskState;
use drover_service::metrics::labels;

use super::AppState;
use crate::metrics::METRICS;
use crate::runner::TaskFilter;

pub async fn metrics(State(s): State<AppState>) -> Response {
    refresh(&s).await;
    drover_service::metrics::response()
}

async fn refresh(s: &AppState) {
    let m = &*METRICS;
    for g in [
        &m.task_running,
        &m.task_pending,
        &m.task_waiting,
        &m.task_slot_total,
        &m.task_slot_used,
        &m.task_slot_idle,
        &m.kafka_lag,
        &m.kafka_max_lag,
        &m.supervisor_healthy,
    ] {
        g.clear();
    }
    let Ok(leader) = s.leader() else {
        m.leader.get_or_create(&Vec::new()).set(0);
        return;
    };
    m.leader.get_or_create(&Vec::new()).set(1);
    m.leader_epoch.get_or_create(&Vec::new()).set(leader.epoch);

    // Active tasks by data source: running or pending as the runner says, waiting otherwise.
    if let (Ok(rows), Ok(views)) = (
        leader.store.active_task_infos().await,
        s.runner_tasks(TaskFilter::All).await,
    ) {
        let state_of: HashMap<&str, RunnerTaskState> =
            views.iter().map(|v| (v.id.as_str(), v.state)).collect();
        let mut counts: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for info in &rows {
            let state = match state_of.get(info.id.as_str()) {
                Some(RunnerTaskState::Running | RunnerTaskState::None) => "running",
                Some(RunnerTaskState::Pending) => "pending",
                _ => "waiting",
            };
            *counts.entry((state, info.datasource.as_str())).or_default() += 1;
        }
        for ((state, ds), n) in counts {
            let family = match state {
                "running" => &m.task_running,
                "pending" => &m.task_pending,
                _ => &m.task_waiting,
            };
            family.get_or_create(&labels(&[("dataSource", ds)])).set(n);
        }
    }

    // Each supervisor's lag (what its status report says) and health.
    if let Ok(supervisors) = leader.supervisors.list().await {
        for h in supervisors {
            let published = h.published();
            let payload = &published.report["payload"];
            let data_source = h.spec.data_source.to_string();
            let stream = payload["stream"].as_str().unwrap_or_default().to_string();
            let l = labels(&[("dataSource", &data_source), ("stream", &stream)]);
            if let Some(lag) = payload["aggregateLag"].as_i64() {
                m.kafka_lag.get_or_create(&l).set(lag);
            }
            let max = payload["minimumLag"]
                .as_object()
                .and_then(|lags| lags.values().filter_map(|v| v.as_i64()).max());
            if let Some(max) = max {
                m.kafka_max_lag.get_or_create(&l).set(max);
            }
            m.supervisor_healthy
                .get_or_create(&labels(&[
                    ("supervisorId", h.spec.id.as_str()),
                    ("state", &published.state),
                ]))
                .set(i64::from(published.healthy));
        }
    }

    // Slots by worker category, as Druid's taskSlot/* metrics.
    if let Ok(snapshot) = s.runner_snapshot().await {
        let mut slots: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
        for w in &snapshot.workers {
            let e = slots.entry(w.worker.category.as_str()).or_default();
            e.0 += w.worker.capacity as i64;
            e.1 += w.curr_capacity_used as i64;
        }
        for (category, (total, used)) in slots {
            let l = labels(&[("category", category)]);
            m.task_slot_total.get_or_create(&l).set(total);
            m.task_slot_used.get_or_create(&l).set(used);
            m.task_slot_idle
                .get_or_create(&l)
                .set((total - used).max(0));
        }
    }
}
