//! The demo: the hub with every channel's platform simulator, the sample chain loaded,
//! store tokens issued, and a gentle stream of orders rotating over the channels
//! (`--no-traffic` turns it off). Prints where to look and how to work an order with curl.
//!
//! Its parts are public so that a test can run the demo's traffic against a test hub:
//! [`Sims::start`] starts the simulators on [`SimPorts`], [`Sims::hub_options`] is what
//! the hub must be configured with to call them, [`Sims::connect`] points them at the
//! hub, and [`Traffic`] places the demo orders.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use crossdock_adapter_deliveroo::simulator::{DeliverooSim, SimConfig as DeliverooSimConfig};
use crossdock_adapter_dianping::simulator::{DianpingSim, SimConfig as DianpingSimConfig};
use crossdock_adapter_doordash::simulator::{DoorDashSim, SimConfig as DoorDashSimConfig};
use crossdock_adapter_eleme::simulator::{ElemeSim, SimConfig as ElemeSimConfig};
use crossdock_adapter_google::simulator::{GoogleSim, SimConfig as GoogleSimConfig};
use crossdock_adapter_meituan::simulator::{MeituanSim, SimConfig as MeituanSimConfig};
use crossdock_adapter_own_app::simulator::{OwnAppSim, SimConfig as AppSimConfig};
use crossdock_adapter_pos::simulator::{DEFAULT_REGISTER, PosSim, SimConfig as PosSimConfig};
use crossdock_adapter_uber_eats::Generation;
use crossdock_adapter_uber_eats::simulator::{SimConfig as UberSimConfig, UberEatsSim};
use crossdock_channel::sim::{SampleFulfillment, SampleItem, SampleOrder};
use crossdock_model::{ChainFile, StoreId, StoreProfile};
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};

use crate::app::Roles;
use crate::config::{Mode, Settings};

/// Every channel the demo drives, in the order its traffic rotates over them.
pub const CHANNELS: [&str; 9] = [
    "own_app",
    "uber_eats",
    "pos",
    "doordash",
    "deliveroo",
    "meituan",
    "eleme",
    "google",
    "dianping",
];

/// How long one demo order may take (the simulator's request and the hub's answer).
const PLACE_TIMEOUT: Duration = Duration::from_secs(30);

mod offer;
pub use offer::{Offered, Resend, acknowledged, offer, resend};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Do not send demo orders (the simulators still run).
    #[arg(long)]
    pub no_traffic: bool,
    /// Time between demo orders.
    #[arg(long, default_value_t = 5000)]
    pub interval_ms: u64,
    /// The chain file to load.
    #[arg(long, default_value = "fixtures/chain/chain.json")]
    pub chain: PathBuf,
    /// The chain's menu: loaded with the chain (the router refuses orders naming items not
    /// on it), and what the demo orders are drawn from.
    #[arg(long, default_value = "fixtures/chain/menu.json")]
    pub menu: PathBuf,
    /// The store whose token is printed and which gets most demo orders of the channels it
    /// sells on.
    #[arg(long, default_value = "NYC-001")]
    pub store: String,
    /// The Uber Eats simulator's port.
    #[arg(long, default_value_t = 8081)]
    pub uber_eats_port: u16,
    /// The own-app simulator's port.
    #[arg(long, default_value_t = 8082)]
    pub own_app_port: u16,
    /// The POS simulator's port; the DoorDash, Deliveroo, Meituan, Ele.me, Google and
    /// Dianping simulators take the six ports after it, in that order.
    #[arg(long, default_value_t = 8083, value_parser = clap::value_parser!(u16).range(1..=65529))]
    pub sim_base_port: u16,
}

/// The chain's menu: the demo loads it into the hub and draws its orders from it.
pub use crate::chain::Menu;
use crate::chain::MenuItem;

/// Where each simulator listens; 0 picks a free port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimPorts {
    pub own_app: u16,
    pub uber_eats: u16,
    pub pos: u16,
    pub doordash: u16,
    pub deliveroo: u16,
    pub meituan: u16,
    pub eleme: u16,
    pub google: u16,
    pub dianping: u16,
}

impl SimPorts {
    /// Every simulator on a free port (tests).
    pub const ANY: SimPorts = SimPorts {
        own_app: 0,
        uber_eats: 0,
        pos: 0,
        doordash: 0,
        deliveroo: 0,
        meituan: 0,
        eleme: 0,
        google: 0,
        dianping: 0,
    };

