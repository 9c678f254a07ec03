//! Channel `dianping`: Dianping 大众点评 group-buy voucher verification (团购验券), and its
//! simulator.
//!
//! # How a voucher becomes an order
//!
//! The customer bought and paid a group-buy voucher (团购券) on Dianping and shows its code
//! at the counter. Dianping never calls the hub: the store checks and redeems the code
//! **through the hub** (`POST /api/v1/codes/check`, `POST /api/v1/codes/redeem`), and the
//! hub calls this adapter:
//!
//! 1. [`check_code`](Channel::check_code) calls `/router/tuangou/receipt/prepare` with the
//!    typed code and the store's `open_shop_uuid`, and answers the cashier's preview: deal
//!    title, price, market price, uses available, the masked mobile, expiry, and whether
//!    the deal is eaten in or taken away. Nothing is redeemed.
//! 2. [`redeem_code`](Channel::redeem_code) calls `/router/tuangou/receipt/consume` with
//!    `requestid` = the claim's `request_id` (Dianping's idempotency key: a retried claim
//!    gets the same answer and uses nothing twice), `receipt_code`, `count`,
//!    `open_shop_uuid` = the claim's `channel_store_ref`, and the configured
//!    `app_shop_account` / `app_shop_accountname` (who redeemed, for Dianping's records).
//!    [`parse_redeemed`](Channel::parse_redeemed) turns the answer into an order of that
//!    store (rules in `convert::redeemed`):
//!    - one line per redeemed deal, named by the deal's title, quantity = how many vouchers
//!      of it were redeemed, channel item id = `deal_id` (PLU from the `deal_plu` option);
//!    - money in yuan decimals, read from the JSON text exactly (never through `f64`) into
//!      fen: a deal whose `deal_marketprice` is above its `deal_price` is a line at the
//!      market price with a merchant-funded discount (`团购价`) down to what was paid;
//!    - total = what the customer paid for those vouchers, `total_is_derived` (Dianping
//!      sends no total); payment prepaid on the platform; no tax, fees or tip;
//!    - dine-in, or pickup when the deal's title says take-away (外带, 外卖, 自提, 打包, …);
//!    - `external_order_id` = `{order_id}-{code}`: one Dianping order can hold several
//!      vouchers redeemed on different visits, a code is redeemed once, so this names one
//!      redemption; `display_code` = the code; dedupe key `receipt:{code}`, so redeeming
//!      the same code twice never makes two orders;
//!    - customer `大众点评顾客` with the mobile as Dianping masked it.
//!
//!    A refused code is an error the store sees: unknown code, already used, not valid at
//!    this shop, expired → permanent, with a message a cashier can act on; rate limits and
//!    Dianping's 5xx → retryable (see `convert::refusal`).
//! 3. [`push`](Channel::push): Dianping has no order statuses. A **reject or cancel** of a
//!    redeemed order undoes the redemption (`/router/tuangou/receipt/reverseconsume` with
//!    `app_deal_id` = the deal id and `receipt_code`, once per redeemed voucher; a voucher
//!    already reversed counts as done, so a repeat is safe); every other action is
//!    [`PushOutcome::NotApplicable`].
//! 4. [`verify`](Channel::verify) / [`parse`](Channel::parse) refuse everything: this channel
//!    has no webhook.
//!
//! # Calls and signature
//!
//! Every call is `POST {base_url}/router/…`, form-encoded (UTF-8), with the common
//! parameters `app_key`, `session`, `timestamp` (`yyyy-MM-dd HH:mm:ss`, Beijing time),
//! `format=json`, `v=1`, `sign_method=MD5` and `sign` = lower-case hex
//! MD5(`app_secret` + the sorted non-empty parameters as `name` + `value` + `app_secret`),
//! as the official Java demo's `SignUtil.signTopRequest` computes it (see [`sign`]).
//!
//! # Documentation followed
//!
//! - CHANNELS.md §6.2 (and §8, §10);
//! - Dianping open platform API pages, as linked from the public client libraries:
//!   prepare <http://open.dianping.com/document/v2?docId=6000176&rootDocId=5000>,
//!   consume <http://open.dianping.com/document/v2?docId=6000177&rootDocId=5000>,
//!   getconsumed <http://open.dianping.com/document/v2?docId=6000178&rootDocId=5000>,
//!   reverseconsume <http://open.dianping.com/document/v2?docId=6000180&rootDocId=5000>,
//!   scanprepare <http://open.dianping.com/document/v2?docId=6000181&rootDocId=5000>,
//!   authorization scopes <http://open.dianping.com/document/v2?docId=6000263&rootDocId=1000>;
//! - the official demo (`com.dianping.dzopen`: `TuangouAPI`, `SignUtil` and its test
//!   vector) and public client libraries in Go, Python, PHP, Node and Java for the exact
//!   parameter and field names (`requestid`, `receipt_code`, `count`, `open_shop_uuid`,
//!   `app_shop_account`, `app_shop_accountname`, `app_deal_id`; `deal_id`,
//!   `dealgroup_id`, `deal_title`, `deal_price`, `deal_marketprice`, `mobile`,
//!   `receiptEndDate`, `order_id`, `payment_detail`), and sample answers (`prepare`'s
//!   `data` is an object with `count`; `consume`'s and `reverseconsume`'s `data` are
//!   arrays, one entry per voucher).
//!
//! # Assumptions
//!
//! - **Session.** The `session` comes from the secrets (`CROSSDOCK_SECRET_DIANPING_SESSION`).
//!   Dianping issues it from `/router/oauth/token` only for an `auth_code` that a person
//!   obtains by authorizing the app in the merchant's backend (`grant_type=
//!   authorization_code`), and renews it with `grant_type=refresh_token`; the hub cannot do
//!   the first step by itself, so operations obtain and renew it and put it in the secrets.
//!   An expired session shows as a permanent error telling HQ to renew it.
//! - **Result codes.** Only `code: 200` = success is confirmed publicly. The others are
//!   assumed: 400 bad parameter, 401 bad signature or app key, 403 bad or expired session
//!   (or a shop the session does not cover), 429 rate limited, 5xx Dianping unavailable,
//!   1001 unknown code, 1002 already used, 1003 not valid at this shop, 1004 expired or
//!   refunded, 1005 fewer uses left than `count`, 1006 nothing to reverse, 1007 too late
//!   to reverse (`convert::codes`). Unknown codes are permanent refusals with Dianping's
//!   `msg`. The simulator answers with these codes.
//! - **Signature casing.** We send lower-case hex (the dzopen demo's `byte2hex`); the
//!   Taobao-style original is upper-case; the simulator accepts both. Bytes are UTF-8.
//! - **Money.** `deal_price` / `deal_marketprice` are yuan; one voucher's price each. The
//!   currency is `CNY` (option `currency`).
//! - **Set menus.** A deal's dishes are not sent as structured data (only the title, e.g.
//!   `双人套餐：玛格丽特披萨+凯撒沙拉+可乐2杯`): a set menu is one line named by the
//!   title; the kitchen reads the dishes from it. The deal id maps to a PLU only where HQ
//!   configured one (`deal_plu`).
//! - **Fulfilment.** Decided from the deal title (take-away words → pickup; otherwise
//!   dine-in), as the answer has no such field.
//! - **Time.** The consume answer carries no time: the order is `placed_at` the moment
//!   the store presented the code (`CodeClaim::claimed_at`).
//! - **Reversal.** `reverseconsume` has no reason field; the reason stays in the hub's
//!   history. Dianping allows a reversal only for a while after the redemption (the
//!   simulator: 60 minutes); after that the push fails permanently and is parked for HQ.
//!   `Fail` is not reversed automatically (HQ decides).
//! - **Rate limit.** Not published; assumed 20 calls per second per app. Pushes take half.
//! - **No platform-side cancellation.** A redeemed voucher cannot be refunded by the
//!   customer on Dianping, so the platform never cancels an order of this channel.
//!
//! # Configuration (`[channels.dianping]`)
//!
//! | option | default |
//! |---|---|
//! | `base_url` | `https://openapi.dianping.com` |
//! | `app_key` | [`DEV_APP_KEY`] |
//! | `app_shop_account` | `crossdock-hub` (recorded by Dianping as who redeemed) |
//! | `app_shop_accountname` | `Crossdock Hub` |
//! | `currency` | `CNY` |
//! | `deal_plu` | `{}`: Dianping deal id → PLU |
//! | `timeout_secs` | 10 |
//!
//! Secrets: `app_secret` and `session` (`CROSSDOCK_SECRET_DIANPING_APP_SECRET`,
//! `CROSSDOCK_SECRET_DIANPING_SESSION`); in development mode they default to
//! [`DEV_APP_SECRET`] and [`DEV_SESSION`], which the simulator accepts.
//!
//! # Layout
//!
//! - this file: [`Dianping`] (the [`Channel`]), [`DianpingConfig`], [`Factory`];
//! - [`sign`]: the signature and timestamps;
//! - `wire`: serde types of Dianping's answers, read with numbers as text;
//! - `convert`: answers → order, preview, errors; the only place money is converted;
//! - [`simulator`]: [`simulator::DianpingSim`], an HTTP server behaving like Dianping.

