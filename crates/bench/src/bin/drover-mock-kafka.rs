//! `drover-mock-kafka`: librdkafka's mock Kafka cluster (the real protocol, one broker, in this
//! process) made reachable from containers, for `scripts/compose-cluster`'s Kafka flow. The mock
//! only listens on 127.0.0.1, so a forwarder listens on `--listen` (the compose network's gateway
//! address, which containers reach) at the same port, and the broker advertises that address.
//! It creates the topic, produces `--events` JSON events (`ts` now, a unique `id`), prints
//! `bootstrap <host:port>` and serves until its stdin closes.

use std::ffi::{CStr, CString};
use std::io::Read;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use rdkafka::bindings as rdsys;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

#[derive(Parser)]
struct Args {
    /// The address containers reach this host at (the compose network's gateway).
    #[arg(long)]
    listen: String,
    #[arg(long, default_value = "events")]
    topic: String,
    #[arg(long, default_value_t = 2)]
    partitions: i32,
    #[arg(long, default_value_t = 100)]
    events: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // A client whose configuration asks for a mock cluster owns one; it lives as long as this
    // producer does.
    let producer: BaseProducer = ClientConfig::new()
        .set("test.mock.num.brokers", "1")
        .set("linger.ms", "5")
        .create()
        .context("cannot start the mock cluster")?;
    // SAFETY: the handle is the live producer's; librdkafka returns its mock cluster, which
    // stays valid while the producer exists (until the end of main).
    let cluster = unsafe { rdsys::rd_kafka_handle_mock_cluster(producer.client().native_ptr()) };
    if cluster.is_null() {
        bail!("the client has no mock cluster");
    }
    // SAFETY: `cluster` is valid (above); the string it returns is owned by librdkafka.
    let bootstraps = unsafe { CStr::from_ptr(rdsys::rd_kafka_mock_cluster_bootstraps(cluster)) }
        .to_string_lossy()
        .into_owned();
    let port: u16 = bootstraps
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("unexpected bootstrap servers {bootstraps}"))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind((args.listen.as_str(), port)))
        .with_context(|| format!("cannot listen on {}:{port}", args.listen))?;
    runtime.spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await
                {
                    tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                        .await
                        .ok();
                }
            });
        }
    });

    let host = CString::new(args.listen.clone())?;
    let topic = CString::new(args.topic.clone())?;
    // SAFETY: valid cluster (above) and NUL-terminated strings that outlive the calls.
    unsafe {
        rdsys::rd_kafka_mock_broker_set_host_port(cluster, 1, host.as_ptr(), i32::from(port));
        let err = rdsys::rd_kafka_mock_topic_create(cluster, topic.as_ptr(), args.partitions, 1);
        if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            bail!("cannot create topic {}: {err:?}", args.topic);
        }
    }

    for id in 0..args.events {
        let payload = serde_json::json!({
            "ts": chrono::Utc::now().to_rfc3339(),
            "id": format!("e{id}"),
            "page": format!("p{}", id % 7),
            "n": 1,
        })
        .to_string();
        let key = id.to_string();
        while let Err((e, _)) =
            producer.send(BaseRecord::to(&args.topic).key(&key).payload(&payload))
        {
            eprintln!("producing: {e}; trying again");
            producer.poll(Duration::from_millis(50));
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .context("the events were not all produced")?;
    println!("bootstrap {}:{port}", args.listen);
    // Serve until whoever started us closes our stdin.
    std::io::stdin().read_to_end(&mut Vec::new()).ok();
    Ok(())
}
