//! The one list of channels. Adding a channel is one adapter crate plus one line here.

use std::sync::Arc;

use anyhow::Context;
use crossdock_channel::{Channel, ChannelFactory, ChannelSettings, SecretSource};

use crate::config::Settings;

/// Every channel adapter this hub can run.
pub fn factories() -> Vec<Box<dyn ChannelFactory>> {
    vec![
        Box::new(crossdock_adapter_own_app::Factory),
        Box::new(crossdock_adapter_uber_eats::Factory),
        Box::new(crossdock_adapter_pos::Factory),
        Box::new(crossdock_adapter_doordash::Factory),
        Box::new(crossdock_adapter_dianping::Factory),
        Box::new(crossdock_adapter_meituan::Factory),
        Box::new(crossdock_adapter_google::Factory),
        Box::new(crossdock_adapter_eleme::Factory),
        Box::new(crossdock_adapter_deliveroo::Factory),
        Box::new(crossdock_adapter_just_eat::Factory),
    ]
}

/// Builds every channel from its configuration section (an absent section means the
/// adapter's defaults).
pub fn build(
    settings: &Settings,
    secrets: &SecretSource,
    http: &reqwest::Client,
) -> anyhow::Result<Vec<Arc<dyn Channel>>> {
    let known: Vec<&'static str> = factories().iter().map(|f| f.id()).collect();
    if let Some(unknown) = settings
        .channels
        .keys()
        .find(|k| !known.contains(&k.as_str()))
    {
        anyhow::bail!(
            "configuration names channel `{unknown}`, but this hub has adapters for {known:?} only"
        );
    }
    factories()
        .iter()
        .map(|factory| build_one(factory.as_ref(), settings, secrets, http))
        .collect()
}

/// Builds one channel from its configuration section (absent: the adapter's defaults) and
/// the secrets, as `serve` does.
pub fn build_one(
    factory: &dyn ChannelFactory,
    settings: &Settings,
    secrets: &SecretSource,
    http: &reqwest::Client,
) -> anyhow::Result<Arc<dyn Channel>> {
    let channel_settings = ChannelSettings {
        channel: factory.id().to_owned(),
        options: settings
            .channels
            .get(factory.id())
            .cloned()
            .unwrap_or(serde_json::Value::Null),
        secrets: secrets.clone(),
        dev_secrets: factory.dev_secrets(),
        http: http.clone(),
    };
    factory
        .build(&channel_settings)
        .with_context(|| format!("building channel {}", factory.id()))
}