pub mod sign;
pub mod simulator;

mod convert;
mod wire;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use crossdock_channel::{
    Channel, ChannelError, ChannelFactory, ChannelSettings, CodeClaim, ConfigError, Delivery,
    InboundRequest, PushOutcome, RateLimit, clip, http,
};
use crossdock_model::{ChannelId, Currency, Order, StatusAction, StatusChange};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

pub use convert::{Call, codes, refusal};

use crate::wire::Receipt;

/// The channel id, as in `[channels.dianping]`.
pub const CHANNEL_ID: &str = "dianping";
/// The development app key; the simulator knows it.
pub const DEV_APP_KEY: &str = "crossdock-dev-dianping";
/// The development app secret; the simulator checks signatures with it. Used by the hub
/// only in development mode.
pub const DEV_APP_SECRET: &str = "dev-dianping-app-secret-not-for-production";
/// The development merchant session; the simulator accepts it for every shop.
pub const DEV_SESSION: &str = "dev-dianping-session-not-for-production";
pub const DEFAULT_BASE_URL: &str = "https://openapi.dianping.com";
/// Check a typed code.
pub const PREPARE_PATH: &str = "/router/tuangou/receipt/prepare";
/// Redeem a code.
pub const CONSUME_PATH: &str = "/router/tuangou/receipt/consume";
/// Undo a redemption.
pub const REVERSE_PATH: &str = "/router/tuangou/receipt/reverseconsume";
/// Look up a redeemed code.
pub const GETCONSUMED_PATH: &str = "/router/tuangou/receipt/getconsumed";
/// At most this many vouchers per `consume` (the platform's documented limit).
pub const MAX_COUNT: u32 = 100;
/// The name of the app secret (`CROSSDOCK_SECRET_DIANPING_APP_SECRET`).
const APP_SECRET: &str = "app_secret";
/// The name of the merchant session (`CROSSDOCK_SECRET_DIANPING_SESSION`).
const SESSION: &str = "session";

