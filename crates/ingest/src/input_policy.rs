//! What a batch task may read (see docs/operations.md#safe-ingestion-inputs): the directories a
//! `local` input source may reach, and the protocols and hosts an `http` input source may fetch
//! from. Checked twice: by the overlord when the task is submitted (what can be told from the
//! spec: paths, schemes, literal addresses; a 400 naming the input), and by the peon when it
//! reads (every resolved file by its canonical path, every address a host name resolves to, every
//! redirect), so that a symlink, a DNS name or a redirect cannot lead somewhere the spec could not.
//!
//! Defaults refuse what no ingestion needs and an attacker wants: the system's own directories
//! (`/etc`, `/proc`…) and loopback, link-local (cloud metadata), unspecified and multicast
//! addresses. An allow-list, when given, replaces the defaults.

use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::spec::InputSource;

/// Directories no ingestion reads from, unless `local_allowed_dirs` names them.
pub const SYSTEM_DIRS: &[&str] = &[
    "/etc", "/proc", "/sys", "/dev", "/boot", "/root", "/run", "/var/run",
];

/// The environment variable a middle manager hands its policy to its peons in (JSON).
pub const POLICY_ENV: &str = "DROVER_INPUT_POLICY";

/// The `[ingestion]` table of the overlord's and the middle manager's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputPolicy {
    /// Directories local inputs may be read from; empty: any but `SYSTEM_DIRS`.
    pub local_allowed_dirs: Vec<PathBuf>,
    /// Druid's `druid.ingestion.http.allowedProtocols`.
    pub http_allowed_protocols: Vec<String>,
    /// Host names, addresses or networks (`10.0.0.0/8`) http inputs may reach; empty: any
    /// address but loopback, link-local, unspecified and multicast ones.
    pub http_allowed_hosts: Vec<String>,
}

