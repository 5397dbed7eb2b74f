//! Authentication with security on (`[security] basic_auth`): every route but `/status/health`
//! answers 401 with a `WWW-Authenticate` challenge to a request without good credentials, and
//! nothing it asked for happens; middle managers take only the internal client's credentials;
//! with credentials every normal flow works (a batch task's peon calls the overlord with the
//! internal credentials, the overlord calls the middle manager with them); users are managed
//! through Druid's basic-security routes.

use std::time::Duration;

use drover_scenarios::{noop, one_row_task, Cluster, ClusterSpec};
use drover_testkit::ApiClient;
use reqwest::Method;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(60);
const USERS: &str =
    "/druid-ext/basic-security/authentication/db/MyBasicMetadataAuthenticator/users";

#[tokio::test(flavor = "multi_thread")]
async fn requests_need_credentials_and_internal_calls_carry_them() {
    let cluster =
        Cluster::start(ClusterSpec::workers(&[2]).basic_auth("admin-secret", "internal-secret"))
            .await;
    let c = &cluster.client;
    let url = cluster.overlords[0].url.clone();
    let mm = cluster.middle_managers[0].url.clone();

    // Without credentials, or with a wrong password: 401 and a challenge; nothing stored.
    for stranger in [
        ApiClient::new(&url),
        ApiClient::authenticated(&url, "admin:guess"),
        ApiClient::authenticated(&url, "druid_system:guess"),
    ] {
        let r = stranger
            .post("/task", noop("sneaky", 0).to_string())
            .await
            .unwrap();
        assert_eq!(r.status, 401, "{}", r.body);
        assert_eq!(
            r.www_authenticate.as_deref(),
            Some(r#"Basic realm="druid""#)
        );
        for (method, path) in [
            (Method::GET, "/druid/indexer/v1/tasks"),
            (Method::POST, "/druid/indexer/v1/task/any/shutdown"),
            (Method::POST, "/druid/indexer/v1/worker"),
            (Method::POST, "/druid/indexer/v1/worker/127.0.0.1:1/disable"),
            (Method::POST, "/druid/indexer/v1/action"),
            (Method::GET, "/metrics"),
            (Method::GET, USERS),
        ] {
            let r = stranger
                .send_root(method.clone(), path, Some(&json!({})))
                .await
                .unwrap();
            assert_eq!(r.status, 401, "{method} {path}: {}", r.body);
        }
    }
    assert_eq!(c.get("/task/sneaky").await.unwrap().status, 404);
    let health = ApiClient::new(&url)
        .get_root("/status/health")
        .await
        .unwrap();
    assert_eq!(health.status, 200, "health checks need no credentials");

    // A middle manager takes the internal client's credentials only.
    for who in ["", "admin:admin-secret", "druid_system:wrong"] {
        let client = if who.is_empty() {
            ApiClient::new(&mm)
        } else {
            ApiClient::authenticated(&mm, who)
        };
        let r = client.get_root("/druid/worker/v1/tasks").await.unwrap();
        assert_eq!(r.status, 401, "{who}: {}", r.body);
        let r = client
            .send_root(Method::POST, "/druid/worker/v1/task/x/shutdown", None)
            .await
            .unwrap();
        assert_eq!(r.status, 401, "{who}: {}", r.body);
    }
    let internal = ApiClient::authenticated(&mm, "druid_system:internal-secret");
    assert_eq!(
        internal
            .get_root("/druid/worker/v1/tasks")
            .await
            .unwrap()
            .status,
        200
    );

    // With credentials, tasks run: the batch task's peon locks, allocates and publishes through
    // the overlord; its log comes through the overlord from the middle manager.
    let task = one_row_task("secure-index", "secure_ds");
    let id = c.submit(&task).await.unwrap();
    let status = c.wait_complete(&id, TIMEOUT).await.unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    let log = c.log(&id).await.unwrap().unwrap_or_default();
    assert!(log.contains("published"), "{log}");
    // A shutdown reaches the peon through the middle manager.
    let id = c.submit(&noop("secure-long", 60_000)).await.unwrap();
    c.wait_running(&id, TIMEOUT).await.unwrap();
    assert_eq!(c.shutdown(&id).await.unwrap().status, 200);
    let status = c.wait_complete(&id, TIMEOUT).await.unwrap();
    assert_eq!(status["statusCode"], "FAILED", "{status}");

    // Users: create one, give it a password; it logs in, a wrong password does not, and once
    // deleted it cannot.
    let send = |method: Method, path: String, body: Option<serde_json::Value>| {
        let c = c.clone();
        async move { c.send_root(method, &path, body.as_ref()).await.unwrap() }
    };
    let r = send(Method::POST, format!("{USERS}/alice"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = send(Method::POST, format!("{USERS}/alice"), None).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("already exists"), "{}", r.body);
    let alice = ApiClient::authenticated(&url, "alice:wonderland");
    assert_eq!(
        alice.get("/tasks").await.unwrap().status,
        401,
        "no password yet"
    );
    let r = send(
        Method::POST,
        format!("{USERS}/alice/credentials"),
        Some(json!({"password": "wonderland"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Logged in (no 401); with no role yet, allowed nothing (403).
    assert_eq!(alice.get("/tasks").await.unwrap().status, 403);
    let listed = send(Method::GET, USERS.to_string(), None).await.json();
    assert_eq!(listed, json!(["admin", "alice", "druid_system"]));
    let r = send(
        Method::POST,
        format!("{USERS}/nobody/credentials"),
        Some(json!({"password": "x"})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = send(
        Method::POST,
        "/druid-ext/basic-security/authentication/db/Other/users/x".into(),
        None,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        send(Method::DELETE, format!("{USERS}/alice"), None)
            .await
            .status,
        200
    );
    assert_eq!(alice.get("/tasks").await.unwrap().status, 401, "deleted");

    // The admin's password changes through the same route; the initial one stops working.
    let r = send(
        Method::POST,
        format!("{USERS}/admin/credentials"),
        Some(json!({"password": "new-admin-secret"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let old = ApiClient::authenticated(&url, "admin:admin-secret");
    assert_eq!(old.get("/tasks").await.unwrap().status, 401);
    let new = ApiClient::authenticated(&url, "admin:new-admin-secret");
    assert_eq!(new.get("/tasks").await.unwrap().status, 200);

    // /status/properties shows that passwords are set, never what they are.
    let props = new.get_root("/status/properties").await.unwrap().body;
    assert!(
        !props.contains("admin-secret") && !props.contains("internal-secret"),
        "{props}"
    );
}

const AUTHN: &str = "/druid-ext/basic-security/authentication/db/MyBasicMetadataAuthenticator";
const AUTHZ: &str = "/druid-ext/basic-security/authorization/db/MyBasicMetadataAuthorizer";

/// An administrator's request, which must succeed.
async fn as_admin(
    c: &ApiClient,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> drover_testkit::RawResponse {
    let r = c
        .send_root(method.clone(), path, body.as_ref())
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
    r
}

/// Through Druid's routes: a user with password `pw`, known to the authorizer, holding `role`
/// with `permissions`.
async fn user_with_role(c: &ApiClient, user: &str, role: &str, permissions: serde_json::Value) {
    as_admin(c, Method::POST, &format!("{AUTHN}/users/{user}"), None).await;
    let password = Some(json!({"password": "pw"}));
    as_admin(
        c,
        Method::POST,
        &format!("{AUTHN}/users/{user}/credentials"),
        password,
    )
    .await;
    as_admin(c, Method::POST, &format!("{AUTHZ}/users/{user}"), None).await;
    as_admin(c, Method::POST, &format!("{AUTHZ}/roles/{role}"), None).await;
    let path = format!("{AUTHZ}/roles/{role}/permissions");
    as_admin(c, Method::POST, &path, Some(permissions)).await;
    as_admin(
        c,
        Method::POST,
        &format!("{AUTHZ}/users/{user}/roles/{role}"),
        None,
    )
    .await;
}

/// Roles and permissions with Druid's model: a user may do what its roles' permissions name
/// (an action on a data source, on the cluster's `STATE` or on `CONFIG`), 403 otherwise, and
/// nothing it was refused happens. Task actions are for the internal client alone, so not even
/// the admin can act for a task.
#[tokio::test(flavor = "multi_thread")]
async fn roles_grant_what_their_permissions_name() {
    let cluster =
        Cluster::start(ClusterSpec::workers(&[2]).basic_auth("admin-secret", "internal-secret"))
            .await;
    let c = &cluster.client;
    let url = cluster.overlords[0].url.clone();
    for (user, role, permissions) in [
        (
            "reader",
            "wiki_reader",
            json!([{"resource": {"name": "wiki.*", "type": "DATASOURCE"}, "action": "READ"},
                   {"resource": {"name": ".*", "type": "STATE"}, "action": "READ"}]),
        ),
        (
            "writer",
            "wiki_writer",
            json!([{"resource": {"name": "wiki", "type": "DATASOURCE"}, "action": "WRITE"}]),
        ),
    ] {
        user_with_role(c, user, role, permissions).await;
    }
    let shown = as_admin(c, Method::GET, &format!("{AUTHZ}/users/reader"), None)
        .await
        .json();
    assert_eq!(shown, json!({"name": "reader", "roles": ["wiki_reader"]}));
    let reader = ApiClient::authenticated(&url, "reader:pw");
    let writer = ApiClient::authenticated(&url, "writer:pw");

    // The writer may write `wiki` and nothing else; the reader may only read.
    let r = reader
        .post("/task", one_row_task("by-reader", "wiki").to_string())
        .await
        .unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("Access-Check-Result"), "{}", r.body);
    let r = writer
        .post("/task", one_row_task("elsewhere", "other").to_string())
        .await
        .unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    let id = writer
        .submit(&one_row_task("by-writer", "wiki"))
        .await
        .unwrap();
    let status = c.wait_complete(&id, TIMEOUT).await.unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    for refused in ["by-reader", "elsewhere"] {
        assert_eq!(
            c.get(&format!("/task/{refused}")).await.unwrap().status,
            404
        );
    }
    // Reading a task needs READ on its data source; lists need STATE READ.
    assert_eq!(
        reader
            .get(&format!("/task/{id}/status"))
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        writer
            .get(&format!("/task/{id}/status"))
            .await
            .unwrap()
            .status,
        403
    );
    assert_eq!(reader.get("/tasks").await.unwrap().status, 200);
    assert_eq!(writer.get("/tasks").await.unwrap().status, 403);
    let r = reader
        .get_root("/druid/coordinator/v1/datasources/wiki/segments")
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = reader
        .send_root(
            Method::DELETE,
            "/druid/coordinator/v1/datasources/wiki",
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        c.get_root("/druid/coordinator/v1/datasources/wiki/segments")
            .await
            .unwrap()
            .json()
            .as_array()
            .map(Vec::len),
        Some(1),
        "still there"
    );
    // Configuration and users need CONFIG; the reader has none.
    let r = reader.post("/worker", json!({}).to_string()).await.unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    let r = reader.get_root(&format!("{AUTHN}/users")).await.unwrap();
    assert_eq!(r.status, 403, "{}", r.body);

    // Not even the admin acts for a task: only the peons' internal client does.
    let r = c
        .post(
            "/action",
            json!({"task": {"id": id}, "action": {"type": "lockList"}}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    // A peon acts with its own task's token (made by its middle manager from the internal
    // password, which the peon never sees): for its own task, and for nothing else.
    let token = drover_service::auth::task_token("internal-secret", &id);
    let peon = ApiClient::authenticated(&url, &format!("{id}:{token}"));
    let action =
        |task: &str| json!({"task": {"id": task}, "action": {"type": "lockList"}}).to_string();
    let r = peon.post("/action", action(&id)).await.unwrap();
    assert_eq!(
        r.status, 400,
        "its own (complete) task is not active: {}",
        r.body
    );
    let r = peon.post("/action", action("another-task")).await.unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(peon.get("/tasks").await.unwrap().status, 403);
    let forged = ApiClient::authenticated(&url, &format!("another-task:{token}"));
    assert_eq!(
        forged
            .post("/action", action("another-task"))
            .await
            .unwrap()
            .status,
        401
    );

    // A malformed permission is a 400 naming where; nothing changes.
    let r = c
        .send_root(
            Method::POST,
            &format!("{AUTHZ}/roles/wiki_reader/permissions"),
            Some(&json!([{"resource": {"name": "x", "type": "TABLE"}, "action": "READ"}])),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("[0].resource.type"), "{}", r.body);
    assert_eq!(reader.get("/tasks").await.unwrap().status, 200);
}

/// Every server on HTTPS (a CA made for the test): the noop and batch flows run, the overlord
/// reaches the middle manager and the peons reach the overlord over TLS, and a client that
/// speaks plain HTTP or does not trust the CA gets nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_on_tls_runs_tasks_and_refuses_plain_http() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2]).tls()).await;
    let c = &cluster.client;
    let url = cluster.overlords[0].url.clone();
    assert!(url.starts_with("https://"), "{url}");
    let id = c.submit(&noop("tls-noop", 0)).await.unwrap();
    let status = c.wait_complete(&id, TIMEOUT).await.unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    let task = one_row_task("tls-index", "tls_ds");
    let id = c.submit(&task).await.unwrap();
    let status = c.wait_complete(&id, TIMEOUT).await.unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    let log = c.log(&id).await.unwrap().unwrap_or_default();
    assert!(log.contains("published"), "{log}");
    let workers = c.get("/workers").await.unwrap().json();
    assert_eq!(workers[0]["worker"]["scheme"], "https", "{workers}");

    // Plain HTTP on the TLS port, and HTTPS without trusting the CA: no answer.
    let plain = ApiClient::new(url.replacen("https://", "http://", 1));
    assert!(plain.get_root("/status/health").await.is_err());
    let untrusting = ApiClient::new(&url);
    let err = untrusting.get_root("/status/health").await.unwrap_err();
    assert!(format!("{err:#}").contains("certificate"), "{err:#}");
}

/// Input-source security (Druid's `enableInputSourceSecurity`): an ingestion also needs READ on
/// the `EXTERNAL` resource of its input source type. Methods no API uses are refused, and audit
/// rows name the authenticated user, whatever `X-Druid-Author` claims.
#[tokio::test(flavor = "multi_thread")]
async fn input_sources_need_external_permission_and_audits_name_the_user() {
    let cluster = Cluster::start(
        ClusterSpec::workers(&[2])
            .basic_auth("admin-secret", "internal-secret")
            .overlord_args(&["--security-input-source-security", "true"]),
    )
    .await;
    let c = &cluster.client;
    let url = cluster.overlords[0].url.clone();
    let wiki_write = json!({"resource": {"name": "wiki", "type": "DATASOURCE"}, "action": "WRITE"});
    user_with_role(c, "ingester", "ingest", json!([wiki_write])).await;
    let ingester = ApiClient::authenticated(&url, "ingester:pw");
    let task = one_row_task("inline-wiki", "wiki");
    let r = ingester.post("/task", task.to_string()).await.unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.body.contains("EXTERNAL") && r.body.contains("inline"),
        "{}",
        r.body
    );
    let inline_read = json!({"resource": {"name": "inline", "type": "EXTERNAL"}, "action": "READ"});
    let path = format!("{AUTHZ}/roles/ingest/permissions");
    as_admin(
        c,
        Method::POST,
        &path,
        Some(json!([wiki_write, inline_read])),
    )
    .await;
    let r = ingester.post("/task", task.to_string()).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    // TRACE is no API's method: 405, before any credentials are looked at.
    let r = ApiClient::new(&url)
        .send_root(Method::TRACE, "/druid/indexer/v1/tasks", None)
        .await
        .unwrap();
    assert_eq!(r.status, 405, "{}", r.body);

    // The worker config's audit row names the admin, not the header's claim.
    let r = c
        .http_with_headers(
            Method::POST,
            "/druid/indexer/v1/worker",
            &json!({"selectStrategy": {"type": "fillCapacity"}}),
            &[("X-Druid-Author", "mallory")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let history = c.get("/worker/history").await.unwrap().json();
    assert_eq!(history[0]["auditInfo"]["author"], "admin", "{history}");
}

/// Failover with authentication on: the new leader takes the same credentials and keeps the
/// users, and the tasks of the old one.
#[tokio::test(flavor = "multi_thread")]
async fn a_new_leader_takes_the_same_credentials() {
    let mut cluster = Cluster::start(ClusterSpec {
        overlords: 2,
        ..ClusterSpec::workers(&[2]).basic_auth("admin-secret", "internal-secret")
    })
    .await;
    let old = cluster.wait_for_leader(TIMEOUT).await;
    let leader = cluster.overlords[old].client.clone();
    let r = leader
        .send_root(Method::POST, &format!("{USERS}/carol"), None)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = leader
        .send_root(
            Method::POST,
            &format!("{USERS}/carol/credentials"),
            Some(&json!({"password": "pw"})),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let first = leader.submit(&noop("before-failover", 0)).await.unwrap();
    leader.wait_complete(&first, TIMEOUT).await.unwrap();

    cluster.overlords[old].process.kill9();
    let new = cluster.wait_for_leader(TIMEOUT).await;
    assert_ne!(new, old);
    let leader = cluster.overlords[new].client.clone();
    let id = leader.submit(&noop("after-failover", 0)).await.unwrap();
    let status = leader.wait_complete(&id, TIMEOUT).await.unwrap();
    assert_eq!(status["statusCode"], "SUCCESS", "{status}");
    let before = leader.status(&first).await.unwrap().unwrap_or_default();
    assert_eq!(before["statusCode"], "SUCCESS", "{before}");
    // Users are in the metadata store: carol logs in on the new leader (no role: 403, not 401).
    let url = cluster.overlords[new].url.clone();
    let carol = ApiClient::authenticated(&url, "carol:pw");
    assert_eq!(carol.get("/tasks").await.unwrap().status, 403);
    let stranger = ApiClient::new(&url);
    assert_eq!(stranger.get("/tasks").await.unwrap().status, 401);
}