/// The `[channels.dianping]` options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DianpingConfig {
    /// The API host, e.g. `https://openapi.dianping.com` or the simulator's URL.
    pub base_url: String,
    pub app_key: String,
    /// Recorded by Dianping as the account that redeemed (`app_shop_account`).
    pub app_shop_account: String,
    /// Recorded by Dianping as the name of who redeemed (`app_shop_accountname`).
    pub app_shop_accountname: String,
    /// ISO-4217 currency of `deal_price`.
    pub currency: String,
    /// Dianping deal id → the chain's PLU.
    pub deal_plu: BTreeMap<String, String>,
    /// Timeout of one request to Dianping, in seconds.
    pub timeout_secs: u64,
}

impl Default for DianpingConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            app_key: DEV_APP_KEY.to_owned(),
            app_shop_account: "crossdock-hub".to_owned(),
            app_shop_accountname: "Crossdock Hub".to_owned(),
            currency: "CNY".to_owned(),
            deal_plu: BTreeMap::new(),
            timeout_secs: http::DEFAULT_TIMEOUT.as_secs(),
        }
    }
}

/// The Dianping channel adapter. One instance serves every store, concurrently.
#[derive(Debug)]
pub struct Dianping {
    settings: convert::Settings,
    base_url: String,
    app_key: String,
    app_shop_account: String,
    app_shop_accountname: String,
    app_secret: SecretString,
    session: SecretString,
    timeout: Duration,
    http: reqwest::Client,
}