    /// The demo's fixed ports: `--uber-eats-port`, `--own-app-port`, and seven consecutive
    /// ports from `--sim-base-port`.
    pub fn from_args(args: &DemoArgs) -> SimPorts {
        let next = |offset: u16| args.sim_base_port.saturating_add(offset);
        SimPorts {
            own_app: args.own_app_port,
            uber_eats: args.uber_eats_port,
            pos: next(0),
            doordash: next(1),
            deliveroo: next(2),
            meituan: next(3),
            eleme: next(4),
            google: next(5),
            dianping: next(6),
        }
    }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The platform simulators; `None` where one could not start (the demo goes on without it).
pub struct Sims {
    pub own_app: Option<OwnAppSim>,
    pub uber_eats: Option<UberEatsSim>,
    pub pos: Option<PosSim>,
    pub doordash: Option<DoorDashSim>,
    pub deliveroo: Option<DeliverooSim>,
    pub meituan: Option<MeituanSim>,
    pub eleme: Option<ElemeSim>,
    pub google: Option<GoogleSim>,
    pub dianping: Option<DianpingSim>,
    /// The simulators that could not start: channel and why.
    pub failed: Vec<(&'static str, String)>,
}

/// Keeps a started simulator; logs one that failed to start and records why.
fn started<T>(
    channel: &'static str,
    port: u16,
    result: std::io::Result<T>,
    failed: &mut Vec<(&'static str, String)>,
) -> Option<T> {
    match result {
        Ok(sim) => Some(sim),
        Err(error) => {
            tracing::warn!(
                channel,
                port,
                %error,
                "The simulator could not start; the demo goes on without it."
            );
            failed.push((channel, format!("port {port}: {error}")));
            None
        }
    }
}

/// How the simulators limit the hub's calls to their APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimLimits {
    /// Each platform's published (or assumed) limit, as its adapter's docs give it.
    Published,
    /// Every limit raised to `per_second` calls a second, as a large chain's agreement
    /// with each platform would (the benchmark, which measures the hub, not the quotas).
    /// The hub must be told the same through `sync.push_rates`.
    Raised { per_second: u32 },
}

impl Sims {
    /// Starts every simulator with its development credentials (the hub's development
    /// fallbacks) and its platform's published limits. They call no hub until
    /// [`Sims::connect`].
    pub async fn start(ports: SimPorts) -> Sims {
        Sims::start_with(ports, SimLimits::Published).await
    }

    /// [`Sims::start`], with the simulators' limits on the hub's calls as `limits` says.
    pub async fn start_with(ports: SimPorts, limits: SimLimits) -> Sims {
        let raised = match limits {
            SimLimits::Published => None,
            SimLimits::Raised { per_second } => Some(per_second),
        };
        let mut failed = Vec::new();
        let own_app = OwnAppSim::start(AppSimConfig {
            bind: local(ports.own_app),
            hub_webhook_url: String::new(),
            signing_secret: crossdock_adapter_own_app::DEV_SIGNING_SECRET.into(),
        })
        .await;
        let own_app = started("own_app", ports.own_app, own_app, &mut failed);
        let uber_eats = UberEatsSim::start(UberSimConfig {
            bind: local(ports.uber_eats),
            ..UberSimConfig::default()
        })
        .await;
        let uber_eats = started("uber_eats", ports.uber_eats, uber_eats, &mut failed);
        let pos = PosSim::start(PosSimConfig {
            bind: local(ports.pos),
            hub_webhook_url: String::new(),
            master_key: crossdock_adapter_pos::DEV_MASTER_KEY.to_owned(),
            register: DEFAULT_REGISTER.to_owned(),
        })
        .await;
        let pos = started("pos", ports.pos, pos, &mut failed);
        let mut config = DoorDashSimConfig {
            bind: local(ports.doordash),
            ..DoorDashSimConfig::default()
        };
        if let Some(per_second) = raised {
            config.rate_per_second = per_second;
        }
        let doordash = DoorDashSim::start(config).await;
        let doordash = started("doordash", ports.doordash, doordash, &mut failed);
        let deliveroo = DeliverooSim::start(DeliverooSimConfig {
            bind: local(ports.deliveroo),
            ..DeliverooSimConfig::default()
        })
        .await;
        let deliveroo = started("deliveroo", ports.deliveroo, deliveroo, &mut failed);
        let mut config = MeituanSimConfig {
            bind: local(ports.meituan),
            ..MeituanSimConfig::default()
        };
        if let Some(per_second) = raised {
            config.rate_limit_per_second = per_second;
        }
        let meituan = MeituanSim::start(config).await;
        let meituan = started("meituan", ports.meituan, meituan, &mut failed);
        let mut config = ElemeSimConfig {
            bind: local(ports.eleme),
            hub_webhook_url: String::new(),
            ..ElemeSimConfig::default()
        };
        if let (Some(per_second), Some(limit)) = (raised, config.rate_limit.as_mut()) {
            limit.calls = usize::try_from(per_second)
                .unwrap_or(usize::MAX)
                .saturating_mul(limit.window.as_secs().max(1) as usize);
        }
        let eleme = ElemeSim::start(config).await;
        let eleme = started("eleme", ports.eleme, eleme, &mut failed);
        let mut config = GoogleSimConfig {
            bind: local(ports.google),
            ..GoogleSimConfig::default()
        };
        if let (Some(per_second), Some(limit)) = (raised, config.rate_limit.as_mut()) {
            limit.per_second = f64::from(per_second);
            limit.burst = f64::from(per_second);
        }
        let google = GoogleSim::start(config).await;
        let google = started("google", ports.google, google, &mut failed);
        let mut config = DianpingSimConfig {
            bind: local(ports.dianping),
            ..DianpingSimConfig::default()
        };
        if let Some(per_second) = raised {
            config.rate_limit_per_second = per_second;
        }
        let dianping = DianpingSim::start(config).await;
        let dianping = started("dianping", ports.dianping, dianping, &mut failed);
        Sims {
            own_app,
            uber_eats,
            pos,
            doordash,
            deliveroo,
            meituan,
            eleme,
            google,
            dianping,
            failed,
        }
    }

