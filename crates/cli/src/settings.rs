//! Where the overlord is and who we are: flags win over `DROVER_*` variables, which win over the
//! config file (`--config`, `$DROVER_CONFIG`, or `~/.config/drover/cli.toml` when it exists).

use std::path::PathBuf;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// The overlord's base URL (any overlord: requests to a follower are redirected).
    pub url: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// PEM file of the CA that signed the servers' certificates (TLS).
    pub ca_file: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            url: "http://localhost:8090".into(),
            user: None,
            password: None,
            ca_file: None,
        }
    }
}

/// What the command line said; `None` leaves the setting to the environment or the file.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

pub fn load(config: Option<PathBuf>, flags: Overrides) -> anyhow::Result<Settings> {
    let file = config
        .or_else(|| std::env::var_os("DROVER_CONFIG").map(PathBuf::from))
        .or_else(|| {
            let home = std::env::var_os("HOME")?;
            let default = PathBuf::from(home).join(".config/drover/cli.toml");
            default.exists().then_some(default)
        });
    let mut figment = Figment::from(Serialized::defaults(Settings::default()));
    if let Some(file) = &file {
        if !file.exists() {
            anyhow::bail!("config file {} does not exist", file.display());
        }
        figment = figment.merge(Toml::file(file));
    }
    let settings: Settings = figment
        .merge(Env::prefixed("DROVER_").only(&["url", "user", "password", "ca_file"]))
        .merge(Serialized::defaults(flags))
        .extract()
        .map_err(|e| anyhow::anyhow!("bad setting: {e}"))?;
    url::Url::parse(&settings.url)
        .map_err(|e| anyhow::anyhow!("url {:?} is not a URL: {e}", settings.url))?;
    Ok(settings)
}
