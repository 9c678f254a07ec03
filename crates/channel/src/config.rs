//! What an adapter gets to build itself: its options table and its secrets.
//!
//! Options come from the hub's configuration file (`[channels.<id>]`) with environment
//! overrides. Secrets never live in the repository: they come from the environment
//! (`CROSSDOCK_SECRET_<CHANNEL>_<NAME>`, upper-case), from a secrets file outside the
//! repository, or — in development mode only — from the simulator's published values.

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::SecretString;
use serde::de::DeserializeOwned;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("channel `{channel}`: bad options: {message}")]
    Options { channel: String, message: String },
    #[error(
        "channel `{channel}`: secret `{name}` is not set; set {env} or add it to the secrets file"
    )]
    MissingSecret {
        channel: String,
        name: String,
        env: String,
    },
    #[error("channel `{channel}`: {message}")]
    Invalid { channel: String, message: String },
}

impl ConfigError {
    /// An option of `channel` that cannot work; `message` says which and why.
    pub fn invalid(channel: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            channel: channel.to_owned(),
            message: message.into(),
        }
    }
}

/// Checks that option `name` of `channel` is an http(s) URL, and returns it parsed.
pub fn http_url(channel: &str, name: &str, value: &str) -> Result<reqwest::Url, ConfigError> {
    let url = reqwest::Url::parse(value).map_err(|e| {
        ConfigError::invalid(channel, format!("`{name}` = `{value}` is not a URL: {e}"))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::invalid(
            channel,
            format!("`{name}` = `{value}` must be http(s)"),
        ));
    }
    Ok(url)
}

/// Where secrets come from, in order: environment, secrets file, development defaults.
#[derive(Debug, Clone, Default)]
pub struct SecretSource {
    /// `channel -> name -> value`, read from the secrets file.
    file: Arc<BTreeMap<String, BTreeMap<String, String>>>,
    development: bool,
}

impl SecretSource {
    pub fn new(file: BTreeMap<String, BTreeMap<String, String>>, development: bool) -> Self {
        Self {
            file: Arc::new(file),
            development,
        }
    }

    pub fn env_name(channel: &str, name: &str) -> String {
        format!("CROSSDOCK_SECRET_{}_{}", channel, name).to_ascii_uppercase()
    }

    /// Resolves a secret, falling back to `dev_default` only in development mode.
    ///
    /// An empty value counts as missing, wherever it comes from (environment, secrets file
    /// or development default): the next source is tried, and with none left the secret is
    /// [`ConfigError::MissingSecret`]. Adapters therefore never see an empty secret from here.
    pub fn get(
        &self,
        channel: &str,
        name: &str,
        dev_default: Option<&str>,
    ) -> Result<SecretString, ConfigError> {
        let env = Self::env_name(channel, name);
        let from_env = std::env::var(&env).ok();
        let from_file = self.file.get(channel).and_then(|c| c.get(name)).cloned();
        let from_dev = dev_default.filter(|_| self.development).map(str::to_owned);
        [from_env, from_file, from_dev]
            .into_iter()
            .flatten()
            .find(|value| !value.is_empty())
            .map(SecretString::from)
            .ok_or_else(|| ConfigError::MissingSecret {
                channel: channel.to_owned(),
                name: name.to_owned(),
                env,
            })
    }
}

/// Everything a [`crate::ChannelFactory`] needs to build its channel.
#[derive(Debug, Clone)]
pub struct ChannelSettings {
    pub channel: String,
    /// The `[channels.<id>]` table of the configuration.
    pub options: serde_json::Value,
    pub secrets: SecretSource,
    /// Development defaults of this channel's secrets (its simulator's credentials).
    pub dev_secrets: &'static [(&'static str, &'static str)],
    /// A shared HTTP client (connection pool); adapters set per-request timeouts.
    pub http: reqwest::Client,
}

impl ChannelSettings {
    /// Parses the options table into the adapter's typed config (which should use
    /// `#[serde(deny_unknown_fields)]`).
    pub fn options<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let value = if self.options.is_null() {
            serde_json::Value::Object(Default::default())
        } else {
            self.options.clone()
        };
        serde_json::from_value(value).map_err(|e| ConfigError::Options {
            channel: self.channel.clone(),
            message: e.to_string(),
        })
    }

    pub fn secret(&self, name: &str) -> Result<SecretString, ConfigError> {
        let dev_default = self
            .dev_secrets
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v);
        self.secrets.get(&self.channel, name, dev_default)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn development_defaults_apply_only_in_development() {
        let dev = SecretSource::new(BTreeMap::new(), true);
        let prod = SecretSource::new(BTreeMap::new(), false);
        let got = dev
            .get("test_chan_a", "key", Some("dev-value"))
            .expect("dev default");
        assert_eq!(got.expose_secret(), "dev-value");
        let err = prod
            .get("test_chan_a", "key", Some("dev-value"))
            .expect_err("no default");
        assert_eq!(
            err.to_string(),
            "channel `test_chan_a`: secret `key` is not set; set CROSSDOCK_SECRET_TEST_CHAN_A_KEY or add it to the secrets file"
        );
    }

    #[test]
    fn the_secrets_file_beats_development_defaults() {
        let mut file = BTreeMap::new();
        file.insert(
            "test_chan_b".to_owned(),
            BTreeMap::from([("key".to_owned(), "from-file".to_owned())]),
        );
        let source = SecretSource::new(file, true);
        let got = source.get("test_chan_b", "key", Some("dev")).expect("file");
        assert_eq!(got.expose_secret(), "from-file");
    }

    #[test]
    fn an_empty_value_counts_as_missing_wherever_it_comes_from() {
        let mut file = BTreeMap::new();
        file.insert(
            "test_chan_c".to_owned(),
            BTreeMap::from([("key".to_owned(), String::new())]),
        );
        // An empty file value is missing in production…
        let prod = SecretSource::new(file.clone(), false);
        let err = prod
            .get("test_chan_c", "key", Some("dev-value"))
            .expect_err("empty file value");
        assert_eq!(
            err,
            ConfigError::MissingSecret {
                channel: "test_chan_c".to_owned(),
                name: "key".to_owned(),
                env: "CROSSDOCK_SECRET_TEST_CHAN_C_KEY".to_owned(),
            }
        );
        // …and gives way to the development default in development.
        let dev = SecretSource::new(file, true);
        let got = dev
            .get("test_chan_c", "key", Some("dev-value"))
            .expect("dev default");
        assert_eq!(got.expose_secret(), "dev-value");
        // An empty development default is missing too.
        assert!(matches!(
            dev.get("test_chan_c", "key", Some("")),
            Err(ConfigError::MissingSecret { .. })
        ));
    }
}