    /// The simulator's base URL, if it runs.
    pub fn base_url(&self, channel: &str) -> Option<String> {
        match channel {
            "own_app" => self.own_app.as_ref().map(OwnAppSim::base_url),
            "uber_eats" => self.uber_eats.as_ref().map(UberEatsSim::base_url),
            "pos" => self.pos.as_ref().map(PosSim::base_url),
            "doordash" => self.doordash.as_ref().map(DoorDashSim::base_url),
            "deliveroo" => self.deliveroo.as_ref().map(DeliverooSim::base_url),
            "meituan" => self.meituan.as_ref().map(MeituanSim::base_url),
            "eleme" => self.eleme.as_ref().map(ElemeSim::base_url),
            "google" => self.google.as_ref().map(GoogleSim::base_url),
            "dianping" => self.dianping.as_ref().map(DianpingSim::base_url),
            _ => None,
        }
    }

    /// The channels whose simulator runs, in [`CHANNELS`] order.
    pub fn running(&self) -> Vec<&'static str> {
        CHANNELS
            .into_iter()
            .filter(|channel| self.base_url(channel).is_some())
            .collect()
    }

    /// The `[channels.<id>]` options that make the hub call the simulators instead of the
    /// platforms (as each adapter's `tests/conformance.rs` configures it). The own-app and
    /// POS adapters call no platform API: their defaults serve.
    pub fn hub_options(&self) -> Vec<(String, Value)> {
        let mut options = Vec::new();
        let mut add = |channel: &str, value: Value| options.push((channel.to_owned(), value));
        if let Some(sim) = &self.uber_eats {
            add(
                "uber_eats",
                json!({ "base_url": sim.base_url(), "token_url": sim.token_url() }),
            );
        }
        if let Some(sim) = &self.doordash {
            add(
                "doordash",
                json!({ "base_url": sim.base_url(), "timeout_secs": 5 }),
            );
        }
        if let Some(sim) = &self.deliveroo {
            add(
                "deliveroo",
                json!({ "base_url": sim.base_url(), "token_url": sim.token_url() }),
            );
        }
        if let Some(sim) = &self.meituan {
            add(
                "meituan",
                json!({
                    "base_url": sim.api_base(),
                    "app_id": crossdock_adapter_meituan::DEV_APP_ID,
                }),
            );
        }
        if let Some(sim) = &self.eleme {
            add(
                "eleme",
                json!({ "base_url": sim.base_url(), "token_url": sim.token_url() }),
            );
        }
        if let Some(sim) = &self.google {
            add(
                "google",
                json!({ "api_base_url": sim.base_url(), "token_url": sim.token_url() }),
            );
        }
        if let Some(sim) = &self.dianping {
            add("dianping", json!({ "base_url": sim.base_url() }));
        }
        options
    }

    /// [`Sims::hub_options`] as the environment of a hub process:
    /// `CROSSDOCK_CHANNELS__<CHANNEL>__<KEY>` variables.
    pub fn hub_env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        for (channel, options) in self.hub_options() {
            let Some(options) = options.as_object() else {
                continue;
            };
            for (key, value) in options {
                // Quoted, so that a string of digits (Meituan's app id) stays a string:
                // the environment's values are read as TOML-like values.
                env.push((
                    format!(
                        "CROSSDOCK_CHANNELS__{}__{}",
                        channel.to_ascii_uppercase(),
                        key.to_ascii_uppercase()
                    ),
                    value.to_string(),
                ));
            }
        }
        env
    }

