//! Worker selection on a real cluster: dynamic worker config with category and affinity specs,
//! its history, enable/disable through the overlord, total capacity.

use std::time::Duration;

use drover_scenarios::*;
use serde_json::json;

const LONG: Duration = Duration::from_secs(60);

async fn worker_of(c: &ApiClient, id: &str) -> String {
    let status = c.wait_complete(id, LONG).await.unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    log_facts(&c.log(id).await.unwrap().unwrap())
        .worker
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_category_spec_sends_task_types_to_their_category() {
    let spec = ClusterSpec {
        middle_managers: vec![
            MiddleManagerSpec {
                capacity: 3,
                extra_args: vec!["--category".into(), "hot".into()],
            },
            MiddleManagerSpec {
                capacity: 3,
                extra_args: vec!["--category".into(), "cold".into()],
            },
        ],
        ..Default::default()
    };
    let cluster = Cluster::start(spec).await;
    let c = &cluster.client;
    let config = json!({"type":"default","selectStrategy":{"type":"equalDistributionWithCategorySpec",
        "workerCategorySpec":{"strong":true,"categoryMap":{"noop":{"defaultCategory":"cold","categoryAffinity":{"wiki":"hot"}}}}}});
    let r = c.post("/worker", config.to_string()).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let stored = c.get("/worker").await.unwrap().json();
    assert_eq!(
        stored["selectStrategy"]["type"],
        "equalDistributionWithCategorySpec"
    );

    let (hot, cold) = (
        cluster.middle_managers[0].host.clone(),
        cluster.middle_managers[1].host.clone(),
    );
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push((
            c.submit(&json!({"type":"noop","id":format!("cat_plain_{i}"),"runTime":200}))
                .await
                .unwrap(),
            &cold,
        ));
        ids.push((c.submit(&json!({"type":"noop","id":format!("cat_wiki_{i}"),"runTime":200,"dataSource":"wiki"})).await.unwrap(), &hot));
    }
    for (id, expected) in ids {
        assert_eq!(&worker_of(c, &id).await, expected, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_affinity_config_ties_a_data_source_to_its_workers_and_survives_a_restart() {
    let mut cluster = Cluster::start(ClusterSpec::workers(&[3, 3])).await;
    let (a, b) = (
        cluster.middle_managers[0].host.clone(),
        cluster.middle_managers[1].host.clone(),
    );
    let config = json!({"selectStrategy":{"type":"fillCapacity","affinityConfig":{"affinity":{"wiki":[a]},"strong":false}}});
    let r = cluster
        .client
        .post("/worker", config.to_string())
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    // The config is stored: it holds after an overlord restart.
    cluster.overlord().kill9();
    cluster.restart_overlord().await;
    cluster.wait_for_workers(2, LONG).await;
    let c = &cluster.client;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push((c.submit(&json!({"type":"noop","id":format!("aff_wiki_{i}"),"runTime":100,"dataSource":"wiki"})).await.unwrap(), &a));
        ids.push((c.submit(&json!({"type":"noop","id":format!("aff_other_{i}"),"runTime":100,"dataSource":"other"})).await.unwrap(), &b));
    }
    for (id, expected) in ids {
        assert_eq!(&worker_of(c, &id).await, expected, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_config_history_proxying_and_capacity() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2, 3])).await;
    let c = &cluster.client;
    assert_eq!(
        c.get("/worker").await.unwrap().json(),
        serde_json::Value::Null
    );
    let bad = c
        .post(
            "/worker",
            r#"{"selectStrategy":{"type":"javascript","function":"x"}}"#,
        )
        .await
        .unwrap();
    assert_eq!(bad.status, 400);
    let bad = c
        .post("/worker", r#"{"selectStrategy":{"type":"nope"}}"#)
        .await
        .unwrap();
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("nope"), "{}", bad.body);

    let http = reqwest::Client::new();
    for strategy in ["fillCapacity", "equalDistribution"] {
        let r = http
            .post(format!("{}/druid/indexer/v1/worker", c.base))
            .header("X-Druid-Author", "ops")
            .header("X-Druid-Comment", format!("try {strategy}"))
            .json(&json!({"selectStrategy":{"type":strategy}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let history = c.get("/worker/history?count=10").await.unwrap().json();
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["auditInfo"]["author"], "ops");
    assert_eq!(history[0]["auditInfo"]["comment"], "try equalDistribution");
    assert!(history[0]["payload"]
        .as_str()
        .unwrap()
        .contains("equalDistribution"));
    assert_eq!(
        c.get("/worker/history")
            .await
            .unwrap()
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        c.get("/worker/history?count=1")
            .await
            .unwrap()
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let total = c.get("/totalWorkerCapacity").await.unwrap().json();
    assert_eq!(total["currentClusterCapacity"], 5);
    assert_eq!(total["usedClusterCapacity"], 0);

    let host = cluster.middle_managers[0].host.clone();
    let r = c
        .post(&format!("/worker/{host}/disable"), "")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()[&host], "disabled");
    let r = c.post(&format!("/worker/{host}/enable"), "").await.unwrap();
    assert_eq!(r.json()[&host], "enabled");
    assert_eq!(
        c.post("/worker/nobody:1/enable", "").await.unwrap().status,
        404
    );
}
