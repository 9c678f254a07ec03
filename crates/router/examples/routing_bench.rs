//! The routing benchmark: how long the router takes to place one address-based order among
//! 1,000, 5,000 and 30,000 stores with delivery polygons, as a chain like RBI's (32,000
//! restaurants) would have them. Stores are spread over a continent-sized area in dense
//! metro clusters, each with an irregular 12-sided delivery zone of 2–5 km; orders are
//! dropped at random points inside random stores' zones, so every lookup has candidates to
//! filter and rank by distance. Every filter has work to do: one store in ten is of another
//! brand, and of the rest about 5% are paused, 10% at capacity and 10% out of an item;
//! every order has three lines with modifiers, all checked against the chain's menu and
//! the store's unavailable items; hours are in the store's time zone.
//!
//! `cargo run --release -p crossdock-router --example routing_bench [-- SIZES ORDERS]`
//! (defaults: `1000,5000,30000` and 20000 orders per size). Prints p50, p99 and max per
//! order, the mean number of zones hit (the candidates the filters and the distance ranking
//! see), the share routed, and the build time of the registry. The time is a fixed Friday
//! evening, so the stores' hours (closed 04:00–06:00) decide alike on every run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use crossdock_model::{
    Address, ChannelId, CoordSystem, Coordinates, Currency, Customer, DeliveredBy, Fulfillment,
    FulfillmentKind, LatLng, Line, Modifier, Money, NewOrder, Payment, StoreId, StoreProfile,
    Timing, Totals,
};
use crossdock_router::{Registry, StoreLive, route};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Metro areas (lat, lng) the stores cluster around, across North America.
const METROS: [(f64, f64); 12] = [
    (40.73, -73.99),
    (34.05, -118.24),
    (41.88, -87.63),
    (29.76, -95.37),
    (33.45, -112.07),
    (39.95, -75.17),
    (32.78, -96.80),
    (37.77, -122.42),
    (47.61, -122.33),
    (25.76, -80.19),
    (43.65, -79.38),
    (45.50, -73.57),
];

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn store(index: usize, rng: &mut StdRng) -> StoreProfile {
    let (lat0, lng0) = METROS[index % METROS.len()];
    // Stores of a metro within ~60 km of its centre.
    let lat = lat0 + rng.random_range(-0.55..0.55);
    let lng = lng0 + rng.random_range(-0.7..0.7);
    let radius_km = rng.random_range(2.0..5.0);
    let mut ring: Vec<[f64; 2]> = (0..12)
        .map(|k| {
            let angle = f64::from(k) * std::f64::consts::TAU / 12.0;
            let r = radius_km * rng.random_range(0.75..1.0);
            let dlat = r / 111.0 * angle.sin();
            let dlng = r / (111.0 * lat.to_radians().cos()) * angle.cos();
            [lng + dlng, lat + dlat]
        })
        .collect();
    ring.push(ring[0]);
    let id = format!("S-{index:05}");
    StoreProfile {
        id: StoreId::parse(&id).expect("store id"),
        name: id.clone(),
        brand: if index % 10 == 9 { "burgers" } else { "pizza" }.into(),
        city: "Metro".into(),
        country: "US".into(),
        timezone: "America/New_York".into(),
        currency: Currency::parse("USD").expect("currency"),
        address: "1 Main St".into(),
        location: LatLng { lat, lng },
        hours: DAYS
            .iter()
            .map(|day| {
                (
                    day.to_string(),
                    vec![
                        ["00:00".into(), "04:00".into()],
                        ["06:00".into(), "24:00".into()],
                    ],
                )
            })
            .collect(),
        closed_on: vec![],
        capacity: 25,
        prep_minutes: 15,
        delivery_zone: ring,
        channels: BTreeMap::from([("own_app".to_owned(), id)]),
    }
}

/// The menu the orders pick from, and the modifiers each line carries.
const ITEMS: [&str; 8] = [
    "PZ-MARG-L",
    "PZ-PEPP-L",
    "PZ-VEG-M",
    "PZ-BBQ-L",
    "SD-WINGS",
    "SD-GARLIC",
    "DR-COLA",
    "DS-BROWNIE",
];
const MODIFIERS: [&str; 4] = [
    "MOD-CRUST-THIN",
    "MOD-TOP-XCHS",
    "MOD-TOP-MUSH",
    "MOD-DIP-RANCH",
];

