//! How peons are started: forked by the middle manager's peon launcher (the default), or exec'd
//! per task with `peon_fork_server = false`; and what happens when the launcher dies under
//! running peons.

use std::time::{Duration, Instant};

use drover_scenarios::*;

const LONG: Duration = Duration::from_secs(60);

fn command_line(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peons_are_forked_by_the_launcher_or_execd_when_it_is_off() {
    let mut spec = ClusterSpec::workers(&[2]);
    let mut execing = MiddleManagerSpec::with_capacity(2);
    execing.extra_args = vec!["--peon-fork-server".into(), "false".into()];
    spec.middle_managers.push(execing);
    let cluster = Cluster::start(spec).await;
    let c = &cluster.client;

    // Two long tasks, one on each worker (the default strategy spreads them).
    let (first, first_pid) = running_peon(&cluster, "launched_a").await;
    let (second, second_pid) = running_peon(&cluster, "launched_b").await;
    for (id, pid) in [(&first, first_pid), (&second, second_pid)] {
        let log = c.log(id).await.unwrap().unwrap();
        let worker = log_facts(&log).worker.unwrap();
        let mm = cluster
            .middle_managers
            .iter()
            .find(|m| m.host == worker)
            .unwrap();
        let mm_pid = mm.process.pid().unwrap() as i32;
        let parent = parent_of(pid).unwrap();
        if mm.host == cluster.middle_managers[0].host {
            // Forked: middle manager → launcher → peon.
            assert_ne!(
                parent, mm_pid,
                "the peon of {id} was exec'd by its middle manager"
            );
            assert!(
                command_line(parent).contains("--launcher"),
                "{}",
                command_line(parent)
            );
            assert_eq!(parent_of(parent).unwrap(), mm_pid);
        } else {
            assert_eq!(parent, mm_pid, "the peon of {id} was not exec'd");
            assert!(
                command_line(pid).contains(id.as_str()),
                "{}",
                command_line(pid)
            );
        }
    }
    for id in [&first, &second] {
        assert_eq!(c.shutdown(id).await.unwrap().status, 200);
        c.wait_complete(id, LONG).await.unwrap();
    }
    // Short tasks succeed either way, with their logs.
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(c.submit(&noop(&format!("short_{i}"), 0)).await.unwrap());
    }
    for id in &ids {
        let status = c.wait_complete(id, LONG).await.unwrap();
        assert_eq!(status["statusCode"], "SUCCESS", "{status}");
        let log = c.log(id).await.unwrap().unwrap();
        assert!(log.contains("finished task"), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_launcher_fails_its_running_peons_and_a_new_one_takes_over() {
    let cluster = Cluster::start(ClusterSpec::workers(&[2])).await;
    let c = &cluster.client;
    let (id, pid) = running_peon(&cluster, "under_a_dying_launcher").await;
    let launcher = parent_of(pid).unwrap();
    assert!(command_line(launcher).contains("--launcher"));
    // SAFETY: kill(2) on the launcher found above.
    unsafe { libc::kill(launcher, libc::SIGKILL) };

    // Nobody can report the peon's exit any more: it is killed and its task failed, not left
    // running unwatched.
    let msg = wait_failed(&cluster, &id, LONG).await;
    assert!(msg.contains("peon launcher exited"), "{msg}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_alive(pid) {
        assert!(
            Instant::now() < deadline,
            "peon {pid} outlived its launcher"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The next task gets a new launcher.
    let (next, next_pid) = running_peon(&cluster, "after_the_launcher_died").await;
    let new_launcher = parent_of(next_pid).unwrap();
    assert_ne!(new_launcher, launcher);
    assert!(command_line(new_launcher).contains("--launcher"));
    assert_eq!(c.shutdown(&next).await.unwrap().status, 200);
    c.wait_complete(&next, LONG).await.unwrap();
}