    /// Points every simulator that sends to the hub at it: `hub` is where requests reach it
    /// (`http://127.0.0.1:8080`), `public_url` the URL platforms have registered (Meituan
    /// signs it). Dianping sends nothing.
    pub fn connect(&self, hub: &str, public_url: &str) {
        let hub = hub.trim_end_matches('/');
        let public_url = public_url.trim_end_matches('/');
        if let Some(sim) = &self.own_app {
            sim.set_hub_webhook_url(format!("{hub}/webhooks/own_app"));
        }
        if let Some(sim) = &self.uber_eats {
            sim.set_hub_webhook_url(format!("{hub}/webhooks/uber_eats"));
        }
        if let Some(sim) = &self.pos {
            sim.connect(&format!("{hub}/webhooks/pos"));
        }
        if let Some(sim) = &self.doordash {
            sim.set_hub_webhook_url(format!("{hub}/webhooks/doordash"));
        }
        if let Some(sim) = &self.deliveroo {
            sim.set_hub_webhook_url(format!("{hub}/webhooks/deliveroo"));
        }
        if let Some(sim) = &self.meituan {
            sim.set_hub(
                format!("{hub}/webhooks/meituan"),
                format!("{public_url}/webhooks/meituan"),
            );
        }
        if let Some(sim) = &self.eleme {
            sim.set_hub_webhook_url(format!("{hub}/webhooks/eleme"));
        }
        if let Some(sim) = &self.google {
            sim.set_hub_webhook_url(format!("{hub}/webhooks/google"));
        }
    }
}

/// Where a simulator shows what it recorded: the calls the hub made to it, or for the POS
/// (which the hub never calls) what it sent with the hub's answers.
pub fn recorded_path(channel: &str) -> &'static str {
    if channel == "pos" {
        "/_sim/sent"
    } else {
        "/_sim/calls"
    }
}

/// What a simulator's record shows once the store works an order.
fn recorded_what(channel: &str) -> &'static str {
    match channel {
        "own_app" => "the signed status callbacks",
        "uber_eats" => "accept_pos_order / accept, deny, cancel, ready",
        "pos" => "the hub calls no POS: every order the POS sent, with the hub's answer",
        "doordash" => "the confirmation PATCH, order_ready_for_pickup, cancellation",
        "deliveroo" => "the status PATCH, sync_status, prep_stage",
        "meituan" => "poi_received, confirm, preparationMealComplete, cancel",
        "eleme" => "confirmOrderLite, setOrderPrepared, cancelOrderLite",
        "google" => "token, conversations:send order updates",
        "dianping" => "consume for each redemption (prepare for a check), reverseconsume on reject",
        _ => "",
    }
}

pub async fn run(mut settings: Settings, args: DemoArgs) -> anyhow::Result<()> {
    if settings.mode != Mode::Development {
        anyhow::bail!(
            "the demo runs only in development mode (its simulators use development credentials)"
        );
    }
    let chain = crate::chain::read(&args.chain)?;
    let menu = Menu::read(&args.menu)?;
    let store = StoreId::parse(args.store.clone())?;
    anyhow::ensure!(
        chain.stores.iter().any(|s| s.id == store),
        "the --store is not in the chain"
    );

    // The chain and its menu are in the database before the hub starts: its registry is
    // built from them.
    let (loaded, menu_loaded) = {
        let db = crate::app::connect_db(&settings, 2).await?;
        let stores = crate::chain::load(&db, &chain).await?;
        let replaced = crate::chain::load_menu(&db, &menu).await?;
        (stores, replaced.total())
    };
    tracing::info!(
        stores = loaded,
        menu_items = menu_loaded,
        "Sample chain and menu loaded."
    );

    let sims = Sims::start(SimPorts::from_args(&args)).await;
    for (channel, options) in sims.hub_options() {
        merge_options(&mut settings, channel, options);
    }
    let hub = crate::start(settings.clone(), Roles::ALL).await?;
    let addr = hub.addr.context("the demo runs the API")?;
    let base = format!("http://{addr}");
    sims.connect(&base, &settings.http.public_url);

    let token = crate::chain::issue_token(&hub.shared.db, &store).await?;
    let mut tokens = HashMap::from([(store.clone(), token)]);
    // Dianping vouchers are redeemed by the store, with its own token.
    if sims.dianping.is_some() {
        for shop in chain
            .stores
            .iter()
            .filter(|s| s.channels.contains_key("dianping") && s.id != store)
        {
            let token = crate::chain::issue_token(&hub.shared.db, &shop.id).await?;
            tokens.insert(shop.id.clone(), token);
        }
    }
    let admin = secrecy::ExposeSecret::expose_secret(&hub.shared.admin_token).to_owned();
    print_guide(&Guide {
        base: &base,
        store: &store,
        tokens: &tokens,
        admin: &admin,
        chain: &chain,
        stores: loaded,
        menu_items: menu_loaded,
        sims: &sims,
        args: &args,
        accept_ms: hub.shared.settings.router.store_accept_ms,
    });

    // The simulators run until the hub stops, with or without traffic.
    let sims = Arc::new(sims);
    let traffic = (!args.no_traffic).then(|| {
        let interval = Duration::from_millis(args.interval_ms.max(200));
        let traffic = Traffic::new(Arc::clone(&sims), &chain, menu, store, tokens, base);
        tokio::spawn(traffic.run(interval))
    });
    let result = hub.run_until_stopped().await;
    if let Some(traffic) = traffic {
        traffic.abort();
    }
    drop(sims);
    result
}

