//! A real ZooKeeper server (Debian's `zookeeper` package), one per test process, shared by all
//! its tests: each cluster uses its own base path, so tests never see each other's znodes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::process::{free_port, ManagedProcess};

const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
const SLF4J_JAR: &str = "/usr/share/java/slf4j-nop.jar";

pub struct ZooKeeper {
    pub port: u16,
    pub dir: PathBuf,
    process: ManagedProcess,
}

static SHARED: OnceLock<String> = OnceLock::new();

impl ZooKeeper {
    /// Starts a server in `dir` on a free port and waits until it serves.
    pub fn start(dir: PathBuf) -> ZooKeeper {
        assert!(
            std::path::Path::new(ZOOKEEPER_JAR).exists(),
            "{ZOOKEEPER_JAR} is missing: install Debian's zookeeper package (scripts/test does)"
        );
        let port = free_port();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let cfg = dir.join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n\
                 4lw.commands.whitelist=*\nadmin.enableServer=false\nminSessionTimeout=2000\nmaxSessionTimeout=60000\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let command = vec![
            "java".to_string(),
            "-Xms32m".into(),
            "-Xmx256m".into(),
            "-XX:+UseSerialGC".into(),
            "-XX:TieredStopAtLevel=1".into(),
            "-cp".into(),
            format!("{ZOOKEEPER_JAR}:{SLF4J_JAR}"),
            "org.apache.zookeeper.server.ZooKeeperServerMain".into(),
            cfg.display().to_string(),
        ];
        let process =
            ManagedProcess::start("zookeeper", command, vec![], dir.join("zookeeper.log"));
        let zk = ZooKeeper { port, dir, process };
        zk.wait_serving(Duration::from_secs(30));
        zk
    }

    /// `127.0.0.1:<port>`.
    /// The server's process id (its JVM), e.g. to read its CPU time.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server shared by every test in this process, started on first use. It is started
    /// from a thread that never ends, so it lives (and dies) with the test process.
    pub fn shared() -> String {
        SHARED
            .get_or_init(|| {
                let (tx, rx) = std::sync::mpsc::channel();
                std::thread::spawn(move || {
                    let dir = tempfile::Builder::new()
                        .prefix("drover-zk-")
                        .tempdir()
                        .unwrap()
                        .keep();
                    let zk = ZooKeeper::start(dir);
                    tx.send(zk.connect_string()).unwrap();
                    let _keep = zk;
                    loop {
                        std::thread::park();
                    }
                });
                rx.recv().expect("ZooKeeper did not start")
            })
            .clone()
    }

    /// `srvr` answers `Mode:` only once the database is loaded (`ruok` answers too early).
    fn wait_serving(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if four_letter_word(self.port, "srvr").is_some_and(|r| r.contains("Mode:")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "ZooKeeper did not start in {timeout:?}:\n{}",
            self.process.log_tail(40)
        );
    }

    pub fn stop(&mut self) {
        self.process.kill9();
    }

    pub fn restart(&mut self) {
        self.process.restart();
        self.wait_serving(Duration::from_secs(30));
    }
}

fn four_letter_word(port: u16, word: &str) -> Option<String> {
    let mut s =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
            .ok()?;
    s.set_read_timeout(Some(Duration::from_millis(1000))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}
