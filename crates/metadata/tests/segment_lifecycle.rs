//! Conformance of the segment-lifecycle storage on every backend: marking segments unused and
//! used (by interval, versions and ids, with the time they were marked), deleting the rows of
//! unused ones only, the spans an automatic kill looks at, retention-rule versions, and the
//! segments appended under a REPLACE lock.

mod common;

use chrono::{Duration, Utc};
use common::TestDb;
use drover_core::interval::Interval;
use drover_core::segment::{numbered_shard_spec, DataSegment};
use drover_metadata::{
    AppendedUnderReplace, AuditInfo, AuditRecord, MarkAs, PublishOutcome, SegmentFilter, Usage,
};

fn day(d: u32) -> Interval {
    Interval::parse(&format!("2018-01-{d:02}/2018-01-{:02}", d + 1)).unwrap()
}

fn segment(d: u32, version: &str) -> DataSegment {
    DataSegment {
        data_source: drover_core::DataSource::new("wiki").unwrap(),
        interval: day(d),
        version: version.into(),
        load_spec: serde_json::json!({"type": "local", "path": format!("/deep/{d}/{version}")}),
        dimensions: "page".into(),
        metrics: "count".into(),
        shard_spec: numbered_shard_spec(0),
        binary_version: 9,
        size: 10,
        identifier: String::new(),
        last_compaction_state: None,
    }
}

async fn conformance(db: TestDb) {
    let leader = db
        .store
        .claim_leadership("http://leader:8090")
        .await
        .unwrap();
    let segments: Vec<DataSegment> = (1..=4)
        .map(|d| segment(d, if d == 4 { "v2" } else { "v1" }))
        .collect();
    leader.publish_segments(&segments, &[]).await.unwrap();
    let ids: Vec<String> = segments.iter().map(DataSegment::id).collect();

    // Unused by interval (wholly inside it) and by versions, then by id.
    let first_two = Interval::parse("2018-01-01/2018-01-03").unwrap();
    let filter = SegmentFilter::Interval {
        interval: &first_two,
        versions: None,
    };
    let picked = db
        .store
        .segments_where("wiki", Usage::Used, filter, None)
        .await
        .unwrap();
    assert_eq!(picked.len(), 2);
    let picked_ids: Vec<String> = picked.iter().map(DataSegment::id).collect();
    assert_eq!(
        leader
            .mark_segments("wiki", &picked_ids, MarkAs::Unused)
            .await
            .unwrap(),
        2
    );
    // Already unused: nothing changes.
    assert_eq!(
        leader
            .mark_segments("wiki", &picked_ids, MarkAs::Unused)
            .await
            .unwrap(),
        0
    );
    let v2 = ["v2".to_string()];
    let all = Interval::parse("2018-01-01/2018-02-01").unwrap();
    let only_v2 = SegmentFilter::Interval {
        interval: &all,
        versions: Some(&v2),
    };
    let v2_used = db
        .store
        .segments_where("wiki", Usage::Used, only_v2, None)
        .await
        .unwrap();
    assert_eq!(v2_used.len(), 1);
    assert_eq!(v2_used[0].id(), ids[3]);

    // Unused ones, marked before a time or not; limited.
    let unused = Usage::Unused {
        marked_before: None,
    };
    let listed = db
        .store
        .segments_where("wiki", unused, SegmentFilter::All, Some(1))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    let long_ago = Usage::Unused {
        marked_before: Some(Utc::now() - Duration::days(1)),
    };
    assert!(db
        .store
        .segments_where("wiki", long_ago, SegmentFilter::Ids(&ids), None)
        .await
        .unwrap()
        .is_empty());
    let spans = db
        .store
        .unused_spans(Utc::now() + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(spans, vec![("wiki".to_string(), first_two)]);
    assert!(db
        .store
        .unused_spans(Utc::now() - Duration::days(1))
        .await
        .unwrap()
        .is_empty());

    // Rows go only while unused.
    assert_eq!(
        leader
            .mark_segments("wiki", &ids[..1], MarkAs::Used)
            .await
            .unwrap(),
        1
    );
    let deleted = leader.delete_unused_segments("wiki", &ids).await.unwrap();
    assert_eq!(deleted, vec![ids[1].clone()]);
    let left = db.store.used_segments("wiki", None).await.unwrap();
    assert_eq!(left.len(), 3);

    // Retention rules: the newest version is in force, each with its audit row.
    let audit = |payload: &str| AuditRecord {
        key: "wiki".into(),
        audit_type: "rules".into(),
        info: AuditInfo {
            author: "me".into(),
            ..AuditInfo::default()
        },
        payload: payload.into(),
        created_date: drover_core::time::now_iso(),
    };
    leader
        .set_rules("wiki", br#"[{"type":"loadForever"}]"#, &audit("a"))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    leader
        .set_rules("wiki", br#"[{"type":"dropForever"}]"#, &audit("b"))
        .await
        .unwrap();
    let rules = db.store.current_rules().await.unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules["wiki"], br#"[{"type":"dropForever"}]"#.to_vec());
    let history = db
        .store
        .audit_history("wiki", "rules", None, None, None)
        .await
        .unwrap();
    assert_eq!(history.len(), 2);

    // A segment appended under another task's REPLACE lock is recorded in the same transaction
    // as its publish, read back by that task, and forgotten when it ends.
    let appended = segment(9, "1970-01-01T00:00:00.000Z");
    let record = AppendedUnderReplace {
        task_id: "compact_wiki".into(),
        segment_id: appended.id(),
        lock_version: "v9".into(),
    };
    let outcome = leader
        .publish(
            std::slice::from_ref(&appended),
            &[],
            std::slice::from_ref(&record),
            None,
        )
        .await
        .unwrap();
    assert_eq!(outcome, PublishOutcome::Published);
    assert_eq!(
        db.store
            .appended_under_replace("compact_wiki")
            .await
            .unwrap(),
        vec![record]
    );
    assert!(db
        .store
        .appended_under_replace("other")
        .await
        .unwrap()
        .is_empty());
    leader.delete_upgrade_records("compact_wiki").await.unwrap();
    assert!(db
        .store
        .appended_under_replace("compact_wiki")
        .await
        .unwrap()
        .is_empty());
    // Every row overlapping an interval, used or not, for the kill's shared-file check.
    leader
        .mark_segments("wiki", &[appended.id()], MarkAs::Unused)
        .await
        .unwrap();
    let around = db
        .store
        .all_segments_overlapping(
            "wiki",
            &Interval::parse("2018-01-09T12:00/2018-01-11").unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        around.iter().map(DataSegment::id).collect::<Vec<_>>(),
        vec![appended.id()]
    );
    db.drop_db().await;
}

#[tokio::test]
async fn segment_lifecycle_sqlite() {
    conformance(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn segment_lifecycle_postgres() {
    conformance(TestDb::postgres().await).await;
}

#[tokio::test]
async fn segment_lifecycle_mysql() {
    conformance(TestDb::mysql().await).await;
}