/// A shop id fit to send: Dianping's `open_shop_uuid` is ASCII letters and digits.
fn shop_ref(claim_ref: &str) -> Result<&str, ChannelError> {
    let shop = claim_ref.trim();
    if shop.is_empty()
        || shop.len() > 64
        || !shop
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ChannelError::Malformed(format!(
            "channel_store_ref `{}` is not a Dianping open_shop_uuid",
            clip(claim_ref)
        )));
    }
    Ok(shop)
}

impl Dianping {
    /// Builds the adapter; refuses an unusable URL, currency or timeout.
    pub fn new(
        config: DianpingConfig,
        app_secret: SecretString,
        session: SecretString,
        http: reqwest::Client,
    ) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            channel: CHANNEL_ID.to_owned(),
            message,
        };
        let channel = ChannelId::parse(CHANNEL_ID).map_err(|e| invalid(e.to_string()))?;
        crossdock_channel::config::http_url(CHANNEL_ID, "base_url", &config.base_url)?;
        let currency =
            Currency::parse(&config.currency).map_err(|e| invalid(format!("`currency`: {e}")))?;
        if config.timeout_secs == 0 {
            return Err(invalid("`timeout_secs` must be at least 1".to_owned()));
        }
        for (name, value) in [
            ("app_key", &config.app_key),
            ("app_shop_account", &config.app_shop_account),
            ("app_shop_accountname", &config.app_shop_accountname),
        ] {
            if value.trim().is_empty() {
                return Err(invalid(format!("`{name}` must not be empty")));
            }
        }
        Ok(Self {
            settings: convert::Settings {
                channel,
                currency,
                deal_plu: config.deal_plu,
            },
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            app_key: config.app_key,
            app_shop_account: config.app_shop_account,
            app_shop_accountname: config.app_shop_accountname,
            app_secret,
            session,
            timeout: Duration::from_secs(config.timeout_secs),
            http,
        })
    }

    /// The signed form of a call: the common parameters, `business`, and `sign`.
    pub fn signed_form(
        &self,
        business: &[(&str, String)],
        at: DateTime<Utc>,
    ) -> Vec<(String, String)> {
        signed_form(
            &self.app_key,
            self.app_secret.expose_secret(),
            self.session.expose_secret(),
            business,
            at,
        )
    }

    /// `POST {base_url}{path}` with the signed form; the answer's bytes (HTTP errors mapped).
    async fn call(&self, path: &str, business: &[(&str, String)]) -> Result<Bytes, ChannelError> {
        let form = self.signed_form(business, Utc::now());
        let body = serde_urlencoded::to_string(&form).map_err(|e| {
            ChannelError::Malformed(format!("the form of {path} does not encode: {e}"))
        })?;
        let response = http::send(
            self.http
                .post(format!("{}{path}", self.base_url))
                .header(
                    "content-type",
                    "application/x-www-form-urlencoded;charset=UTF-8",
                )
                .header("accept", "application/json")
                .timeout(self.timeout)
                .body(body),
        )
        .await?;
        http::body(response).await
    }

    /// Undoes the redemption of one voucher. `Ok(false)`: it was not redeemed (any more).
    async fn reverse(
        &self,
        shop: &str,
        deal_id: &str,
        receipt_code: &str,
    ) -> Result<bool, ChannelError> {
        let body = self
            .call(
                REVERSE_PATH,
                &[
                    ("app_deal_id", deal_id.to_owned()),
                    ("receipt_code", receipt_code.to_owned()),
                    ("open_shop_uuid", shop.to_owned()),
                    ("app_shop_account", self.app_shop_account.clone()),
                    ("app_shop_accountname", self.app_shop_accountname.clone()),
                ],
            )
            .await?;
        let envelope =
            wire::read::<Vec<Receipt>>(&body, "reverseconsume").map_err(ChannelError::Malformed)?;
        if envelope.code.trim() == codes::NOT_CONSUMED.to_string() {
            return Ok(false);
        }
        convert::check(Call::Reverse, &envelope)?;
        Ok(true)
    }
}

