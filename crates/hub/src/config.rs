//! Settings: `config/crossdock.toml` (or `--config FILE`), then `CROSSDOCK_<SECTION>__<KEY>`
//! environment overrides. Secrets come only from the environment or a secrets file
//! outside the repository (see [`crossdock_channel::SecretSource`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
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
    /// The largest request body taken. A webhook over it answers 413 and leaves a
    /// quarantine record (its first [`crate::http::QUARANTINED_HEAD_BYTES`] bytes).
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// Ingest requests (webhooks, code redemptions) one source may make per second,
    /// sustained, per channel (may be fractional: 0.5 is one every two seconds).
    #[serde(
        default = "default_ingest_per_second",
        deserialize_with = "positive_rate"
    )]
    pub ingest_per_second: f64,
    /// How many ingest requests one source may make at once, above the sustained rate.
    #[serde(default = "default_ingest_burst")]
    pub ingest_burst: NonZeroU32,
    /// Peers (reverse proxies, load balancers) whose `X-Forwarded-For` is believed: the
    /// source of a request they pass on is the rightmost address in that header that is
    /// not itself one of them. Any other peer is the source itself.
    #[serde(default)]
    pub trusted_proxies: Vec<IpAddr>,
}

fn default_body_limit() -> usize {
    1024 * 1024
}

fn default_ingest_per_second() -> f64 {
    1000.0
}

fn default_ingest_burst() -> NonZeroU32 {
    NonZeroU32::new(2000).unwrap_or(NonZeroU32::MIN)
}

/// A rate: a finite number above zero.
fn positive_rate<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let rate = f64::deserialize(deserializer)?;
    if rate.is_finite() && rate > 0.0 {
        Ok(rate)
    } else {
        Err(serde::de::Error::custom(format!(
            "a rate per second must be a number above 0, not {rate}"
        )))
    }
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
    /// The most rows one relay round claims.
    pub batch: i64,
    /// How often the relay looks for rows no one else publishes.
    pub poll_ms: u64,
    /// How old a row its committer publishes itself must be before the relay takes it
    /// (the committer died, lost the broker, or does not know whether it was published).
    pub grace_ms: u64,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch: 500,
            poll_ms: 200,
            grace_ms: 5_000,
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
    /// Orders synced at once, new statuses and due retries together, at most a quarter of
    /// them (at least two) for one channel; each run holds one database connection while
    /// it pushes, from a pool of this many of the sync stage's own (beside
    /// `database.pool_size`).
    pub concurrency: usize,
    /// `[sync.push_rates.<channel>]`: the status pushes a channel may make per second
    /// (`per_second`, and `burst` at once, `per_second` if absent) where the chain's
    /// agreement with the platform differs from the limit its adapter publishes.
    pub push_rates: BTreeMap<String, PushRate>,
}

/// A channel's limit on status pushes, from the configuration.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushRate {
    pub per_second: NonZeroU32,
    pub burst: Option<NonZeroU32>,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            first_backoff_ms: 500,
            max_backoff_ms: 120_000,
            concurrency: 16,
            push_rates: BTreeMap::new(),
        }
    }
}

impl SyncSettings {
    /// The configured push rates, by channel.
    pub fn push_rates(&self) -> std::collections::HashMap<String, crossdock_channel::RateLimit> {
        self.push_rates
            .iter()
            .map(|(channel, rate)| {
                let limit = crossdock_channel::RateLimit {
                    per_second: rate.per_second.get(),
                    burst: rate.burst.unwrap_or(rate.per_second).get(),
                };
                (channel.clone(), limit)
            })
            .collect()
    }

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

    /// A production configuration with only what has no default.
    const MINIMAL: &str = r#"
        mode = "production"
        [http]
        bind = "127.0.0.1:8080"
        public_url = "http://127.0.0.1:8080"
        [database]
        url = "postgres://file/db"
        [broker]
        prefix = "crossdock"
    "#;

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure signature
    fn environment_overrides_reach_their_section_and_other_variables_are_left_alone() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("crossdock.toml", MINIMAL)?;
            jail.set_env("CROSSDOCK_DATABASE__URL", "postgres://env/db");
            jail.set_env("CROSSDOCK_BROKER__STORE_SHARDS", "4");
            jail.set_env("CROSSDOCK_FAILPOINT", "before_publish");
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

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure signature
    fn the_ingest_limit_has_defaults_takes_proxies_from_the_environment_and_refuses_zero() {
        figment::Jail::expect_with(|jail| {
            let file = |extra: &str| {
                format!(
                    "mode = \"production\"\n[http]\nbind = \"127.0.0.1:8080\"\npublic_url = \"http://127.0.0.1:8080\"\n{extra}\n[database]\nurl = \"postgres://file/db\"\n[broker]\nprefix = \"crossdock\"\n"
                )
            };
            jail.create_file("crossdock.toml", &file(""))?;
            let settings =
                Settings::load(Some(Path::new("crossdock.toml"))).map_err(|e| format!("{e:#}"))?;
            assert_eq!(settings.http.ingest_per_second, 1000.0);
            assert_eq!(settings.http.ingest_burst.get(), 2000);
            assert!(settings.http.trusted_proxies.is_empty());

            jail.set_env("CROSSDOCK_HTTP__TRUSTED_PROXIES", r#"["10.0.0.1", "::1"]"#);
            jail.create_file(
                "crossdock.toml",
                &file("ingest_per_second = 0.5\ningest_burst = 4"),
            )?;
            let settings =
                Settings::load(Some(Path::new("crossdock.toml"))).map_err(|e| format!("{e:#}"))?;
            assert_eq!(settings.http.ingest_per_second, 0.5);
            assert_eq!(settings.http.ingest_burst.get(), 4);
            assert_eq!(
                settings.http.trusted_proxies,
                [
                    IpAddr::from([10, 0, 0, 1]),
                    "::1".parse::<IpAddr>().map_err(|e| e.to_string())?
                ]
            );

            for bad in [
                "ingest_per_second = 0",
                "ingest_per_second = -1",
                "ingest_burst = 0",
            ] {
                jail.create_file("crossdock.toml", &file(bad))?;
                let refused = Settings::load(Some(Path::new("crossdock.toml")));
                assert!(refused.is_err(), "{bad} is refused");
            }
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail closure signature
    fn push_rates_come_from_the_file_or_the_environment_and_burst_defaults_to_the_rate() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "crossdock.toml",
                &format!("{MINIMAL}\n[sync.push_rates.doordash]\nper_second = 50\nburst = 80\n"),
            )?;
            jail.set_env("CROSSDOCK_SYNC__PUSH_RATES__MEITUAN__PER_SECOND", "300");
            let settings =
                Settings::load(Some(Path::new("crossdock.toml"))).map_err(|e| format!("{e:#}"))?;
            let rates = settings.sync.push_rates();
            let rate = |channel: &str| rates.get(channel).map(|r| (r.per_second, r.burst));
            assert_eq!(rate("doordash"), Some((50, 80)));
            assert_eq!(rate("meituan"), Some((300, 300)));
            assert_eq!(rate("uber_eats"), None, "the adapter's own limit");

            jail.set_env("CROSSDOCK_SYNC__PUSH_RATES__MEITUAN__PER_SECOND", "0");
            let refused = Settings::load(Some(Path::new("crossdock.toml")));
            assert!(refused.is_err(), "a rate of zero is refused");
            Ok(())
        });
    }
}
