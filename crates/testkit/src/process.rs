//! Child processes that die with the test: killed on drop, and (through PR_SET_PDEATHSIG) killed
//! by the kernel if the test process dies first.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the Drover binaries are: `DROVER_BIN_DIR`, else the cargo target dir this test runs from.
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("DROVER_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> or target/<profile>/<bench>
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} not found: build the binaries first (`cargo build --workspace --bins`; scripts/test does it)",
        path.display()
    );
    path
}

/// A port nobody listens on right now, below the kernel's ephemeral range (32768 and up), so
/// that outgoing connections of the many processes tests run in parallel cannot take it between
/// now and the moment a server binds it.
pub fn free_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::rng();
    loop {
        let port = rng.random_range(10_000..30_000u16);
        // One bind at a time: a live listener on 127.0.0.1 would make the 0.0.0.0 bind fail.
        let loopback_free = std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
        let any_free = loopback_free && std::net::TcpListener::bind(("0.0.0.0", port)).is_ok();
        if any_free {
            return port;
        }
    }
}

pub struct ManagedProcess {
    pub name: String,
    child: Option<Child>,
    command: Vec<String>,
    env: Vec<(String, String)>,
    pub log: PathBuf,
}

fn spawn(command: &[String], env: &[(String, String)], log: &Path) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..])
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    // SAFETY: prctl is async-signal-safe; it runs in the child between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd.spawn()
}

impl ManagedProcess {
    pub fn start(
        name: &str,
        command: Vec<String>,
        env: Vec<(String, String)>,
        log: PathBuf,
    ) -> Self {
        let child = spawn(&command, &env, &log)
            .unwrap_or_else(|e| panic!("cannot start {name} ({:?}): {e}", command[0]));
        ManagedProcess {
            name: name.into(),
            child: Some(child),
            command,
            env,
            log,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Sends a signal (e.g. `libc::SIGKILL`, `SIGTERM`, `SIGSTOP`, `SIGCONT`).
    pub fn signal(&self, sig: i32) {
        if let Some(pid) = self.pid() {
            // SAFETY: plain kill(2) on our own child.
            unsafe { libc::kill(pid as i32, sig) };
        }
    }

    /// kill -9 and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
        }
    }

    /// SIGTERM, and wait for exit up to `timeout`; true if it exited.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    self.child = None;
                    return true;
                }
            } else {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Sets the value that follows `flag` in the command (for the next `restart`).
    pub fn set_arg(&mut self, flag: &str, value: &str) {
        if let Some(i) = self.command.iter().position(|a| a == flag) {
            if let Some(v) = self.command.get_mut(i + 1) {
                *v = value.to_string();
            }
        }
    }

    /// Waits for a server started with `--port 0 --port-file <file>` to write the port it
    /// listens on; later restarts listen on that same port.
    pub fn wait_for_port(&mut self, file: &Path) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(port) = std::fs::read_to_string(file)
                .ok()
                .and_then(|s| s.trim().parse::<u16>().ok())
            {
                self.set_arg("--port", &port.to_string());
                return port;
            }
            if Instant::now() > deadline || !self.is_running() {
                panic!(
                    "{} never wrote its port to {}:\n{}",
                    self.name,
                    file.display(),
                    self.log_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the same command again (after a kill).
    pub fn restart(&mut self) {
        self.kill9();
        self.child = Some(spawn(&self.command, &self.env, &self.log).expect("restart"));
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