/// The signed form of a call (common parameters, `business`, `sign`) as of `at`; shared
/// with the simulator and tests.
pub fn signed_form(
    app_key: &str,
    app_secret: &str,
    session: &str,
    business: &[(&str, String)],
    at: DateTime<Utc>,
) -> Vec<(String, String)> {
    let mut form: Vec<(String, String)> = vec![
        ("app_key".to_owned(), app_key.to_owned()),
        ("session".to_owned(), session.to_owned()),
        ("timestamp".to_owned(), sign::timestamp(at)),
        ("format".to_owned(), "json".to_owned()),
        ("v".to_owned(), "1".to_owned()),
        ("sign_method".to_owned(), "MD5".to_owned()),
    ];
    form.extend(
        business
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone())),
    );
    let signature = sign::sign(
        form.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        app_secret,
    );
    form.push(("sign".to_owned(), signature));
    form
}

/// A redeemed voucher as `push` needs it, from the order's `channel_data`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct StoredReceipt {
    receipt_code: String,
    #[serde(default)]
    deal_id: Option<String>,
    #[serde(default)]
    product_item_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct StoredRedemption {
    #[serde(default)]
    open_shop_uuid: Option<String>,
    receipts: Vec<StoredReceipt>,
}

fn stored(order: &Order) -> Result<StoredRedemption, ChannelError> {
    let redemption = StoredRedemption::deserialize(&order.order.channel_data)
        .map_err(|e| ChannelError::Malformed(format!("channel_data of a Dianping order: {e}")))?;
    if redemption.receipts.is_empty() {
        return Err(ChannelError::Malformed(
            "channel_data of a Dianping order lists no redeemed voucher".to_owned(),
        ));
    }
    Ok(redemption)
}

#[async_trait]
impl Channel for Dianping {
    fn id(&self) -> &ChannelId {
        &self.settings.channel
    }

    /// Dianping never calls the hub: every request to `/webhooks/dianping` is refused.
    fn verify(&self, request: &InboundRequest) -> Result<(), ChannelError> {
        let _ = request;
        Err(ChannelError::Unauthorized(
            "channel `dianping` has no webhook: Dianping never calls the hub; stores redeem vouchers through POST /api/v1/codes/redeem"
                .to_owned(),
        ))
    }

    fn parse(&self, request: &InboundRequest) -> Result<Delivery, ChannelError> {
        let _ = request;
        Err(ChannelError::Unsupported(
            "channel `dianping` has no webhook to parse; stores redeem vouchers through POST /api/v1/codes/redeem"
                .to_owned(),
        ))
    }

    async fn check_code(&self, claim: &CodeClaim) -> Result<serde_json::Value, ChannelError> {
        let code = convert::normalize_code(&claim.code)?;
        let shop = shop_ref(&claim.channel_store_ref)?;
        let body = self
            .call(
                PREPARE_PATH,
                &[
                    ("receipt_code", code.clone()),
                    ("open_shop_uuid", shop.to_owned()),
                ],
            )
            .await?;
        let envelope = wire::read::<Receipt>(&body, "prepare").map_err(ChannelError::Malformed)?;
        let preview = convert::preview(&self.settings, &code, shop, envelope);
        tracing::info!(
            channel = CHANNEL_ID,
            store = shop,
            ok = preview.is_ok(),
            "Dianping code checked."
        );
        preview
    }

    async fn redeem_code(&self, claim: &CodeClaim) -> Result<Bytes, ChannelError> {
        let code = convert::normalize_code(&claim.code)?;
        let shop = shop_ref(&claim.channel_store_ref)?;
        if !(1..=MAX_COUNT).contains(&claim.count) {
            return Err(ChannelError::Malformed(format!(
                "count: {} vouchers cannot be redeemed at once (1 to {MAX_COUNT})",
                claim.count
            )));
        }
        let request_id = claim.request_id.trim();
        if request_id.is_empty() || request_id.len() > 64 {
            return Err(ChannelError::Malformed(
                "request_id: must be 1 to 64 characters (Dianping's requestid)".to_owned(),
            ));
        }
        let body = self
            .call(
                CONSUME_PATH,
                &[
                    ("requestid", request_id.to_owned()),
                    ("receipt_code", code.clone()),
                    ("count", claim.count.to_string()),
                    ("open_shop_uuid", shop.to_owned()),
                    ("app_shop_account", self.app_shop_account.clone()),
                    ("app_shop_accountname", self.app_shop_accountname.clone()),
                ],
            )
            .await?;
        tracing::info!(
            channel = CHANNEL_ID,
            store = shop,
            count = claim.count,
            "Dianping voucher redeemed."
        );
        Ok(body)
    }