/// Sets the simulator's options over the channel's configured section, keeping the
/// section's other keys (e.g. DoorDash's `currency`).
fn merge_options(settings: &mut Settings, channel: String, options: Value) {
    match (settings.channels.get_mut(&channel), options) {
        (Some(Value::Object(section)), Value::Object(options)) => section.extend(options),
        (_, options) => {
            settings.channels.insert(channel, options);
        }
    }
}

struct Guide<'a> {
    base: &'a str,
    store: &'a StoreId,
    tokens: &'a HashMap<StoreId, String>,
    admin: &'a str,
    chain: &'a ChainFile,
    stores: usize,
    /// PLUs on the menu (items and options).
    menu_items: usize,
    sims: &'a Sims,
    args: &'a DemoArgs,
    /// How long a store has to accept (`router.store_accept_ms`).
    accept_ms: u64,
}

fn print_guide(guide: &Guide<'_>) {
    let Guide {
        base,
        store,
        tokens,
        admin,
        chain,
        stores,
        menu_items,
        sims,
        args,
        accept_ms,
    } = *guide;
    let token = tokens.get(store).map_or("", String::as_str);
    let running = sims.running();
    let traffic = if args.no_traffic {
        "off (--no-traffic); place one with a simulator's POST /_sim/orders (Dianping: below)"
            .to_owned()
    } else {
        format!(
            "one every {:.1} s, in turn from {}; mostly to {store} on the channels it sells on",
            args.interval_ms as f64 / 1000.0,
            running.join(", "),
        )
    };
    let mut simulators = String::new();
    for channel in CHANNELS {
        let line = match sims.base_url(channel) {
            Some(url) => format!(
                "  {channel:<10} {url}   curl -s {url}{}   # {}\n",
                recorded_path(channel),
                recorded_what(channel)
            ),
            None => {
                let why = sims
                    .failed
                    .iter()
                    .find(|(failed, _)| *failed == channel)
                    .map_or("", |(_, why)| why.as_str());
                format!("  {channel:<10} not running ({why}): no {channel} orders\n")
            }
        };
        simulators.push_str(&line);
    }
    // A store that redeems Dianping vouchers, and how to sell one by hand.
    let dianping = sims.dianping.as_ref().and_then(|sim| {
        let shop = chain
            .stores
            .iter()
            .find(|s| s.channels.contains_key("dianping"))?;
        let shop_token = tokens.get(&shop.id)?;
        let sample = SampleOrder {
            store_ref: shop.channels.get("dianping").cloned(),
            currency: shop.currency.code().to_owned(),
            fulfillment: SampleFulfillment::Pickup,
            customer_name: "Li Lei".into(),
            customer_phone: Some("+86 138 0013 8000".into()),
            items: vec![SampleItem {
                plu: "PZ-MARG-L".into(),
                name: "Margherita (Large)".into(),
                quantity: 1,
                unit_price_minor: 8800,
                notes: None,
                modifiers: vec![],
            }],
            notes: None,
            delivery_fee_minor: 0,
            tip_minor: 0,
            discount_minor: 0,
            scheduled_for: None,
        };
        let sample = serde_json::to_string(&sample).ok()?;
        Some(format!(
            r#"
Sell a Dianping voucher and redeem it at the counter of {shop_id} (it becomes an order of {shop_id}):
  CODE=$(curl -s -H 'content-type: application/json' -d '{sample}' {url}/_sim/vouchers | sed -n 's/.*"codes":\["\([^"]*\)".*/\1/p')
  curl -s -X POST -H "Authorization: Bearer {shop_token}" -H 'content-type: application/json' -d "{{\"channel\": \"dianping\", \"code\": \"$CODE\"}}" {base}/api/v1/codes/redeem
"#,
            shop_id = shop.id,
            url = sim.base_url(),
        ))
    });
    println!(
        r#"
Crossdock is running with the sample chain ({stores} stores, {menu_items} items and options on its menu) and {running} of {all} platform simulators.

  store console   {base}/store           sign in as {store} with token {token}
  HQ dashboard    {base}/hq              sign in with token {admin}
  API             {base}/api/v1          health: {base}/healthz  {base}/readyz  metrics: {base}/metrics
  demo orders     {traffic}

The simulators, and where to see what each received from the hub:
{simulators}
Work an order as the store:
  export TOKEN={token}
  curl -s -H "Authorization: Bearer $TOKEN" {base}/api/v1/orders
  ID=$(curl -s -H "Authorization: Bearer $TOKEN" '{base}/api/v1/orders?status=received&limit=1' | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | head -1)
  curl -s -X POST -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{{"prep_minutes": 15}}' {base}/api/v1/orders/$ID/accept
  curl -s -X POST -H "Authorization: Bearer $TOKEN" {base}/api/v1/orders/$ID/ready
Then the accept and the ready arrive at the simulator of the order's "channel" (its curl line above).
A store has {accept_s} s to accept: after that, or on a reject, an order the hub placed by address
goes to the next store, and one the platform named the store for waits on HQ's attention list.
  curl -s -X POST -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{{"minutes": 10}}' {base}/api/v1/stores/{store}/pause
  curl -s -X POST -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{{"unavailable": ["PZ-MARG-L"]}}' {base}/api/v1/stores/{store}/availability

HQ sees every order of every channel, each with its history, and the orders waiting for it:
  curl -s -H "Authorization: Bearer {admin}" '{base}/api/v1/orders?limit=50'
  curl -s -H "Authorization: Bearer {admin}" {base}/api/v1/orders/$ID
  curl -s -H "Authorization: Bearer {admin}" {base}/api/v1/attention
{dianping}
Stop with Ctrl-C.
"#,
        running = running.len(),
        all = CHANNELS.len(),
        accept_s = accept_ms / 1000,
        dianping = dianping.unwrap_or_default(),
    );
}

