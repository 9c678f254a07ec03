//! The fixture writer: the generated cases under `fixtures/just_eat/`, written from the
//! simulator's own wire format and signer, plus the saved ones listed in [`SAVED`].
//!
//! ```text
//! UPDATE_FIXTURES=1 cargo test -p crossdock-adapter-just-eat --lib fixtures
//! UPDATE_EXPECT=1 cargo test -p crossdock-adapter-just-eat --test conformance
//! ```
//!
//! The first writes each case's `.body`, `.headers` (and `.url` for the notifications,
//! which JET posts to their own URLs); the second has the kit write what each normalizes
//! to (`.expected.json`): read every one before keeping it. Without `UPDATE_FIXTURES` this
//! test checks that the files are still what the simulator writes, so a change to the wire
//! format or the signature shows up here first.
//!
//! Bodies saved from elsewhere are listed in [`SAVED`]: the writer never touches such a
//! body, and writes (or checks) only its `.headers`, signed by the simulator's signer with
//! the development secret, which is what the kit verifies with. The one saved body is the
//! "Delivery by restaurant" example of JET Connect's Receive Order reference (crate docs),
//! as transcribed by a public client of it, with one change: its `posLocationId` `22617`
//! is `cdp-ldn-002`, a store of the sample chain.
//!
//! Orders are at the first store of `fixtures/chain/chain.json` mapped for this channel,
//! priced from `fixtures/chain/menu.json` in that store's currency. Signatures are dated
//! (`t=`) at the kit's time; `t` is not covered by the signature.

use std::path::PathBuf;

use chrono::{DateTime, TimeDelta, Utc};
use crossdock_channel::sim::{SampleFulfillment, SampleItem, SampleOrder};
use serde::Serialize;
use serde_json::Value;

use crate::simulator::{self, OrderIds, OrderStyle};
use crate::wire::{self, Amount};
use crate::{CHANNEL_ID, DEV_WEBHOOK_SECRET, EVENT_DRIVER_STATUS, EVENT_ORDER_CANCELLED};

/// The instant the kit receives fixtures at: `crossdock_kit::FIXTURE_TIME` (the conformance
/// test checks they agree).
pub(crate) const FIXTURE_TIME: &str = "2026-11-20T12:00:00Z";

/// Cases whose `.body` was saved from the platform: only their `.headers` are written.
const SAVED: &[&str] = &["10-doc-example-delivery-by-restaurant"];

/// The generated cases, in the order the kit posts them (by name).
const CASES: &[&str] = &[
    "01-delivery-by-partner",
    "02-collection-modifiers-note",
    "03-own-delivery-fees-discount-tip-cash",
    "04-scheduled-collection",
    "05-unicode-emoji",
    "06-order-cancelled",
    "07-driver-on-its-way",
    "08-refused-fractional-price",
    "09-refused-unknown-type",
];

/// The public URL of the hub the kit posts fixtures to.
const HUB: &str = "https://hub.crossdock.example";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read_json(path: &str) -> Value {
    let path = repo().join(path);
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The store the fixtures' orders are for: its id on this channel, currency, city,
/// country and location.
struct Store {
    reference: String,
    currency: String,
    city: String,
    country: String,
    lat: f64,
    lng: f64,
}

fn store() -> Store {
    let chain = read_json("fixtures/chain/chain.json");
    let stores = chain["stores"].as_array().cloned().unwrap_or_default();
    let store = stores
        .iter()
        .find(|store| store["channels"][CHANNEL_ID].is_string())
        .unwrap_or_else(|| {
            panic!(
                "no store of fixtures/chain/chain.json is mapped for channel {CHANNEL_ID}: add \
                 \"{CHANNEL_ID}\": \"<the platform's store id>\" to the `channels` of the stores \
                 that sell on it (docs/adding-a-channel.md)"
            )
        });
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    Store {
        reference: text(&store["channels"][CHANNEL_ID]),
        currency: text(&store["currency"]),
        city: text(&store["city"]),
        country: text(&store["country"]),
        lat: store["location"]["lat"].as_f64().unwrap_or_default(),
        lng: store["location"]["lng"].as_f64().unwrap_or_default(),
    }
}

/// Prices of the chain's menu in one currency.
struct Menu {
    menu: Value,
    currency: String,
}

impl Menu {
    fn price(&self, plu: &str) -> i64 {
        fn find<'a>(value: &'a Value, plu: &str) -> Option<&'a Value> {
            match value {
                Value::Object(map) if map.get("plu").and_then(Value::as_str) == Some(plu) => {
                    Some(value)
                }
                Value::Object(map) => map.values().find_map(|v| find(v, plu)),
                Value::Array(items) => items.iter().find_map(|v| find(v, plu)),
                _ => None,
            }
        }
        find(&self.menu, plu)
            .and_then(|item| item["prices"][&self.currency].as_i64())
            .unwrap_or_else(|| panic!("the chain menu has no {} price for {plu}", self.currency))
    }

    fn item(&self, plu: &str, name: &str, quantity: i64, modifiers: Vec<SampleItem>) -> SampleItem {
        SampleItem {
            plu: plu.to_owned(),
            name: name.to_owned(),
            quantity,
            unit_price_minor: self.price(plu),
            notes: None,
            modifiers,
        }
    }
}