fn line(plu: &str, rng: &mut StdRng) -> Line {
    let usd = Currency::parse("USD").expect("currency");
    Line {
        channel_item_id: plu.into(),
        plu: Some(plu.into()),
        name: plu.into(),
        quantity: 1,
        unit_price: Money::new(1299, usd),
        total: Money::new(1299, usd),
        notes: None,
        modifiers: (0..2)
            .map(|_| Modifier {
                group: None,
                name: "option".into(),
                channel_item_id: None,
                plu: Some(MODIFIERS[rng.random_range(0..MODIFIERS.len())].into()),
                quantity: 1,
                unit_price: Money::zero(usd),
                removed: false,
                modifiers: vec![],
            })
            .collect(),
    }
}

fn order_at(lat: f64, lng: f64, rng: &mut StdRng) -> NewOrder {
    let usd = Currency::parse("USD").expect("currency");
    NewOrder {
        channel: ChannelId::parse("own_app").expect("channel"),
        external_order_id: "bench".into(),
        display_code: None,
        channel_store_ref: None,
        brand: Some("pizza".into()),
        platform_brand: None,
        placed_at: Utc::now(),
        fulfillment: Fulfillment {
            kind: FulfillmentKind::Delivery,
            delivered_by: Some(DeliveredBy::Store),
            address: Some(Address {
                coordinates: Some(Coordinates {
                    lat,
                    lng,
                    system: CoordSystem::Wgs84,
                }),
                ..Address::default()
            }),
            timing: Timing::Asap,
            promised_at: None,
            accept_by: None,
        },
        customer: Customer::default(),
        notes: None,
        lines: (0..3)
            .map(|_| line(ITEMS[rng.random_range(0..ITEMS.len())], rng))
            .collect(),
        totals: Totals::zero(usd),
        payment: Payment::Prepaid,
        channel_data: serde_json::Value::Null,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let sizes: Vec<usize> = args
        .next()
        .unwrap_or_else(|| "1000,5000,30000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("store counts, comma-separated"))
        .collect();
    let orders: usize = args
        .next()
        .map(|s| s.parse().expect("orders per size"))
        .unwrap_or(20_000);
    println!("stores   build      p50       p99       max   zones hit  routed");
    for size in sizes {
        let mut rng = StdRng::seed_from_u64(size as u64);
        let stores: Vec<StoreProfile> = (0..size).map(|i| store(i, &mut rng)).collect();
        // Drop-off points inside random stores' zones (near their centres).
        let points: Vec<(f64, f64)> = (0..orders)
            .map(|_| {
                let s = &stores[rng.random_range(0..stores.len())];
                (
                    s.location.lat + rng.random_range(-0.01..0.01),
                    s.location.lng + rng.random_range(-0.01..0.01),
                )
            })
            .collect();
        let ids: Vec<StoreId> = stores.iter().map(|s| s.id.clone()).collect();
        let started = Instant::now();
        let registry = Registry::build(stores)
            .expect("registry")
            .with_menu(ITEMS.iter().chain(&MODIFIERS).map(|plu| plu.to_string()));
        let build = started.elapsed();
        // A fixed instant (a Friday, 18:00 in New York), so the stores' hours decide alike
        // on every run.
        let now: DateTime<Utc> = "2026-11-20T23:00:00Z".parse().expect("instant");
        for id in &ids {
            let live = match rng.random_range(0..100) {
                0..5 => StoreLive {
                    paused_until: Some(now + chrono::Duration::minutes(30)),
                    ..StoreLive::default()
                },
                5..15 => StoreLive {
                    active: 25,
                    ..StoreLive::default()
                },
                15..25 => StoreLive {
                    unavailable: [ITEMS[rng.random_range(0..ITEMS.len())].to_owned()].into(),
                    active: rng.random_range(0..25),
                    ..StoreLive::default()
                },
                _ => StoreLive {
                    active: rng.random_range(0..25),
                    ..StoreLive::default()
                },
            };
            registry.set_live(id, live);
        }
        let orders_placed: Vec<NewOrder> = points
            .iter()
            .map(|&(lat, lng)| order_at(lat, lng, &mut rng))
            .collect();
        let mut times = Vec::with_capacity(orders);
        let (mut hits, mut routed) = (0usize, 0usize);
        for order in &orders_placed {
            let started = Instant::now();
            let decision = route(&registry, order, now, &[]);
            times.push(started.elapsed());
            hits += decision.candidates.len();
            routed += usize::from(decision.store.is_some());
        }
        times.sort();
        println!(
            "{size:>6} {:>8.1?} {:>8.1?} {:>8.1?} {:>8.1?} {:>10.1} {:>6.1}%",
            build,
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            times[times.len() - 1],
            hits as f64 / orders as f64,
            100.0 * routed as f64 / orders as f64,
        );
    }
}
