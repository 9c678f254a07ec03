//! The demo: the hub with both platform simulators, the sample chain loaded, a store
//! token issued, and a gentle stream of orders from the simulators (`--no-traffic` turns
//! it off). Prints where to look and how to work an order with curl.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use crossdock_adapter_own_app::simulator::{OwnAppSim, SimConfig as AppSimConfig};
use crossdock_adapter_uber_eats::Generation;
use crossdock_adapter_uber_eats::simulator::{SimConfig as UberSimConfig, UberEatsSim};
use crossdock_channel::sim::{SampleFulfillment, SampleItem, SampleOrder};
use crossdock_model::{ChainFile, StoreId};
use rand::Rng;
use rand::seq::IndexedRandom;
use serde::Deserialize;

use crate::app::Roles;
use crate::config::{Mode, Settings};

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
    /// The menu the demo orders are drawn from.
    #[arg(long, default_value = "fixtures/chain/menu.json")]
    pub menu: PathBuf,
    /// The store whose token is printed and which gets most demo orders.
    #[arg(long, default_value = "NYC-001")]
    pub store: String,
    #[arg(long, default_value_t = 8081)]
    pub uber_eats_port: u16,
    #[arg(long, default_value_t = 8082)]
    pub own_app_port: u16,
}

#[derive(Debug, Clone, Deserialize)]
struct Menu {
    items: Vec<MenuItem>,
}

#[derive(Debug, Clone, Deserialize)]
struct MenuItem {
    plu: String,
    name: String,
    prices: std::collections::BTreeMap<String, i64>,
    #[serde(default)]
    modifier_groups: Vec<ModifierGroup>,
}

#[derive(Debug, Clone, Deserialize)]
struct ModifierGroup {
    options: Vec<MenuItem>,
}

