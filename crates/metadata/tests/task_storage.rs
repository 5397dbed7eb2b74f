//! TaskStorage conformance: the same assertions on SQLite, PostgreSQL and MySQL/MariaDB.

mod common;

use common::TestDb;
use drover_core::{TaskId, TaskLocation, TaskState, TaskStatus};
use drover_metadata::{CompleteTaskFilter, MetadataError};
use drover_task::Task;

fn noop(id: &str, ds: &str) -> Task {
    Task::from_json_bytes(
        format!(r#"{{"type":"noop","id":"{id}","dataSource":"{ds}","runTime":1}}"#).as_bytes(),
    )
    .unwrap()
}

async fn conformance(db: TestDb) {
    let store = &db.store;
    let a = noop("task_a", "wiki");
    let b = noop("task_b", "other");
    let c = noop("task_c", "wiki");
    store
        .insert_task(
            &a,
            "2024-01-01T00:00:00.000Z",
            &TaskStatus::running(a.id.clone()),
        )
        .await
        .unwrap();
    store
        .insert_task(
            &b,
            "2024-01-01T00:00:01.000Z",
            &TaskStatus::running(b.id.clone()),
        )
        .await
        .unwrap();
    store
        .insert_task(
            &c,
            "2024-01-01T00:00:02.000Z",
            &TaskStatus::running(c.id.clone()),
        )
        .await
        .unwrap();

    // A duplicate id is refused and changes nothing.
    let dup = store
        .insert_task(
            &a,
            "2024-01-02T00:00:00.000Z",
            &TaskStatus::running(a.id.clone()),
        )
        .await;
    assert!(
        matches!(dup, Err(MetadataError::TaskExists(ref id)) if id == "task_a"),
        "{dup:?}"
    );

    let row = store.get_task(&a.id).await.unwrap().unwrap();
    assert_eq!(row.task, a);
    assert_eq!(row.info.created_date, "2024-01-01T00:00:00.000Z");
    assert_eq!(row.info.task_type.as_deref(), Some("noop"));
    assert_eq!(row.info.group_id.as_deref(), Some("task_a"));
    assert_eq!(row.info.status.status, TaskState::Running);
    assert!(store
        .get_task(&TaskId::new("missing").unwrap())
        .await
        .unwrap()
        .is_none());

    let active: Vec<String> = store
        .active_tasks()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.info.id)
        .collect();
    assert_eq!(active, ["task_a", "task_b", "task_c"]);

    // The first terminal status wins; a second report changes nothing.
    let done = TaskStatus::success(a.id.clone())
        .with_duration(12)
        .with_location(TaskLocation::new("mm1", 8100));
    assert!(store.set_task_status(&done).await.unwrap());
    assert!(!store
        .set_task_status(&TaskStatus::failure(a.id.clone(), "late"))
        .await
        .unwrap());
    let info = store.get_task_info(&a.id).await.unwrap().unwrap();
    assert_eq!(info.status, done);
    assert!(store
        .set_task_status(&TaskStatus::failure(b.id.clone(), "boom"))
        .await
        .unwrap());

    let active: Vec<String> = store
        .active_task_infos()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(active, ["task_c"]);

    let all = store
        .complete_task_infos(&CompleteTaskFilter::default())
        .await
        .unwrap();
    let ids: Vec<&str> = all.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["task_b", "task_a"], "newest first");
    let wiki = store
        .complete_task_infos(&CompleteTaskFilter {
            datasource: Some("wiki".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(wiki.len(), 1);
    assert_eq!(wiki[0].id, "task_a");
    let one = store
        .complete_task_infos(&CompleteTaskFilter {
            max: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    let window = store
        .complete_task_infos(&CompleteTaskFilter {
            created_after: Some("2024-01-01T00:00:00.500Z".into()),
            created_before: Some("2024-01-01T00:00:05.000Z".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(window.len(), 1);
    assert_eq!(window[0].id, "task_b");
    let by_type = store
        .complete_task_infos(&CompleteTaskFilter {
            task_type: Some("index".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(by_type.is_empty());

    let statuses = store
        .get_statuses(&[a.id.clone(), TaskId::new("nope").unwrap(), c.id.clone()])
        .await
        .unwrap();
    assert_eq!(statuses.len(), 2);
    assert_eq!(statuses[1].status, TaskState::Running);

    // Creating the tables again (a restart) keeps the data.
    store.ensure_schema().await.unwrap();
    assert_eq!(store.active_task_infos().await.unwrap().len(), 1);
    db.drop_db().await;
}

#[tokio::test]
async fn task_storage_sqlite() {
    conformance(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn task_storage_postgres() {
    conformance(TestDb::postgres().await).await;
}

#[tokio::test]
async fn task_storage_mysql() {
    conformance(TestDb::mysql().await).await;
}

async fn config_conformance(db: TestDb) {
    use drover_metadata::{AuditInfo, AuditRecord};
    let store = &db.store;
    assert!(store.get_config("worker.config").await.unwrap().is_none());
    for (i, payload) in [
        r#"{"selectStrategy":{"type":"fillCapacity"}}"#,
        r#"{"selectStrategy":{"type":"equalDistribution"}}"#,
    ]
    .iter()
    .enumerate()
    {
        let audit = AuditRecord {
            key: "worker.config".into(),
            audit_type: "worker.config".into(),
            info: AuditInfo {
                author: format!("ops{i}"),
                comment: "why".into(),
                ip: String::new(),
            },
            payload: payload.to_string(),
            created_date: format!("2024-01-0{}T00:00:00.000Z", i + 1),
        };
        store
            .set_config("worker.config", payload.as_bytes(), &audit)
            .await
            .unwrap();
    }
    let current = store.get_config("worker.config").await.unwrap().unwrap();
    assert!(String::from_utf8(current)
        .unwrap()
        .contains("equalDistribution"));
    let history = store
        .audit_history("worker.config", "worker.config", None, None, None)
        .await
        .unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].info.author, "ops1", "newest first");
    let one = store
        .audit_history("worker.config", "worker.config", None, None, Some(1))
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    let window = store
        .audit_history(
            "worker.config",
            "worker.config",
            Some("2024-01-01T12:00:00.000Z"),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(window.len(), 1);
    assert!(window[0].payload.contains("equalDistribution"));
    db.drop_db().await;
}

#[tokio::test]
async fn config_and_audit_sqlite() {
    config_conformance(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn config_and_audit_postgres() {
    config_conformance(TestDb::postgres().await).await;
}

#[tokio::test]
async fn config_and_audit_mysql() {
    config_conformance(TestDb::mysql().await).await;
}

async fn fencing_conformance(db: TestDb) {
    use drover_metadata::{AuditInfo, AuditRecord};
    let audit = |payload: &str| AuditRecord {
        key: "worker.config".into(),
        audit_type: "worker.config".into(),
        info: AuditInfo::default(),
        payload: payload.into(),
        created_date: "2024-01-01T00:00:00.000Z".into(),
    };
    let old = db.store.claim_leadership("http://old:8090").await.unwrap();
    assert_eq!(old.fence(), Some(1));
    let t1 = noop("fenced_1", "wiki");
    old.insert_task(
        &t1,
        "2024-01-01T00:00:00.000Z",
        &TaskStatus::running(t1.id.clone()),
    )
    .await
    .unwrap();
    old.set_config("worker.config", b"{}", &audit("{}"))
        .await
        .unwrap();

    // A new leader claims the next epoch; the old one's writes now change nothing.
    let new = db.store.claim_leadership("http://new:8090").await.unwrap();
    assert_eq!(new.fence(), Some(2));
    let t2 = noop("fenced_2", "wiki");
    let r = old
        .insert_task(
            &t2,
            "2024-01-01T00:00:01.000Z",
            &TaskStatus::running(t2.id.clone()),
        )
        .await;
    assert!(
        matches!(
            r,
            Err(MetadataError::Fenced {
                mine: 1,
                current: 2
            })
        ),
        "{r:?}"
    );
    assert!(db.store.get_task(&t2.id).await.unwrap().is_none());
    let r = old
        .set_task_status(&TaskStatus::failure(
            t1.id.clone(),
            "from the deposed leader",
        ))
        .await;
    assert!(matches!(r, Err(MetadataError::Fenced { .. })), "{r:?}");
    assert_eq!(
        db.store
            .get_task_info(&t1.id)
            .await
            .unwrap()
            .unwrap()
            .status
            .status,
        TaskState::Running
    );
    let r = old
        .set_config("worker.config", b"{\"old\":1}", &audit("old"))
        .await;
    assert!(matches!(r, Err(MetadataError::Fenced { .. })), "{r:?}");
    assert_eq!(
        db.store.get_config("worker.config").await.unwrap().unwrap(),
        b"{}"
    );
    assert_eq!(
        db.store
            .audit_history("worker.config", "worker.config", None, None, None)
            .await
            .unwrap()
            .len(),
        1
    );

    // The current leader writes as usual; an already complete task is not an error.
    assert!(new
        .set_task_status(&TaskStatus::success(t1.id.clone()))
        .await
        .unwrap());
    assert!(!new
        .set_task_status(&TaskStatus::failure(t1.id.clone(), "late"))
        .await
        .unwrap());
    new.set_config("worker.config", b"{\"new\":1}", &audit("new"))
        .await
        .unwrap();
    db.drop_db().await;
}

#[tokio::test]
async fn fencing_sqlite() {
    fencing_conformance(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn fencing_postgres() {
    fencing_conformance(TestDb::postgres().await).await;
}

#[tokio::test]
async fn fencing_mysql() {
    fencing_conformance(TestDb::mysql().await).await;
}

async fn locks_and_segments_conformance(db: TestDb) {
    use drover_core::interval::Interval;
    use drover_core::lock::{LockType, TaskLock};
    use drover_core::segment::{numbered_shard_spec, DataSegment};
    let leader = db
        .store
        .claim_leadership("http://leader:8090")
        .await
        .unwrap();
    let day = |d: u32| Interval::parse(&format!("2018-01-0{d}/2018-01-0{}", d + 1)).unwrap();
    let lock = TaskLock {
        lock_type: LockType::Exclusive,
        group_id: "g".into(),
        data_source: drover_core::DataSource::new("wiki").unwrap(),
        interval: day(1),
        version: "2024-01-01T00:00:00.000Z".into(),
        priority: 50,
        revoked: false,
    };
    let t1 = TaskId::new("index_1").unwrap();
    leader.insert_lock(&t1, &lock).await.unwrap();
    leader
        .insert_lock(
            &t1,
            &TaskLock {
                interval: day(2),
                ..lock.clone()
            },
        )
        .await
        .unwrap();
    let revoked = TaskLock {
        revoked: true,
        ..lock.clone()
    };
    assert!(leader.replace_lock(&t1, &lock, &revoked).await.unwrap());
    let all = db.store.all_locks().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], ("index_1".to_string(), revoked.clone()));
    leader.delete_lock(&t1, &revoked).await.unwrap();
    assert_eq!(db.store.all_locks().await.unwrap().len(), 1);

    let segment = |d: u32, version: &str, partition: u32| DataSegment {
        data_source: drover_core::DataSource::new("wiki").unwrap(),
        interval: day(d),
        version: version.into(),
        load_spec: serde_json::json!({"type":"local","path":format!("/deep/{d}/{partition}.parquet")}),
        dimensions: "page,user".into(),
        metrics: "count".into(),
        shard_spec: numbered_shard_spec(partition),
        binary_version: 9,
        size: 100,
        identifier: String::new(),
        last_compaction_state: None,
    };
    let v1 = [
        segment(1, "v1", 0),
        segment(1, "v1", 1),
        segment(2, "v1", 0),
    ];
    leader.publish_segments(&v1, &[]).await.unwrap();
    let used = db.store.used_segments("wiki", None).await.unwrap();
    assert_eq!(used.len(), 3);
    assert_eq!(used[1].identifier, v1[1].id());
    assert_eq!(
        db.store
            .used_segments("wiki", Some(&day(2)))
            .await
            .unwrap()
            .len(),
        1
    );
    // An overwrite of day 1: new version in, old partitions out, in one transaction.
    let v2 = [segment(1, "v2", 0)];
    leader
        .publish_segments(&v2, &[v1[0].id(), v1[1].id()])
        .await
        .unwrap();
    let day1: Vec<String> = db
        .store
        .used_segments("wiki", Some(&day(1)))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.version)
        .collect();
    assert_eq!(day1, ["v2"]);
    assert_eq!(db.store.data_sources().await.unwrap(), ["wiki"]);
    // A duplicate segment id fails the whole publish: nothing of it lands.
    assert!(leader
        .publish_segments(&[segment(3, "v1", 0), segment(1, "v2", 0)], &[])
        .await
        .is_err());
    assert!(db
        .store
        .used_segments("wiki", Some(&day(3)))
        .await
        .unwrap()
        .is_empty());
    // Pending segments: one allocation per (sequence, previous id, interval).
    let pending = drover_metadata::PendingSegment {
        data_source: "wiki".into(),
        interval: day(5),
        version: "v1".into(),
        shard_spec: numbered_shard_spec(0),
    };
    assert!(leader
        .insert_pending_segment(&pending, "seq", "", "index_1")
        .await
        .unwrap());
    let again = drover_metadata::PendingSegment {
        shard_spec: numbered_shard_spec(1),
        ..pending.clone()
    };
    assert!(
        !leader
            .insert_pending_segment(&again, "seq", "", "index_1")
            .await
            .unwrap(),
        "the same sequence key allocates once"
    );
    assert_eq!(
        db.store
            .find_pending_segment("wiki", "seq", "", &day(5))
            .await
            .unwrap(),
        Some(pending.clone())
    );
    assert_eq!(
        db.store
            .find_pending_segment("wiki", "seq", "other", &day(5))
            .await
            .unwrap(),
        None
    );
    assert!(leader
        .insert_pending_segment(&again, "seq", &pending.id(), "index_1")
        .await
        .unwrap());
    assert_eq!(
        db.store
            .pending_segments("wiki", &day(5))
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(db
        .store
        .pending_segments("wiki", &day(6))
        .await
        .unwrap()
        .is_empty());
    // A deposed leader publishes nothing.
    let _newer = db
        .store
        .claim_leadership("http://other:8090")
        .await
        .unwrap();
    let r = leader.publish_segments(&[segment(4, "v1", 0)], &[]).await;
    assert!(matches!(r, Err(MetadataError::Fenced { .. })), "{r:?}");
    assert!(matches!(
        leader.insert_lock(&t1, &lock).await,
        Err(MetadataError::Fenced { .. })
    ));
    assert!(matches!(
        leader
            .insert_pending_segment(&pending, "late", "", "index_1")
            .await,
        Err(MetadataError::Fenced { .. })
    ));
    assert!(db
        .store
        .used_segments("wiki", Some(&day(4)))
        .await
        .unwrap()
        .is_empty());
    db.drop_db().await;
}

#[tokio::test]
async fn locks_and_segments_sqlite() {
    locks_and_segments_conformance(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn locks_and_segments_postgres() {
    locks_and_segments_conformance(TestDb::postgres().await).await;
}

#[tokio::test]
async fn locks_and_segments_mysql() {
    locks_and_segments_conformance(TestDb::mysql().await).await;
}

/// Streaming publishes: segments and offsets land together, only from where the stored offsets
/// are; a replica repeating a publish is refused without writing; a deposed leader writes
/// nothing; reset replaces or deletes.
async fn offsets_conformance(db: TestDb) {
    use drover_core::interval::Interval;
    use drover_core::segment::{numbered_shard_spec, DataSegment};
    use drover_core::stream_offsets::StreamOffsets;
    use drover_metadata::{OffsetCommit, PublishOutcome};
    let leader = db
        .store
        .claim_leadership("http://leader:8090")
        .await
        .unwrap();
    let offsets = |pairs: &[(&str, i64)]| StreamOffsets {
        kind: "kafka".into(),
        stream: "events".into(),
        offsets: pairs.iter().map(|(p, o)| (p.to_string(), *o)).collect(),
    };
    let segment = |hour: u32, partition: u32| DataSegment {
        data_source: drover_core::DataSource::new("events").unwrap(),
        interval: Interval::parse(&format!(
            "2024-01-01T{hour:02}:00Z/2024-01-01T{:02}:00Z",
            hour + 1
        ))
        .unwrap(),
        version: "v1".into(),
        load_spec: serde_json::json!({"type":"local","path":format!("/deep/{hour}/{partition}")}),
        dimensions: "page".into(),
        metrics: "count".into(),
        shard_spec: numbered_shard_spec(partition),
        binary_version: 9,
        size: 1,
        identifier: String::new(),
        last_compaction_state: None,
    };
    let commit = |start: &[(&str, i64)], end: &[(&str, i64)]| OffsetCommit {
        key: "events".into(),
        start: offsets(start),
        end: offsets(end),
    };
    let used = || async { db.store.used_segments("events", None).await.unwrap().len() };

    // First publish: nothing stored yet.
    let r = leader
        .publish_segments_with_offsets(&[segment(0, 0)], &[], &commit(&[("0", 0)], &[("0", 100)]))
        .await
        .unwrap();
    assert_eq!(r, PublishOutcome::Published);
    // Another task group's partition joins.
    let r = leader
        .publish_segments_with_offsets(&[segment(0, 1)], &[], &commit(&[("1", 0)], &[("1", 50)]))
        .await
        .unwrap();
    assert_eq!(r, PublishOutcome::Published);
    assert_eq!(
        db.store.stream_offsets("events").await.unwrap(),
        Some(offsets(&[("0", 100), ("1", 50)]))
    );
    // A replica of the first publish comes late: its start is behind, nothing is written.
    let r = leader
        .publish_segments_with_offsets(&[segment(1, 0)], &[], &commit(&[("0", 0)], &[("0", 100)]))
        .await
        .unwrap();
    assert!(matches!(r, PublishOutcome::OffsetsMismatch(_)), "{r:?}");
    assert_eq!(used().await, 2, "no rows without their offsets");
    // The next sequence continues from the stored offsets.
    let r = leader
        .publish_segments_with_offsets(&[segment(1, 0)], &[], &commit(&[("0", 100)], &[("0", 180)]))
        .await
        .unwrap();
    assert_eq!(r, PublishOutcome::Published);
    assert_eq!(used().await, 3);
    // A publish whose segments cannot go in leaves the offsets where they were.
    let r = leader
        .publish_segments_with_offsets(&[segment(1, 0)], &[], &commit(&[("0", 180)], &[("0", 200)]))
        .await;
    assert!(r.is_err(), "a duplicate segment id fails the publish");
    assert_eq!(
        db.store.stream_offsets("events").await.unwrap(),
        Some(offsets(&[("0", 180), ("1", 50)]))
    );
    // Reset: replace, then delete.
    leader
        .reset_stream_offsets("events", Some(&offsets(&[("0", 5)])))
        .await
        .unwrap();
    assert_eq!(
        db.store.stream_offsets("events").await.unwrap(),
        Some(offsets(&[("0", 5)]))
    );
    leader.reset_stream_offsets("events", None).await.unwrap();
    assert_eq!(db.store.stream_offsets("events").await.unwrap(), None);
    // A deposed leader moves no offsets.
    let _newer = db
        .store
        .claim_leadership("http://other:8090")
        .await
        .unwrap();
    let r = leader
        .publish_segments_with_offsets(&[segment(2, 0)], &[], &commit(&[("0", 0)], &[("0", 9)]))
        .await;
    assert!(matches!(r, Err(MetadataError::Fenced { .. })), "{r:?}");
    assert_eq!(db.store.stream_offsets("events").await.unwrap(), None);
    assert_eq!(used().await, 3);
    db.drop_db().await;
}

#[tokio::test]
async fn offsets_sqlite() {
    offsets_conformance(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn offsets_postgres() {
    offsets_conformance(TestDb::postgres().await).await;
}

#[tokio::test]
async fn offsets_mysql() {
    offsets_conformance(TestDb::mysql().await).await;
}

/// Supervisor specs: append-only versions, newest first; the newest of each id wins; a deposed
/// leader appends nothing.
async fn supervisors_conformance(db: TestDb) {
    let leader = db
        .store
        .claim_leadership("http://leader:8090")
        .await
        .unwrap();
    leader
        .insert_supervisor("wiki", "2024-01-01T00:00:00.000Z", br#"{"v":1}"#)
        .await
        .unwrap();
    leader
        .insert_supervisor("other", "2024-01-01T00:00:01.000Z", br#"{"v":2}"#)
        .await
        .unwrap();
    leader
        .insert_supervisor("wiki", "2024-01-01T00:00:02.000Z", br#"{"v":3}"#)
        .await
        .unwrap();
    let history = leader.supervisor_history(Some("wiki")).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].payload, br#"{"v":3}"#.to_vec());
    assert_eq!(history[1].created_date, "2024-01-01T00:00:00.000Z");
    let latest = leader.latest_supervisors().await.unwrap();
    assert_eq!(latest.len(), 2);
    assert!(latest
        .iter()
        .any(|v| v.spec_id == "wiki" && v.payload == br#"{"v":3}"#.to_vec()));
    assert!(leader
        .supervisor_history(Some("nope"))
        .await
        .unwrap()
        .is_empty());

    let _newer = db
        .store
        .claim_leadership("http://newer:8090")
        .await
        .unwrap();
    assert!(leader
        .insert_supervisor("wiki", "2024-01-01T00:00:03.000Z", b"{}")
        .await
        .is_err());
    assert_eq!(
        leader.supervisor_history(Some("wiki")).await.unwrap().len(),
        2
    );
}

#[tokio::test]
async fn supervisors_sqlite() {
    supervisors_conformance(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn supervisors_postgres() {
    supervisors_conformance(TestDb::postgres().await).await;
}

#[tokio::test]
async fn supervisors_mysql() {
    supervisors_conformance(TestDb::mysql().await).await;
}

/// Two overlords starting at once on an empty database both create the schema: both must come
/// up (PostgreSQL's `IF NOT EXISTS` alone is not safe against a concurrent creator).
async fn concurrent_schema_creation(env: &str, default: &str) {
    use drover_metadata::MetadataStore;
    for _ in 0..3 {
        let (admin, name, url) = common::empty_database(env, default).await;
        let (a, b) = tokio::join!(MetadataStore::connect(&url), MetadataStore::connect(&url));
        let (a, b) = (
            a.expect("first overlord's store"),
            b.expect("second overlord's store"),
        );
        b.close().await;
        TestDb::adopt(a, admin, name).await.drop_db().await;
    }
}

#[tokio::test]
async fn schema_creation_races_postgres() {
    concurrent_schema_creation(common::POSTGRES_ENV, common::POSTGRES_DEFAULT).await;
}

#[tokio::test]
async fn schema_creation_races_mysql() {
    concurrent_schema_creation(common::MYSQL_ENV, common::MYSQL_DEFAULT).await;
}
