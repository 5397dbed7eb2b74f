//! The systemd deployment: `scripts/install --root` lays out the binaries, settings and units as
//! on a host; `systemd-analyze verify` accepts the units there with no warning; the settings have
//! absolute paths; and the middle manager's stop timeout leaves room for its graceful shutdown.
//! (The compose cluster is proven by `scripts/compose-cluster`, which `scripts/test` runs.)

use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn root_of_workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// `key = value` of a unit or TOML file (the first one), without quotes and comments.
fn setting(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| {
            v.split('#')
                .next()
                .unwrap()
                .trim()
                .trim_matches('"')
                .to_string()
        })
    })
}

fn duration(text: &str) -> Duration {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Duration::from_secs(seconds);
    }
    let (n, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap());
    let n: u64 = n.parse().unwrap();
    match unit {
        "s" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(60 * n),
        other => panic!("unit {other} in {text}"),
    }
}

#[test]
fn the_systemd_units_install_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let profile = drover_testkit::bin_dir();
    let profile = profile.file_name().unwrap().to_str().unwrap();
    let out = Command::new(root_of_workspace().join("scripts/install"))
        .args([
            "--root",
            root.to_str().unwrap(),
            "--profile",
            profile,
            "--no-build",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // systemd's own units, so that verify can resolve multi-user.target and friends.
    let units = root.join("usr/lib/systemd");
    std::fs::create_dir_all(&units).unwrap();
    let copied = Command::new("cp")
        .args(["-r", "/usr/lib/systemd/system"])
        .arg(&units)
        .status()
        .unwrap();
    assert!(copied.success());
    let ours = [
        root.join("etc/systemd/system/drover-overlord.service"),
        root.join("etc/systemd/system/drover-middle-manager.service"),
    ];
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .args(&ours)
        .output()
        .expect("systemd-analyze (Debian's systemd package) is installed");
    let said = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "systemd-analyze verify: {said}");
    assert!(
        said.trim().is_empty(),
        "systemd-analyze verify warns: {said}"
    );

    for unit in &ours {
        let text = std::fs::read_to_string(unit).unwrap();
        assert_eq!(
            setting(&text, "StateDirectory").as_deref(),
            Some("drover"),
            "{text}"
        );
        assert_eq!(
            setting(&text, "LimitNOFILE").as_deref(),
            Some("65536"),
            "{text}"
        );
        assert_eq!(setting(&text, "User").as_deref(), Some("drover"), "{text}");
    }
    let unit = std::fs::read_to_string(&ours[1]).unwrap();
    let config = std::fs::read_to_string(root.join("etc/drover/middle-manager.toml")).unwrap();
    let stop = duration(&setting(&unit, "TimeoutStopSec").unwrap());
    let graceful = duration(&setting(&config, "graceful_shutdown_timeout").unwrap());
    let task = duration(&setting(&config, "task_shutdown_timeout").unwrap());
    assert!(
        stop > graceful + task,
        "TimeoutStopSec {stop:?} must exceed the graceful shutdown {graceful:?} + {task:?}"
    );
    for (file, key) in [
        ("middle-manager.toml", "base_task_dir"),
        ("middle-manager.toml", "task_log_dir"),
        ("middle-manager.toml", "deep_storage"),
        ("overlord.toml", "task_log_dir"),
        ("overlord.toml", "metadata_url"),
    ] {
        let text = std::fs::read_to_string(root.join("etc/drover").join(file)).unwrap();
        let value = setting(&text, key).unwrap();
        assert!(value.contains("/var/lib/drover/"), "{file} {key} = {value}");
    }
    assert!(root.join("usr/local/bin/drover-peon").exists());
}