/// One demo order: what it was built for and what came of it.
#[derive(Debug)]
pub struct DemoOrder {
    pub channel: &'static str,
    /// The store it was built for: the store it names, or for an own-app delivery routed by
    /// zone, the store near whose address it is.
    pub store: StoreId,
    /// `false` for an own-app delivery: the router picks the store by zone.
    pub names_store: bool,
    /// What kind of order it is (`pickup`, `walk-in`, `voucher`, …).
    pub kind: &'static str,
    /// The platform's order id, or why the order did not get in.
    pub result: anyhow::Result<String>,
}

/// The demo's stream of orders: each in turn from the next channel whose simulator runs,
/// for a store that channel is mapped at in the chain, priced from the menu in that
/// store's currency.
pub struct Traffic {
    sims: Arc<Sims>,
    stores: Vec<StoreProfile>,
    menu: Menu,
    home: StoreId,
    tokens: HashMap<StoreId, String>,
    hub: String,
    http: reqwest::Client,
    channels: Vec<&'static str>,
    round: u64,
    /// Orders spread evenly over the stores instead of mostly to `home`.
    spread: bool,
}

impl Traffic {
    /// `home` gets most orders of the channels it sells on; `tokens` are the store tokens
    /// Dianping vouchers are redeemed with; `hub` is where the hub's API is
    /// (`http://127.0.0.1:8080`).
    pub fn new(
        sims: Arc<Sims>,
        chain: &ChainFile,
        menu: Menu,
        home: StoreId,
        tokens: HashMap<StoreId, String>,
        hub: String,
    ) -> Traffic {
        let channels = sims
            .running()
            .into_iter()
            .filter(|channel| {
                let mapped = chain
                    .stores
                    .iter()
                    .any(|s| s.channels.contains_key(*channel));
                if !mapped {
                    tracing::warn!(
                        channel,
                        "No store of the chain sells on the channel; no demo orders from it."
                    );
                }
                mapped
            })
            .collect();
        Traffic {
            sims,
            stores: chain.stores.clone(),
            menu,
            home,
            tokens,
            hub: hub.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            channels,
            round: 0,
            spread: false,
        }
    }

    /// Spreads the orders evenly over the stores (the fault suite), instead of sending most
    /// of them to the home store (the demo, whose guide follows one store).
    pub fn spread(mut self) -> Traffic {
        self.spread = true;
        self
    }

    /// The token the traffic uses for `store` (Dianping vouchers are redeemed with it).
    pub fn token(&self, store: &StoreId) -> Option<&str> {
        self.tokens.get(store).map(String::as_str)
    }

