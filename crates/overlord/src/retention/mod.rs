//! Segment management beside the supervisors (see docs/data-management.md): retention rules,
//! their routes' storage and the leader's periodic duty that applies them. The rules themselves
//! are pure (`rules.rs`); this module reads the store, decides, and marks segments unused.

pub mod auto_kill;
pub mod rules;

use std::time::Duration;

use drover_metadata::{MetadataError, MetadataStore, DEFAULT_RULES_KEY};
use serde_json::{json, Value};

use crate::scope::LeaderScope;
use rules::{parse_rules, segments_to_drop, Rule};

/// Druid's default rules when `_default` was never set: keep everything.
pub fn default_rules() -> Value {
    json!([{"type": "loadForever", "tieredReplicants": {"_default_tier": 2}, "useDefaultTierForNull": true}])
}

/// Starts the retention duty in the leader's scope: every `period` (Druid's
/// `druid.coordinator.period`), the rules are applied to every data source's used segments.
pub fn start(store: MetadataStore, period: Duration, scope: &LeaderScope) {
    scope.spawn_every(period, move || {
        let store = store.clone();
        async move {
            match apply_rules(&store, chrono::Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(segments = n, "retention rules marked segments unused"),
                Err(e) => tracing::warn!(error = %e, "retention rules could not be applied; trying again next period"),
            }
        }
    });
}

/// One run: the segments each data source's rules drop are marked unused. Returns how many.
pub async fn apply_rules(
    store: &MetadataStore,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u64, MetadataError> {
    let stored = store.current_rules().await?;
    let read = |key: &str, bytes: &[u8]| -> Option<Vec<Rule>> {
        let parsed = serde_json::from_slice::<Value>(bytes)
            .map_err(|e| e.to_string())
            .and_then(|v| parse_rules(&v).map_err(|e| e.0));
        match parsed {
            Ok(rules) => Some(rules),
            Err(e) => {
                tracing::error!(data_source = key, error = %e, "stored retention rules are unreadable; skipped");
                None
            }
        }
    };
    let defaults = match stored.get(DEFAULT_RULES_KEY) {
        Some(bytes) => match read(DEFAULT_RULES_KEY, bytes) {
            Some(rules) => rules,
            // Unreadable defaults: drop nothing anywhere rather than guess.
            None => return Ok(0),
        },
        None => parse_rules(&default_rules()).expect("the default rules parse"),
    };
    let mut dropped = 0;
    for ds in store.data_sources().await? {
        let rules = match stored.get(&ds) {
            Some(bytes) => match read(&ds, bytes) {
                Some(rules) => rules,
                None => continue,
            },
            None => Vec::new(),
        };
        if rules.is_empty() && defaults.iter().all(|r| r.action == rules::Action::Load) {
            continue; // nothing can be dropped: skip reading the segments
        }
        let used = store.used_segments(&ds, None).await?;
        let ids: Vec<String> = segments_to_drop(&rules, &defaults, &used, now)
            .into_iter()
            .map(|s| s.id())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let n = store
            .mark_segments(&ds, &ids, drover_metadata::MarkAs::Unused)
            .await?;
        tracing::info!(data_source = %ds, segments = n, "dropped by retention rules");
        dropped += n;
    }
    Ok(dropped)
}
