//! Commands for ops engineers looking at one channel: `crossdock normalize` (what a raw
//! platform request becomes) and `crossdock store-credential` (the key a store's own system
//! signs its requests with). Both build the channels from the same configuration file,
//! environment and secrets as `serve`, so they work against production settings.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use crossdock_channel::normalize::{self, parse_headers, refusal};
use crossdock_channel::{Channel, CodeClaim, HeaderMap, Method, Outcome};
use serde_json::json;

use crate::Settings;
use crate::channels;

/// `crossdock normalize`.
#[derive(Debug, clap::Args)]
pub struct NormalizeArgs {
    /// The channel id (`uber_eats`, `meituan`…).
    #[arg(long)]
    pub channel: String,
    /// The request's headers, one `Name: value` per line.
    #[arg(long)]
    pub headers: Option<PathBuf>,
    /// The request's body, byte for byte.
    #[arg(long)]
    pub body: Option<PathBuf>,
    /// The URL the request was sent to, query included (default: the hub's public URL +
    /// `/webhooks/{channel}`). Meituan signs it.
    #[arg(long)]
    pub url: Option<String>,
    /// The request's HTTP method.
    #[arg(long, default_value = "POST")]
    pub method: Method,
    /// What a notify-then-fetch platform's API answered for the order, or a code
    /// platform's answer to a redemption.
    #[arg(long)]
    pub fetched: Option<PathBuf>,
    /// For code channels: the store's claim (JSON: channel_store_ref, code, count,
    /// request_id) instead of a request.
    #[arg(long, conflicts_with_all = ["headers", "body"])]
    pub claim: Option<PathBuf>,
    /// When the request was received (RFC 3339; default now), for replay windows and
    /// token expiry.
    #[arg(long)]
    pub received_at: Option<DateTime<Utc>>,
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Builds the one channel asked for (so a command about one channel needs only that
/// channel's secrets).
fn channel(settings: &Settings, id: &str) -> anyhow::Result<Arc<dyn Channel>> {
    let factories = channels::factories();
    let factory = factories.iter().find(|f| f.id() == id).with_context(|| {
        let known: Vec<&str> = factories.iter().map(|f| f.id()).collect();
        format!("no channel `{id}`; this hub has {known:?}")
    })?;
    let secrets = settings.secret_source()?;
    channels::build_one(
        factory.as_ref(),
        settings,
        &secrets,
        &reqwest::Client::new(),
    )
}

/// What `crossdock normalize` prints, and whether the request passed.
#[derive(Debug, Clone)]
pub struct Normalized {
    /// The request verified and parsed (exit status 0).
    pub ok: bool,
    /// The document, or the refusal with the answer the platform would get.
    pub text: String,
}

/// Normalizes the request the arguments name (errors: files or configuration, not the
/// request's own faults, which are a `Normalized` with `ok: false`).
pub fn normalize(settings: &Settings, args: &NormalizeArgs) -> anyhow::Result<Normalized> {
    let channel = channel(settings, &args.channel)?;
    let fetched = args.fetched.as_ref().map(read).transpose()?;
    let (result, request) = if let Some(claim) = &args.claim {
        let claim: CodeClaim = serde_json::from_slice(&read(claim)?)
            .with_context(|| format!("{} is not a code claim", claim.display()))?;
        let Some(answer) = &fetched else {
            bail!("--claim needs --fetched: the platform's answer to the redemption");
        };
        (
            normalize::normalize_claim(channel.as_ref(), &claim, answer),
            None,
        )
    } else {
        let Some(body) = &args.body else {
            bail!("give --body (and --headers), or --claim for a code channel");
        };
        let headers = match &args.headers {
            Some(path) => {
                let text = String::from_utf8(read(path)?)
                    .with_context(|| format!("{} is not UTF-8", path.display()))?;
                parse_headers(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            }
            None => HeaderMap::new(),
        };
        let url = args.url.clone().unwrap_or_else(|| {
            format!(
                "{}/webhooks/{}",
                settings.http.public_url.trim_end_matches('/'),
                args.channel
            )
        });
        let request = normalize::request(
            args.method.clone(),
            &url,
            headers,
            Bytes::from(read(body)?),
            args.received_at.unwrap_or_else(Utc::now),
        );
        (
            normalize::normalize(channel.as_ref(), &request, fetched.as_deref()),
            Some(request),
        )
    };
    let (ok, text) = match result {
        Ok(document) => (true, document.to_pretty()),
        Err(error) => {
            let mut document = refusal(&error);
            if let Some(request) = &request {
                let reply = channel.reply(request, Outcome::Refused(&error));
                document["reply"] = json!({
                    "status": reply.status.as_u16(),
                    "body": String::from_utf8_lossy(&reply.body),
                });
            }
            let text = serde_json::to_string_pretty(&document).unwrap_or_default();
            (false, text)
        }
    };
    Ok(Normalized { ok, text })
}

/// The credential a store's own system (a POS) signs this channel's requests with.
pub fn store_credential(
    settings: &Settings,
    channel_id: &str,
    store: &str,
) -> anyhow::Result<String> {
    channel(settings, channel_id)?
        .store_credential(store)
        .with_context(|| {
            format!(
                "channel `{channel_id}` takes no requests from stores; it has no store credentials"
            )
        })
}