fn fixture_time() -> DateTime<Utc> {
    FIXTURE_TIME.parse().expect("FIXTURE_TIME is RFC 3339")
}

fn ids(n: u32) -> OrderIds {
    OrderIds {
        order_id: format!("0f1c7a00-5e1d-4c2b-9a3e-{n:012}"),
        reference: format!("2272{n:04}"),
    }
}

/// Each case's body, as the platform would send it (pretty-printed: the signature covers
/// whatever bytes are sent).
fn bodies() -> Vec<(&'static str, Vec<u8>)> {
    let store = store();
    let menu = Menu {
        menu: read_json("fixtures/chain/menu.json"),
        currency: store.currency.clone(),
    };
    let base = SampleOrder {
        store_ref: Some(store.reference.clone()),
        currency: store.currency.clone(),
        fulfillment: SampleFulfillment::Pickup,
        customer_name: "Ada Lovelace".to_owned(),
        customer_phone: Some("+44 20 7946 0187".to_owned()),
        items: Vec::new(),
        notes: None,
        delivery_fee_minor: 0,
        tip_minor: 0,
        discount_minor: 0,
        scheduled_for: None,
    };
    let delivery = SampleFulfillment::Delivery {
        lat: store.lat,
        lng: store.lng,
        address_lines: vec!["12 Example Street".to_owned(), "Apartment 4B".to_owned()],
        city: store.city.clone(),
        postcode: "EC1A 1BB".to_owned(),
        country: store.country.clone(),
    };
    let time = fixture_time();
    let placed = |minutes_before: i64| time - TimeDelta::minutes(minutes_before);

    let plain_delivery = SampleOrder {
        fulfillment: delivery.clone(),
        items: vec![
            menu.item("PZ-PEPP-L", "Pepperoni (Large)", 1, vec![]),
            menu.item("DR-COLA-500", "Cola (500 ml)", 2, vec![]),
        ],
        delivery_fee_minor: 299,
        ..base.clone()
    };

    let mut pizza = menu.item(
        "PZ-MARG-L",
        "Margherita (Large)",
        2,
        vec![
            menu.item("MOD-CRUST-THIN", "Thin crust", 1, vec![]),
            menu.item(
                "MOD-HALF-HALF",
                "Half & half",
                1,
                vec![
                    menu.item("MOD-HALF-PEPP", "Pepperoni (half)", 1, vec![]),
                    menu.item("MOD-HALF-MUSH", "Mushrooms (half)", 1, vec![]),
                ],
            ),
            menu.item("MOD-TOP-XCHS", "Extra mozzarella", 1, vec![]),
        ],
    );
    pizza.notes = Some("well done, please".to_owned());
    let pickup = SampleOrder {
        items: vec![
            pizza,
            menu.item(
                "SD-GARL-8",
                "Garlic Knots (8 pcs)",
                1,
                vec![menu.item("MOD-DIP-GARL", "Garlic & herb dip", 2, vec![])],
            ),
        ],
        notes: Some("Ring the bell at the side door".to_owned()),
        ..base.clone()
    };

    let discounted = SampleOrder {
        fulfillment: delivery,
        items: vec![
            menu.item("PZ-BBQC-L", "BBQ Chicken (Large)", 1, vec![]),
            menu.item("SD-WING-10", "Chicken Wings (10 pcs)", 1, vec![]),
        ],
        delivery_fee_minor: 399,
        tip_minor: 250,
        discount_minor: 500,
        ..base.clone()
    };

    let scheduled = SampleOrder {
        items: vec![menu.item("PZ-VEGG-L", "Garden Veggie (Large)", 1, vec![])],
        scheduled_for: Some(time + TimeDelta::hours(6) + TimeDelta::minutes(30)),
        ..base.clone()
    };

    let mut crispy = menu.item("PZ-HAWA-L", "Hawaiian (Large)", 1, vec![]);
    crispy.notes = Some("Extra crispy 🔥, sans basilic — merci !".to_owned());
    let unicode = SampleOrder {
        customer_name: "Zoë Ørsted-Nakamura 🍕".to_owned(),
        customer_phone: Some("+44 20 7946 0958".to_owned()),
        items: vec![
            crispy,
            menu.item("DS-BROW", "Chocolate Brownie 🍫", 1, vec![]),
        ],
        notes: Some("门铃坏了，请敲门 🚪".to_owned()),
        ..base
    };

    fn pretty<T: Serialize>(value: &T) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(value).expect("JSON");
        bytes.push(b'\n');
        bytes
    }
    let created = |sample: &SampleOrder, n: u32, minutes_before: i64, style: OrderStyle| {
        simulator::order(sample, &ids(n), placed(minutes_before), style)
    };
    let own_delivery = OrderStyle {
        merchant_delivery: true,
        cash: true,
        service_charge_minor: 50,
    };
    let mut fractional = created(&plain_delivery, 8, 1, OrderStyle::default());
    fractional.items[0].price = Amount(serde_json::Number::from_f64(1099.5).expect("finite"));
    let mut unknown_type =
        serde_json::to_value(created(&plain_delivery, 9, 1, OrderStyle::default())).expect("JSON");
    unknown_type["type"] = Value::from("delivery-by-drone");
    vec![
        (
            CASES[0],
            pretty(&created(&plain_delivery, 1, 4, OrderStyle::default())),
        ),
        (
            CASES[1],
            pretty(&created(&pickup, 2, 3, OrderStyle::default())),
        ),
        (CASES[2], pretty(&created(&discounted, 3, 3, own_delivery))),
        (
            CASES[3],
            pretty(&created(&scheduled, 4, 2, OrderStyle::default())),
        ),
        (
            CASES[4],
            pretty(&created(&unicode, 5, 1, OrderStyle::default())),
        ),
        (
            CASES[5],
            pretty(&simulator::order_cancelled(
                &ids(4).order_id,
                Some("custCancelledChangedMind"),
                Some("customer"),
                placed(0),
            )),
        ),
        (
            CASES[6],
            pretty(&simulator::driver_status(
                &ids(1).order_id,
                wire::DRIVER_ON_ITS_WAY,
                placed(0),
            )),
        ),
        (CASES[7], pretty(&fractional)),
        (CASES[8], pretty(&unknown_type)),
    ]
}

