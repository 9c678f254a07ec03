//! Settings: `config/crossdock.toml` (or `--config FILE`), then `CROSSDOCK_<SECTION>__<KEY>`
//! environment overrides. Secrets come only from the environment or a secrets file
//! outside the repository (see [`crossdock_channel::SecretSource`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use crossdock_broker::BrokerConfig;
use crossdock_channel::SecretSource;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::SecretString;
use serde::Deserialize;

/// The development admin token, used only in development mode when none is configured.
pub const DEV_ADMIN_TOKEN: &str = "dev-admin-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Development,
    Production,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub mode: Mode,
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub broker: BrokerConfig,
    #[serde(default)]
    pub relay: RelaySettings,
    #[serde(default)]
    pub router: RouterSettings,
    #[serde(default)]
    pub sync: SyncSettings,
    #[serde(default)]
    pub secrets: SecretsSettings,
    /// `[channels.<id>]`: each adapter's own options, parsed by the adapter.
    #[serde(default)]
    pub channels: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub bind: SocketAddr,
    pub public_url: String,
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
}

fn default_body_limit() -> usize {
    1024 * 1024
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
}

fn default_pool_size() -> usize {
    16
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelaySettings {
    pub batch: i64,
    pub poll_ms: u64,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch: 500,
            poll_ms: 200,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouterSettings {
    /// How often the registry's version is checked (profiles, zones, channel ids).
    pub refresh_ms: u64,
    /// How often stores' live state (pause, unavailable items, load) is read.
    pub live_refresh_ms: u64,
    /// How long a store has to accept an order before it goes to the next store (or HQ).
    pub store_accept_ms: u64,
    /// Time kept before a platform's acceptance deadline to tell it no: an order still not
    /// accepted then is rejected back to the platform.
    pub deadline_margin_ms: u64,
    /// How often overdue orders (store time out, platform deadline near) are looked for.
    pub sweep_ms: u64,
}

impl Default for RouterSettings {
    fn default() -> Self {
        Self {
            refresh_ms: 5000,
            live_refresh_ms: 250,
            store_accept_ms: 180_000,
            deadline_margin_ms: 30_000,
            sweep_ms: 1000,
        }
    }
}

impl RouterSettings {
    pub fn accept_timing(&self) -> crossdock_db::routing::AcceptTiming {
        let ms = |v: u64| chrono::Duration::milliseconds(i64::try_from(v).unwrap_or(i64::MAX));
        crossdock_db::routing::AcceptTiming {
            store_window: ms(self.store_accept_ms),
            margin: ms(self.deadline_margin_ms),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSettings {
    pub max_attempts: i32,
    pub first_backoff_ms: u64,
    pub max_backoff_ms: u64,
    pub concurrency: usize,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            first_backoff_ms: 500,
            max_backoff_ms: 120_000,
            concurrency: 16,
        }
    }
}

impl SyncSettings {
    pub fn policy(&self) -> crossdock_sync::RetryPolicy {
        crossdock_sync::RetryPolicy {
            max_attempts: self.max_attempts,
            first_backoff: Duration::from_millis(self.first_backoff_ms),
            max_backoff: Duration::from_millis(self.max_backoff_ms),
            ..crossdock_sync::RetryPolicy::default()
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsSettings {
    /// A TOML secrets file outside the repository.
    pub file: Option<PathBuf>,
}

/// Top-level keys of the settings, the only ones read from `CROSSDOCK_` variables.
const SECTIONS: [&str; 9] = [
    "mode", "http", "database", "broker", "relay", "router", "sync", "secrets", "channels",
];

/// The default configuration file, relative to the working directory.
pub const DEFAULT_CONFIG: &str = "config/crossdock.toml";

impl Settings {
    /// Reads the file (if it exists) and the environment overrides.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let path = path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
        let mut figment = Figment::new();
        if path.exists() {
            figment = figment.merge(Toml::file(&path));
        } else {
            anyhow::bail!(
                "configuration file {} not found (run from the repository root or pass --config)",
                path.display()
            );
        }
        // Only sections of the settings: other CROSSDOCK_ variables (secrets, the config
        // path, failpoints) are read elsewhere.
        figment = figment.merge(Env::prefixed("CROSSDOCK_").split("__").filter(|key| {
            // Filters see the key after `split`, before lower-casing: `DATABASE.URL`.
            let section = key
                .as_str()
                .split('.')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            SECTIONS.contains(&section.as_str())
        }));
        figment
            .extract()
            .with_context(|| format!("reading configuration {}", path.display()))
    }

    /// The secret sources: environment, secrets file, development defaults.
    pub fn secret_source(&self) -> anyhow::Result<SecretSource> {
        let file = match &self.secrets.file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading secrets file {}", path.display()))?;
                Figment::from(Toml::string(&text))
                    .extract::<BTreeMap<String, BTreeMap<String, String>>>()
                    .with_context(|| format!("parsing secrets file {}", path.display()))?
            }
            None => BTreeMap::new(),
        };
        Ok(SecretSource::new(file, self.mode == Mode::Development))
    }

    /// The admin token (`CROSSDOCK_SECRET_HUB_ADMIN_TOKEN` or `[hub] admin_token`).
    pub fn admin_token(&self, secrets: &SecretSource) -> anyhow::Result<SecretString> {
        Ok(secrets.get("hub", "admin_token", Some(DEV_ADMIN_TOKEN))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure signature
    fn environment_overrides_reach_their_section_and_other_variables_are_left_alone() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "crossdock.toml",
                r#"
                mode = "production"
                [http]
                bind = "127.0.0.1:8080"
                public_url = "http://127.0.0.1:8080"
                [database]
                url = "postgres://file/db"
                [broker]
                prefix = "crossdock"
                "#,
            )?;
            jail.set_env("CROSSDOCK_DATABASE__URL", "postgres://env/db");
            jail.set_env("CROSSDOCK_BROKER__STORE_SHARDS", "4");
            jail.set_env("CROSSDOCK_FAILPOINT", "relay_before_publish");
            jail.set_env("CROSSDOCK_SECRET_UBER_EATS_CLIENT_SECRET", "s3cret");
            let settings =
                Settings::load(Some(Path::new("crossdock.toml"))).map_err(|e| format!("{e:#}"))?;
            assert_eq!(settings.database.url, "postgres://env/db");
            assert_eq!(settings.broker.store_shards, 4);
            assert_eq!(settings.broker.prefix, "crossdock");
            assert_eq!(settings.mode, Mode::Production);
            Ok(())
        });
    }
}