impl Default for InputPolicy {
    fn default() -> Self {
        InputPolicy {
            local_allowed_dirs: Vec::new(),
            http_allowed_protocols: vec!["http".into(), "https".into()],
            http_allowed_hosts: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputRefused {
    #[error("local input [{path}] is outside the allowed directories {allowed:?}")]
    LocalOutside { path: String, allowed: Vec<PathBuf> },
    #[error("local input [{path}] is in a system directory; name it in ingestion_local_allowed_dirs to read it")]
    LocalSystem { path: String },
    #[error("http input [{uri}] is not a URL: {why}")]
    BadUri { uri: String, why: String },
    #[error("http input [{uri}] uses protocol [{scheme}]; allowed: {allowed:?} (druid.ingestion.http.allowedProtocols)")]
    Protocol {
        uri: String,
        scheme: String,
        allowed: Vec<String>,
    },
    #[error("http input [{uri}] may not reach [{host}]: {why}")]
    Host {
        uri: String,
        host: String,
        why: String,
    },
}

/// `..` and `.` taken out without touching the file system (the overlord may not see the files).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// A network (`addr/prefix`) or a single address.
fn in_network(ip: IpAddr, rule: &str) -> bool {
    let (addr, prefix) = match rule.split_once('/') {
        Some((a, p)) => (a, p.parse::<u32>().ok()),
        None => (rule, None),
    };
    let Ok(net) = addr.parse::<IpAddr>() else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let bits = prefix.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let bits = prefix.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Why an address is refused when no allow-list is given, if it is.
fn special(ip: IpAddr) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Some("a loopback address"),
        IpAddr::V4(v4) if v4.is_link_local() => {
            Some("a link-local address (cloud metadata lives there)")
        }
        IpAddr::V4(v4) if v4.is_unspecified() || v4.is_broadcast() => Some("not a host's address"),
        IpAddr::V4(v4) if v4.is_multicast() => Some("a multicast address"),
        IpAddr::V6(v6) if v6.is_loopback() => Some("a loopback address"),
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => Some("a link-local address"),
        IpAddr::V6(v6) if v6.is_unspecified() => Some("not a host's address"),
        IpAddr::V6(v6) if v6.is_multicast() => Some("a multicast address"),
        _ => None,
    }
}

impl InputPolicy {
    /// The policy a middle manager handed its peon, or the default.
    pub fn from_env() -> InputPolicy {
        std::env::var(POLICY_ENV)
            .ok()
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default()
    }

    /// Whether a local path may be read; the peon passes canonical paths (symlinks resolved).
    pub fn check_local(&self, path: &Path) -> Result<(), InputRefused> {
        let p = normalize(path);
        let shown = path.display().to_string();
        if self.local_allowed_dirs.is_empty() {
            if SYSTEM_DIRS.iter().any(|d| p.starts_with(d)) {
                return Err(InputRefused::LocalSystem { path: shown });
            }
            return Ok(());
        }
        if self
            .local_allowed_dirs
            .iter()
            .any(|d| p.starts_with(normalize(d)))
        {
            Ok(())
        } else {
            Err(InputRefused::LocalOutside {
                path: shown,
                allowed: self.local_allowed_dirs.clone(),
            })
        }
    }

    /// The URL, if its protocol is allowed and its host is not refused by what the URL alone
    /// says (a literal address, `localhost`, a name outside the allow-list of names).
    pub fn check_uri(&self, uri: &str) -> Result<url::Url, InputRefused> {
        let url = url::Url::parse(uri).map_err(|e| InputRefused::BadUri {
            uri: uri.into(),
            why: e.to_string(),
        })?;
        if !self
            .http_allowed_protocols
            .iter()
            .any(|p| p.eq_ignore_ascii_case(url.scheme()))
        {
            return Err(InputRefused::Protocol {
                uri: uri.into(),
                scheme: url.scheme().into(),
                allowed: self.http_allowed_protocols.clone(),
            });
        }
        let refused = |host: &str, why: String| InputRefused::Host {
            uri: uri.into(),
            host: host.into(),
            why,
        };
        match url.host() {
            None => return Err(refused("", "the URL names no host".into())),
            Some(url::Host::Ipv4(ip)) => self.check_address(uri, &ip.to_string(), ip.into())?,
            Some(url::Host::Ipv6(ip)) => self.check_address(uri, &ip.to_string(), ip.into())?,
            Some(url::Host::Domain(name)) => {
                let listed = self.name_listed(name);
                let has_networks = self
                    .http_allowed_hosts
                    .iter()
                    .any(|h| h.parse::<IpAddr>().is_ok() || h.contains('/'));
                if !self.http_allowed_hosts.is_empty() && !listed && !has_networks {
                    return Err(refused(
                        name,
                        "it is not in ingestion_http_allowed_hosts".into(),
                    ));
                }
                let local_name = name.eq_ignore_ascii_case("localhost")
                    || name.to_ascii_lowercase().ends_with(".localhost");
                if local_name && !listed {
                    return Err(refused(name, "a loopback address".into()));
                }
            }
        }
        Ok(url)
    }

    fn name_listed(&self, name: &str) -> bool {
        self.http_allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
    }

    /// Whether `host` (as the URL names it) may be reached at `ip` (what it resolved to).
    pub fn check_address(&self, uri: &str, host: &str, ip: IpAddr) -> Result<(), InputRefused> {
        let refused = |why: String| InputRefused::Host {
            uri: uri.into(),
            host: host.into(),
            why,
        };
        if self.http_allowed_hosts.is_empty() {
            return match special(ip) {
                Some(why) => Err(refused(format!("{ip} is {why}"))),
                None => Ok(()),
            };
        }
        if self.name_listed(host) || self.http_allowed_hosts.iter().any(|r| in_network(ip, r)) {
            Ok(())
        } else {
            Err(refused(format!(
                "{ip} is not in ingestion_http_allowed_hosts {:?}",
                self.http_allowed_hosts
            )))
        }
    }

    /// What can be told from the spec alone, for `POST /task`: the field of the first input
    /// refused, and why.
    pub fn check_source(
        &self,
        source: &InputSource,
        field: &str,
    ) -> Result<(), (String, InputRefused)> {
        match source {
            InputSource::Local {
                base_dir, files, ..
            } => {
                if let Some(dir) = base_dir {
                    self.check_local(Path::new(dir))
                        .map_err(|e| (format!("{field}.baseDir"), e))?;
                }
                for (i, f) in files.iter().enumerate() {
                    self.check_local(Path::new(f))
                        .map_err(|e| (format!("{field}.files[{i}]"), e))?;
                }
                Ok(())
            }
            InputSource::Http { uris } => {
                for (i, u) in uris.iter().enumerate() {
                    self.check_uri(u)
                        .map_err(|e| (format!("{field}.uris[{i}]"), e))?;
                }
                Ok(())
            }
            InputSource::Combining(delegates) => {
                for (i, d) in delegates.iter().enumerate() {
                    self.check_source(d, &format!("{field}.delegates[{i}]"))?;
                }
                Ok(())
            }
            // An endpoint a user names is a URL the peon will call, as an http source's.
            InputSource::S3(s3) => match &s3.endpoint {
                Some(url) => self
                    .check_uri(url)
                    .map(|_| ())
                    .map_err(|e| (format!("{field}.endpointConfig.url"), e)),
                None => Ok(()),
            },
            InputSource::Inline { .. } | InputSource::Druid { .. } | InputSource::Stream => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_directories_are_refused_unless_allowed() {
        let p = InputPolicy::default();
        assert!(matches!(
            p.check_local(Path::new("/etc/shadow")),
            Err(InputRefused::LocalSystem { .. })
        ));
        assert!(
            p.check_local(Path::new("/data/../etc/passwd")).is_err(),
            "no escape by .."
        );
        assert!(p.check_local(Path::new("/data/wiki.json")).is_ok());
        let only = InputPolicy {
            local_allowed_dirs: vec!["/data/in".into()],
            ..InputPolicy::default()
        };
        assert!(only.check_local(Path::new("/data/in/a.json")).is_ok());
        assert!(only.check_local(Path::new("/data/in/../secret")).is_err());
        assert!(
            only.check_local(Path::new("/data/inbox/a.json")).is_err(),
            "whole components"
        );
        let etc = InputPolicy {
            local_allowed_dirs: vec!["/etc/drover-inputs".into()],
            ..InputPolicy::default()
        };
        assert!(etc
            .check_local(Path::new("/etc/drover-inputs/a.json"))
            .is_ok());
    }

    #[test]
    fn loopback_link_local_and_other_protocols_are_refused_by_default() {
        let p = InputPolicy::default();
        for bad in [
            "http://127.0.0.1:8091/druid/worker/v1/tasks",
            "http://[::1]/x",
            "http://169.254.169.254/latest/meta-data/",
            "http://0.0.0.0/x",
            "http://localhost:8091/status",
            "http://[::ffff:127.0.0.1]/x",
        ] {
            assert!(
                matches!(p.check_uri(bad), Err(InputRefused::Host { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            p.check_uri("file:///etc/passwd"),
            Err(InputRefused::Protocol { .. })
        ));
        assert!(p
            .check_uri("https://static.imply.io/data/wikipedia.json.gz")
            .is_ok());
        assert!(
            p.check_uri("http://10.1.2.3/data.json").is_ok(),
            "private networks are fine"
        );
        assert!(p
            .check_address("u", "example.com", "127.0.0.1".parse().unwrap())
            .is_err());
    }

    #[test]
    fn an_allow_list_replaces_the_defaults() {
        let p = InputPolicy {
            http_allowed_hosts: vec!["localhost".into(), "10.0.0.0/8".into()],
            ..InputPolicy::default()
        };
        assert!(p.check_uri("http://localhost:9000/a.json").is_ok());
        assert!(p
            .check_address("u", "localhost", "127.0.0.1".parse().unwrap())
            .is_ok());
        assert!(p
            .check_address("u", "files.internal", "10.9.8.7".parse().unwrap())
            .is_ok());
        assert!(p
            .check_address("u", "files.internal", "192.168.1.1".parse().unwrap())
            .is_err());
        assert!(p.check_uri("http://127.0.0.1/a.json").is_err());
        let names = InputPolicy {
            http_allowed_hosts: vec!["data.example.com".into()],
            ..InputPolicy::default()
        };
        assert!(names.check_uri("http://other.example.com/a").is_err());
        assert!(names.check_uri("http://DATA.example.com/a").is_ok());
    }
}