/// The URL a case is posted to, when it is not Receive Order's.
fn url(name: &str) -> Option<String> {
    let event = match name {
        "06-order-cancelled" => EVENT_ORDER_CANCELLED,
        "07-driver-on-its-way" => EVENT_DRIVER_STATUS,
        _ => return None,
    };
    Some(format!("{HUB}/webhooks/{CHANNEL_ID}/{event}\n"))
}

/// The `.headers` file of a body: what the platform sends with it, signed.
fn headers_file(body: &[u8]) -> String {
    let mut text = String::from(
        "# Written by `UPDATE_FIXTURES=1 cargo test -p crossdock-adapter-just-eat --lib fixtures`:\n\
         # signed by the simulator with the development webhook secret.\n\
         Content-Type: application/json\n",
    );
    let t_ms = fixture_time().timestamp_millis();
    for (name, value) in simulator::webhook_headers(DEV_WEBHOOK_SECRET, body, t_ms) {
        text.push_str(&format!("{name}: {value}\n"));
    }
    text
}

#[test]
fn fixtures_are_what_the_simulator_writes() {
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    let dir = repo().join("fixtures").join(CHANNEL_ID);
    if update {
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    }
    let mut files = Vec::new();
    for (name, body) in bodies() {
        files.push((format!("{name}.headers"), headers_file(&body).into_bytes()));
        files.push((format!("{name}.body"), body));
        if let Some(url) = url(name) {
            files.push((format!("{name}.url"), url.into_bytes()));
        }
    }
    for name in SAVED {
        let path = dir.join(format!("{name}.body"));
        let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        files.push((format!("{name}.headers"), headers_file(&body).into_bytes()));
    }
    let mut stale = Vec::new();
    for (file, content) in files {
        let path = dir.join(file);
        if update {
            std::fs::write(&path, &content)
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        } else if std::fs::read(&path).ok().as_deref() != Some(content.as_slice()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "these fixture files are missing or differ from what the simulator writes \
         (UPDATE_FIXTURES=1 cargo test -p crossdock-adapter-just-eat --lib fixtures \
         rewrites them; then UPDATE_EXPECT=1 cargo test -p crossdock-adapter-just-eat \
         --test conformance):\n{}",
        stale.join("\n")
    );
}