    /// The next order of the rotation, not placed: its channel, its store and the order.
    /// `None` if no channel can take orders.
    pub fn next_sample(&mut self) -> Option<(&'static str, StoreProfile, SampleOrder)> {
        let (channel, turn) = self.next_turn()?;
        let (store, _, _, sample) = self.sample(channel, turn)?;
        Some((channel, store, sample))
    }

    /// The next channel of the rotation and how many of its orders came before.
    fn next_turn(&mut self) -> Option<(&'static str, u64)> {
        let count = self.channels.len() as u64;
        let channel = *self
            .channels
            .get(usize::try_from(self.round % count.max(1)).ok()?)?;
        let turn = self.round / count;
        self.round += 1;
        Some((channel, turn))
    }

    /// The channels the traffic rotates over.
    pub fn channels(&self) -> &[&'static str] {
        &self.channels
    }

    /// Places a demo order every `interval`, forever.
    pub async fn run(mut self, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.place_next().await.is_none() {
                tracing::warn!("No channel can take demo orders; the demo sends none.");
                return;
            }
        }
    }

    /// Places the next demo order and logs it. A failure (the hub's refusal, a simulator
    /// that does not answer or panics) is logged and returned, never raised: the next
    /// call goes on with the next channel. `None` if no channel can take orders.
    pub async fn place_next(&mut self) -> Option<DemoOrder> {
        // `turn`, the how-many-th order of this channel, alternates its variants.
        let (channel, turn) = self.next_turn()?;
        let (store, names_store, kind, sample) = self.sample(channel, turn)?;
        let sims = Arc::clone(&self.sims);
        let http = self.http.clone();
        let hub = self.hub.clone();
        let token = self.tokens.get(&store.id).cloned();
        let generation = if turn % 2 == 1 {
            Generation::V1
        } else {
            Generation::Classic
        };
        let mut task = tokio::spawn(async move {
            place(&sims, channel, generation, &sample, &http, &hub, token).await
        });
        let result = match tokio::time::timeout(PLACE_TIMEOUT, &mut task).await {
            Ok(Ok(result)) => result,
            Ok(Err(error)) => Err(anyhow::anyhow!("the {channel} simulator failed: {error}")),
            Err(_) => {
                task.abort();
                Err(anyhow::anyhow!("no answer within {PLACE_TIMEOUT:?}"))
            }
        };
        match &result {
            Ok(external_order_id) => tracing::info!(
                channel,
                store = %store.id,
                kind,
                external_order_id = external_order_id.as_str(),
                "Demo order placed."
            ),
            Err(error) => tracing::warn!(
                channel,
                store = %store.id,
                kind,
                error = %format_args!("{error:#}"),
                "Demo order failed; the demo goes on with the next channel."
            ),
        }
        Some(DemoOrder {
            channel,
            store: store.id,
            names_store,
            kind,
            result,
        })
    }

    /// The store and the sample of the channel's next order.
    fn sample(
        &self,
        channel: &'static str,
        turn: u64,
    ) -> Option<(StoreProfile, bool, &'static str, SampleOrder)> {
        let mut rng = rand::rng();
        let mapped: Vec<&StoreProfile> = self
            .stores
            .iter()
            .filter(|s| s.channels.contains_key(channel))
            .collect();
        // Demo orders go to stores open now (by their own hours), where any is; otherwise
        // the order shows how the hub refuses one for a closed store.
        let now = chrono::Utc::now();
        let open: Vec<&StoreProfile> = mapped
            .iter()
            .copied()
            .filter(|s| {
                crossdock_router::OpeningHours::compile(&s.timezone, &s.hours, &s.closed_on)
                    .is_ok_and(|hours| hours.is_open(now))
            })
            .collect();
        let mapped = if open.is_empty() { mapped } else { open };
        let home = mapped
            .iter()
            .find(|s| s.id == self.home && !self.spread)
            .copied();
        let store = match home {
            Some(home) if rng.random_bool(0.6) => home,
            _ => *mapped.choose(&mut rng)?,
        }
        .clone();
        let mut sample = random_order(&self.menu, &store, &mut rng);
        sample.store_ref = store.channels.get(channel).cloned();
        let (names_store, kind) = match channel {
            "own_app" if turn % 2 == 1 => {
                // A delivery near the store: the router picks the store by zone.
                sample.store_ref = None;
                sample.fulfillment = SampleFulfillment::Delivery {
                    lat: store.location.lat + rng.random_range(-0.002..0.002),
                    lng: store.location.lng + rng.random_range(-0.002..0.002),
                    address_lines: vec![match store.country.as_str() {
                        "CN" => format!("示范路{}号", rng.random_range(1..400)),
                        _ => format!("{} Demo St", rng.random_range(1..400)),
                    }],
                    city: store.city.clone(),
                    postcode: postcode(&store),
                    country: store.country.clone(),
                };
                sample.delivery_fee_minor = match store.currency.code() {
                    "CNY" => 800,
                    "GBP" => 249,
                    _ => 299,
                };
                (false, "delivery near the store, routed by zone")
            }
            "uber_eats" if turn % 2 == 1 => (true, "pickup, new API"),
            "uber_eats" => (true, "pickup, classic API"),
            "pos" => (true, "walk-in"),
            "dianping" => (true, "voucher"),
            _ => (true, "pickup"),
        };
        Some((store, names_store, kind, sample))
    }
}