pub async fn run(mut settings: Settings, args: DemoArgs) -> anyhow::Result<()> {
    if settings.mode != Mode::Development {
        anyhow::bail!(
            "the demo runs only in development mode (its simulators use development credentials)"
        );
    }
    let chain = crate::chain::read(&args.chain)?;
    let menu: Menu = serde_json::from_str(
        &std::fs::read_to_string(&args.menu)
            .with_context(|| format!("reading {}", args.menu.display()))?,
    )
    .with_context(|| format!("parsing {}", args.menu.display()))?;
    let store = StoreId::parse(args.store.clone())?;
    let home = chain
        .stores
        .iter()
        .find(|s| s.id == store)
        .context("the --store is not in the chain")?
        .clone();

    let uber = UberEatsSim::start(UberSimConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], args.uber_eats_port)),
        ..UberSimConfig::default()
    })
    .await
    .with_context(|| {
        format!(
            "starting the Uber Eats simulator on port {}",
            args.uber_eats_port
        )
    })?;
    settings.channels.insert(
        "uber_eats".into(),
        serde_json::json!({ "base_url": uber.base_url(), "token_url": uber.token_url() }),
    );
    let hub = crate::start(settings.clone(), Roles::ALL).await?;
    let addr = hub.addr.context("the demo runs the API")?;
    let base = format!("http://{addr}");
    uber.set_hub_webhook_url(format!("{base}/webhooks/uber_eats"));
    let app = OwnAppSim::start(AppSimConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], args.own_app_port)),
        hub_webhook_url: format!("{base}/webhooks/own_app"),
        signing_secret: crossdock_adapter_own_app::DEV_SIGNING_SECRET.into(),
    })
    .await
    .with_context(|| {
        format!(
            "starting the own-app simulator on port {}",
            args.own_app_port
        )
    })?;

    let loaded = crate::chain::load(&hub.shared.db, &chain).await?;
    hub.shared.refresh_registry().await?;
    let token = crate::chain::issue_token(&hub.shared.db, &store).await?;
    let admin = secrecy::ExposeSecret::expose_secret(&hub.shared.admin_token).to_owned();
    print_guide(&base, &store, &token, &admin, loaded, &uber, &app, &args);

    let traffic = (!args.no_traffic).then(|| {
        let interval = Duration::from_millis(args.interval_ms.max(200));
        tokio::spawn(traffic(uber, app, chain, menu, home.id.clone(), interval))
    });
    let result = hub.run_until_stopped().await;
    if let Some(traffic) = traffic {
        traffic.abort();
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn print_guide(
    base: &str,
    store: &StoreId,
    token: &str,
    admin: &str,
    stores: usize,
    uber: &UberEatsSim,
    app: &OwnAppSim,
    args: &DemoArgs,
) {
    let traffic = if args.no_traffic {
        "off (--no-traffic); place one with the simulators' POST /_sim/orders".to_owned()
    } else {
        format!(
            "one every {:.1} s from Uber Eats and the own app, mostly to {store}",
            args.interval_ms as f64 / 1000.0
        )
    };
    println!(
        r#"
Crossdock is running with the sample chain ({stores} stores) and two platform simulators.

  API             {base}/api/v1          health: {base}/healthz  {base}/readyz
  store {store}   token {token}
  HQ              token {admin}
  Uber Eats sim   {uber}   (calls it received: {uber}/_sim/calls)
  own-app sim     {app}   (calls it received: {app}/_sim/calls)
  demo orders     {traffic}

Work an order as the store:
  export TOKEN={token}
  curl -s -H "Authorization: Bearer $TOKEN" {base}/api/v1/orders
  ID=$(curl -s -H "Authorization: Bearer $TOKEN" '{base}/api/v1/orders?status=received&limit=1' | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | head -1)
  curl -s -X POST -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{{"prep_minutes": 15}}' {base}/api/v1/orders/$ID/accept
  curl -s -X POST -H "Authorization: Bearer $TOKEN" {base}/api/v1/orders/$ID/ready

See the accept arrive at the platform:
  curl -s {uber}/_sim/calls        # Uber Eats orders: accept_pos_order / accept, ready
  curl -s {app}/_sim/calls         # own-app orders: the signed status callbacks

HQ sees every order with its history:
  curl -s -H "Authorization: Bearer {admin}" {base}/api/v1/orders/$ID

Stop with Ctrl-C.
"#,
        uber = uber.base_url(),
        app = app.base_url(),
    );
}

/// Places a demo order every `interval`, alternating channels.
async fn traffic(
    uber: UberEatsSim,
    app: OwnAppSim,
    chain: ChainFile,
    menu: Menu,
    home: StoreId,
    interval: Duration,
) {
    let nyc: Vec<_> = chain
        .stores
        .iter()
        .filter(|s| s.currency.code() == "USD")
        .cloned()
        .collect();
    let mut tick = tokio::time::interval(interval);
    let mut round: u64 = 0;
    loop {
        tick.tick().await;
        round += 1;
        let sample = {
            let mut rng = rand::rng();
            let store = if rng.random_bool(0.6) {
                nyc.iter().find(|s| s.id == home).or_else(|| nyc.first())
            } else {
                nyc.choose(&mut rng)
            };
            let Some(store) = store.cloned() else { return };
            let mut sample = random_order(&menu, &mut rng);
            match round % 3 {
                0 => {
                    // An own-app delivery near the store: the router picks the store by zone.
                    let lat = store.location.lat + rng.random_range(-0.002..0.002);
                    let lng = store.location.lng + rng.random_range(-0.002..0.002);
                    sample.fulfillment = SampleFulfillment::Delivery {
                        lat,
                        lng,
                        address_lines: vec![format!("{} Demo St", rng.random_range(1..400))],
                        city: store.city.clone(),
                        postcode: "10001".into(),
                        country: store.country.clone(),
                    };
                    sample.delivery_fee_minor = 299;
                    (None, sample)
                }
                1 => {
                    sample.store_ref = Some(store.id.to_string());
                    (None, sample)
                }
                _ => {
                    sample.store_ref = store.channels.get("uber_eats").cloned();
                    let generation = if rng.random_bool(0.5) {
                        Generation::Classic
                    } else {
                        Generation::V1
                    };
                    (Some(generation), sample)
                }
            }
        };
        match sample {
            (Some(generation), sample) => {
                let placed = uber.place_order_with(&sample, generation).await;
                tracing::info!(channel = "uber_eats", external_order_id = %placed.external_order_id, status = placed.answer.status, "Demo order placed.");
            }
            (None, sample) => {
                let placed = app.place_order(&sample).await;
                tracing::info!(channel = "own_app", external_order_id = %placed.external_order_id, status = placed.answer.status, "Demo order placed.");
            }
        }
    }
}

fn random_order(menu: &Menu, rng: &mut impl Rng) -> SampleOrder {
    let names = [
        "Ada L.",
        "Grace H.",
        "Alan T.",
        "Katherine J.",
        "Linus T.",
        "Margaret H.",
    ];
    let count = rng.random_range(1..=3);
    let chosen: Vec<&MenuItem> = (0..count).filter_map(|_| menu.items.choose(rng)).collect();
    let items = chosen
        .into_iter()
        .map(|item| {
            let modifiers = item
                .modifier_groups
                .first()
                .and_then(|group| group.options.choose(rng))
                .map(|option| SampleItem {
                    plu: option.plu.clone(),
                    name: option.name.clone(),
                    quantity: 1,
                    unit_price_minor: option.prices.get("USD").copied().unwrap_or(0),
                    notes: None,
                    modifiers: vec![],
                })
                .into_iter()
                .collect();
            SampleItem {
                plu: item.plu.clone(),
                name: item.name.clone(),
                quantity: rng.random_range(1..=2),
                unit_price_minor: item.prices.get("USD").copied().unwrap_or(0),
                notes: None,
                modifiers,
            }
        })
        .collect();
    SampleOrder {
        store_ref: None,
        currency: "USD".into(),
        fulfillment: SampleFulfillment::Pickup,
        customer_name: names.choose(rng).copied().unwrap_or("Guest").into(),
        customer_phone: Some(format!("+1 212 555 {:04}", rng.random_range(0..10_000))),
        items,
        notes: None,
        delivery_fee_minor: 0,
        tip_minor: rng.random_range(0..4) * 100,
        discount_minor: 0,
        scheduled_for: None,
    }
}