    /// Reads a `consume` answer; the order is placed when the code was claimed.
    fn parse_redeemed(&self, claim: &CodeClaim, body: &[u8]) -> Result<Delivery, ChannelError> {
        let envelope =
            wire::read::<Vec<Receipt>>(body, "consume").map_err(ChannelError::Malformed)?;
        convert::redeemed(&self.settings, claim, envelope, claim.claimed_at)
    }

    async fn push(
        &self,
        order: &Order,
        change: &StatusChange,
    ) -> Result<PushOutcome, ChannelError> {
        let reason = match &change.action {
            StatusAction::Reject { reason } | StatusAction::Cancel { reason } => reason,
            other => {
                return Ok(PushOutcome::NotApplicable {
                    why: format!(
                        "Dianping has no order statuses: a redeemed voucher has no `{}` to report",
                        other.target()
                    ),
                });
            }
        };
        let redemption = stored(order)?;
        let shop = redemption
            .open_shop_uuid
            .as_deref()
            .or(order.order.channel_store_ref.as_deref())
            .unwrap_or_default();
        let shop = shop_ref(shop)?;
        let mut reversed = Vec::new();
        let mut already = Vec::new();
        for receipt in &redemption.receipts {
            let deal_id = receipt
                .deal_id
                .as_deref()
                .or(receipt.product_item_id.as_deref())
                .ok_or_else(|| {
                    ChannelError::Malformed(format!(
                        "channel_data: voucher {} has no deal id to reverse",
                        clip(&receipt.receipt_code)
                    ))
                })?;
            match self.reverse(shop, deal_id, &receipt.receipt_code).await {
                Ok(true) => reversed.push(receipt.receipt_code.as_str()),
                Ok(false) => already.push(receipt.receipt_code.as_str()),
                Err(error) => {
                    tracing::warn!(
                        channel = CHANNEL_ID,
                        order_id = %order.id,
                        external_order_id = %order.order.external_order_id,
                        action = %change.action.target(),
                        error_type = error.kind(),
                        retryable = error.is_retryable(),
                        %error,
                        "Reversing a Dianping redemption failed."
                    );
                    return Err(error);
                }
            }
        }
        tracing::info!(
            channel = CHANNEL_ID,
            order_id = %order.id,
            external_order_id = %order.order.external_order_id,
            action = %change.action.target(),
            reason = %clip(reason),
            reversed = reversed.len(),
            already_reversed = already.len(),
            "Dianping redemption reversed."
        );
        let mut detail = format!(
            "reverseconsume undid {} voucher(s) [{}]",
            reversed.len(),
            reversed.join(", ")
        );
        if !already.is_empty() {
            detail.push_str(&format!("; already not redeemed: [{}]", already.join(", ")));
        }
        Ok(PushOutcome::Delivered { detail })
    }

    /// Dianping publishes no rate; 20 calls per second per app is assumed, and pushes
    /// (reversals, which are rare) take half of it, leaving room for redemptions.
    fn push_rate(&self) -> RateLimit {
        RateLimit {
            per_second: 10,
            burst: 10,
        }
    }
}

/// Builds [`Dianping`] from `[channels.dianping]` and the `app_secret` and `session`
/// secrets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Factory;

impl ChannelFactory for Factory {
    fn id(&self) -> &'static str {
        CHANNEL_ID
    }

    fn dev_secrets(&self) -> &'static [(&'static str, &'static str)] {
        &[(APP_SECRET, DEV_APP_SECRET), (SESSION, DEV_SESSION)]
    }

    fn build(&self, settings: &ChannelSettings) -> Result<Arc<dyn Channel>, ConfigError> {
        let config: DianpingConfig = settings.options()?;
        let app_secret = settings.secret(APP_SECRET)?;
        let session = settings.secret(SESSION)?;
        Ok(Arc::new(Dianping::new(
            config,
            app_secret,
            session,
            settings.http.clone(),
        )?))
    }
}

#[cfg(test)]
mod tests;