/// The postcode of a store's address, where the sample chain's addresses end with one.
fn postcode(store: &StoreProfile) -> String {
    let words: Vec<&str> = store.address.split_whitespace().collect();
    match (store.country.as_str(), words.as_slice()) {
        ("US", [.., zip]) => (*zip).to_owned(),
        ("GB", [.., outward, inward]) => format!("{outward} {inward}"),
        _ => String::new(),
    }
}

/// Places `sample` on the channel's simulator; returns the platform's order id once the
/// hub took it as the platform expects.
async fn place(
    sims: &Sims,
    channel: &'static str,
    generation: Generation,
    sample: &SampleOrder,
    http: &reqwest::Client,
    hub: &str,
    token: Option<String>,
) -> anyhow::Result<String> {
    let offered = offer(
        sims,
        channel,
        generation,
        sample,
        http,
        hub,
        token.as_deref(),
    )
    .await?;
    if offered.answer.status == 0 {
        anyhow::bail!(
            "the simulator could not reach the hub: {}",
            offered.answer.body
        );
    }
    anyhow::ensure!(offered.acked, "the hub answered {}", offered.answer_line());
    let external_order_id = offered
        .external_order_id
        .context("the hub's answer names no order")?;
    if let ("google", Some(google)) = (channel, &sims.google) {
        let order = google
            .order(&external_order_id)
            .context("the Google simulator lost the order")?;
        anyhow::ensure!(
            order.problems.is_empty() && order.state.as_deref() == Some("CREATED"),
            "Google found the hub's submit answer wrong: {:?} (state {:?})",
            order.problems,
            order.state
        );
    }
    Ok(external_order_id)
}

/// A random order of one to three menu items (each with an option of its first modifier
/// group) at `store`, priced in the store's currency; pickup, no store named yet.
fn random_order(menu: &Menu, store: &StoreProfile, rng: &mut impl Rng) -> SampleOrder {
    let names = [
        "Ada L.",
        "Grace H.",
        "Alan T.",
        "Katherine J.",
        "Linus T.",
        "Margaret H.",
    ];
    let currency = store.currency.code();
    let priced: Vec<&MenuItem> = menu
        .items
        .iter()
        .filter(|item| item.prices.contains_key(currency))
        .collect();
    let count = rng.random_range(1..=3);
    let chosen: Vec<&MenuItem> = (0..count)
        .filter_map(|_| priced.choose(rng).copied())
        .collect();
    let items = chosen
        .into_iter()
        .map(|item| {
            let modifiers = item
                .modifier_groups
                .first()
                .and_then(|group| group.options.choose(rng))
                .and_then(|option| {
                    Some(SampleItem {
                        plu: option.plu.clone(),
                        name: option.name.clone(),
                        quantity: 1,
                        unit_price_minor: *option.prices.get(currency)?,
                        notes: None,
                        modifiers: vec![],
                    })
                })
                .into_iter()
                .collect();
            SampleItem {
                plu: item.plu.clone(),
                name: item.name.clone(),
                quantity: rng.random_range(1..=2),
                unit_price_minor: item.prices.get(currency).copied().unwrap_or(0),
                notes: None,
                modifiers,
            }
        })
        .collect();
    let last4 = rng.random_range(0..10_000);
    let phone = match store.country.as_str() {
        "GB" => format!("+44 20 7946 {last4:04}"),
        "CN" => format!("+86 138 0013 {last4:04}"),
        _ => format!("+1 212 555 {last4:04}"),
    };
    SampleOrder {
        store_ref: None,
        currency: currency.into(),
        fulfillment: SampleFulfillment::Pickup,
        customer_name: names.choose(rng).copied().unwrap_or("Guest").into(),
        customer_phone: Some(phone),
        items,
        notes: None,
        delivery_fee_minor: 0,
        tip_minor: rng.random_range(0..4) * 100,
        discount_minor: 0,
        scheduled_for: None,
    }
}
