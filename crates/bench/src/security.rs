//! `drover-bench --security N`: what authentication and TLS cost a request. The same cluster
//! shape four times — plain, HTTP Basic, TLS, both — and in each: N reads of a cheap route on a
//! kept-alive connection, N reads each on a new connection (a TLS handshake each), and noop
//! tasks from POST to SUCCESS. With authentication on, also the cost of a wrong password for a
//! stored user (one PBKDF2-HMAC-SHA512 of 10,000 rounds, as Druid's default; a right one is
//! hashed once a minute at most).

use std::time::Instant;

use drover_testkit::{ApiClient, ClusterSpec};
use serde_json::json;

use crate::{own_cluster, summary};

const TASKS: usize = 50;

pub async fn run(n: usize) -> anyhow::Result<()> {
    for (name, auth, tls) in [
        ("plain HTTP", false, false),
        ("HTTP Basic", true, false),
        ("TLS", false, true),
        ("TLS + HTTP Basic", true, true),
    ] {
        let mut spec = ClusterSpec::workers(&[4]);
        if auth {
            spec = spec.basic_auth("bench-admin", "bench-internal");
        }
        if tls {
            spec = spec.tls();
        }
        let own = own_cluster(spec).await?;
        let cluster = &own.cluster;
        let url = cluster.overlords[0].url.clone();
        let credentials = auth.then_some("admin:bench-admin");
        let ca = cluster.ca_pem.as_deref().map(str::as_bytes);
        println!("== {name} ==");

        let kept = ApiClient::configured(&url, credentials, ca, true);
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let r = kept.get("/isLeader").await?;
            anyhow::ensure!(r.status == 200, "isLeader answered {}", r.status);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        summary("GET /isLeader, kept-alive", times);

        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let fresh = ApiClient::configured(&url, credentials, ca, true);
            let t = Instant::now();
            let r = fresh.get("/isLeader").await?;
            anyhow::ensure!(r.status == 200, "isLeader answered {}", r.status);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        summary("GET /isLeader, new connection", times);

        let mut times = Vec::with_capacity(TASKS);
        for i in 0..TASKS {
            let t = Instant::now();
            let id = kept
                .submit(&json!({"type": "noop", "id": format!("bench_sec_{i}"), "runTime": 0}))
                .await?;
            let s = kept
                .wait_complete(&id, std::time::Duration::from_secs(60))
                .await?;
            anyhow::ensure!(s["statusCode"] == "SUCCESS", "task failed: {s}");
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        summary("noop POST -> SUCCESS", times);

        if auth {
            // A stored user: each wrong password is one PBKDF2 (wrong ones are never cached).
            let users =
                "/druid-ext/basic-security/authentication/db/MyBasicMetadataAuthenticator/users";
            let r = kept
                .send_root(reqwest::Method::POST, &format!("{users}/bench"), None)
                .await?;
            anyhow::ensure!(r.status == 200, "creating a user answered {}", r.status);
            let r = kept
                .send_root(
                    reqwest::Method::POST,
                    &format!("{users}/bench/credentials"),
                    Some(&json!({"password": "right"})),
                )
                .await?;
            anyhow::ensure!(r.status == 200, "setting a password answered {}", r.status);
            let wrong = ApiClient::configured(&url, Some("bench:wrong"), ca, true);
            let mut times = Vec::with_capacity(20);
            for _ in 0..20 {
                let t = Instant::now();
                let r = wrong.get("/isLeader").await?;
                anyhow::ensure!(r.status == 401, "a wrong password answered {}", r.status);
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            summary("401 for a wrong password (PBKDF2)", times);
        }
    }
    Ok(())
}
