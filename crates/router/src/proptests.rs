//! Property tests of routing, over generated chains and orders.
//!
//! A chain is 1–40 stores crowded into a small area so that their delivery zones (squares
//! on an exact binary grid, whose edges orders can land on, and irregular star-shaped
//! polygons, wound either way) overlap a lot. Each store has one of two brands, a time
//! zone, weekly hours with intervals that run past midnight and days with none, holidays
//! around the test's time, a capacity. The chain has no menu, a menu of every item code,
//! or a menu of some of them (none at all: no menu). For each order each store has its own
//! live state: a pause that has passed, runs on or ends exactly now, the orders its kitchen
//! works, the items it is out of. An order either names a store through a channel's store
//! id (sometimes one no store has) or is routed by its drop-off point; it has lines and
//! nested modifiers (some taken off) from a small pool of item codes, is ASAP or scheduled
//! up to two days either side, and some stores have declined it already. Times are a fixed
//! instant plus a generated offset, chosen so that the windows cross daylight-saving
//! changes.
//!
//! The test decides on its own, from the generated data, whether the menu refuses the
//! order (an item code it needs made is not on the menu: refused naming those codes, no
//! store looked at) and otherwise whether a store can take the order — brand, pause,
//! capacity, items and refusals directly, opening hours by its own reading of the weekly
//! hours in the store's local time (cross-checked against [`OpeningHours::is_open`]), the
//! zone through [`Registry::delivers_to`] — and holds the decision to it:
//!
//! - the order never goes to a store that cannot take it, nor one whose zone does not
//!   contain the drop-off point (an address-based order, or a named store's own delivery
//!   with WGS 84 coordinates);
//! - an address-based order goes to the nearest store that can take it whenever one whose
//!   zone contains the point can, and [`Registry::covering`] finds exactly the stores
//!   whose zones contain the point, nearest first;
//! - the decision lists every store it looked at, the chosen one as `chosen` and every
//!   other with a verdict that is true of it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use crossdock_model::{
    Address, ChannelId, CoordSystem, Coordinates, Currency, Customer, DeliveredBy, Fulfillment,
    FulfillmentKind, LatLng, Line, Modifier, Money, NewOrder, Payment, StoreId, StoreProfile,
    Timing, Totals, Unroutable,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use proptest::test_runner::TestCaseError;

use super::*;

/// Generated cases; each case routes up to four orders against one chain.
const CASES: u32 = 2000;

/// The instants the test's clock starts from; `now` is one of them plus up to 14 days.
/// The windows hold the 2026 daylight-saving changes of New York (8 March, 1 November),
/// London (29 March, 25 October) and Sydney (5 April).
const BASES: [&str; 3] = [
    "2026-03-06T00:00:00Z",
    "2026-03-28T00:00:00Z",
    "2026-10-22T00:00:00Z",
];

const ZONES: [&str; 7] = [
    "America/New_York",
    "Europe/London",
    "Asia/Shanghai",
    "Australia/Sydney",
    "UTC",
    "Asia/Kolkata",
    "Asia/Kathmandu",
];

const BRANDS: [&str; 2] = ["pizza", "burgers"];

/// The item codes orders use and stores run out of.
const PLUS: [&str; 8] = [
    "PZ-MARG",
    "PZ-PEPP",
    "DR-COLA",
    "SD-FRIES",
    "MOD-BASIL",
    "MOD-CHEESE",
    "MOD-OLIVE",
    "MOD-EXTRA",
];

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The middle of the area the stores crowd into; both are exact in binary, and so is
/// every point of the 1/256° grid around it.
const CENTER_LAT: f64 = 40.75;
const CENTER_LNG: f64 = -74.0;
const GRID: f64 = 1.0 / 256.0;

#[derive(Debug, Clone)]
enum GenZone {
    /// An axis-aligned square on the grid: centre (`lat`, `lng`) in grid steps from the
    /// area's centre, half side in grid steps.
    Square { lat: i32, lng: i32, half: i32 },
    /// A star-shaped polygon around (`lat`, `lng`): one vertex per radius (degrees),
    /// evenly spaced from angle `phase`.
    Star {
        lat: f64,
        lng: f64,
        radii: Vec<f64>,
        phase: f64,
    },
}

#[derive(Debug, Clone)]
struct GenStore {
    zone: GenZone,
    /// The ring runs clockwise instead of counter-clockwise.
    reversed: bool,
    /// Where the store stands, from its zone's centre (degrees lat, lng).
    offset: (f64, f64),
    brand: &'static str,
    timezone: &'static str,
    /// Per day (Monday first), `(open, close)` minutes after local midnight; a close at or
    /// before the open is the next day's.
    hours: Vec<Vec<(u32, u32)>>,
    /// Holidays, days after the base instant's date.
    closed_on: Vec<i64>,
    capacity: u32,
    /// The store has an id on the `mkt` channel (every store has one on `own_app`).
    on_mkt: bool,
}

#[derive(Debug, Clone)]
struct GenChain {
    base: usize,
    stores: Vec<GenStore>,
    /// The PLUs on the chain's menu; `None` (or none at all): no menu is loaded.
    menu: Option<Vec<&'static str>>,
}

#[derive(Debug, Clone)]
struct GenLive {
    /// Paused until this many seconds after now.
    paused: Option<i64>,
    unavailable: Vec<&'static str>,
    active: u32,
}

#[derive(Debug, Clone)]
struct GenModifier {
    plu: Option<&'static str>,
    removed: bool,
    modifiers: Vec<GenModifier>,
}

#[derive(Debug, Clone)]
struct GenLine {
    plu: Option<&'static str>,
    modifiers: Vec<GenModifier>,
}

#[derive(Debug, Clone)]
struct GenOrder {
    /// The channel and its store id, for an order that names its store.
    named: Option<(&'static str, String)>,
    kind: FulfillmentKind,
    delivered_by: Option<DeliveredBy>,
    /// The drop-off point (lat, lng).
    point: Option<(f64, f64)>,
    system: CoordSystem,
    brand: Option<&'static str>,
    /// Scheduled this many minutes after now; `None` is ASAP.
    scheduled: Option<i64>,
    lines: Vec<GenLine>,
}

#[derive(Debug, Clone)]
struct Scenario {
    /// Minutes and seconds after the base instant.
    now: (i64, i64),
    live: Vec<GenLive>,
    declined: Vec<bool>,
    order: GenOrder,
}

// ----- generators -----

fn zone_strategy() -> impl Strategy<Value = GenZone> {
    prop_oneof![
        (-8..=8i32, -8..=8i32, 1..=8i32).prop_map(|(lat, lng, half)| GenZone::Square {
            lat,
            lng,
            half
        }),
        (
            40.72..40.78f64,
            -74.03..-73.97f64,
            vec(0.005..0.04f64, 5..=12),
            0.0..std::f64::consts::TAU,
        )
            .prop_map(|(lat, lng, radii, phase)| GenZone::Star {
                lat,
                lng,
                radii,
                phase,
            }),
    ]
}

/// One day's opening intervals, in quarter hours.
fn day_strategy() -> impl Strategy<Value = Vec<(u32, u32)>> {
    prop_oneof![
        1 => Just(vec![]),
        1 => Just(vec![(0, 24 * 60)]),
        4 => vec(
            (0..96u32, 0..=96u32).prop_map(|(open, close)| (open * 15, close * 15)),
            1..=2,
        ),
    ]
}

fn hours_strategy() -> impl Strategy<Value = Vec<Vec<(u32, u32)>>> {
    prop_oneof![
        1 => Just(vec![vec![(0, 24 * 60)]; 7]),
        2 => vec(day_strategy(), 7),
    ]
}

fn store_strategy() -> impl Strategy<Value = GenStore> {
    (
        zone_strategy(),
        any::<bool>(),
        prop_oneof![
            3 => Just((0.0, 0.0)),
            1 => (-0.005..0.005f64, -0.005..0.005f64),
        ],
        select(&BRANDS[..]),
        select(&ZONES[..]),
        hours_strategy(),
        prop_oneof![3 => Just(vec![]), 1 => vec(-3..=17i64, 1..=3)],
        1..=5u32,
        proptest::bool::weighted(0.8),
    )
        .prop_map(
            |(zone, reversed, offset, brand, timezone, hours, closed_on, capacity, on_mkt)| {
                GenStore {
                    zone,
                    reversed,
                    offset,
                    brand,
                    timezone,
                    hours,
                    closed_on,
                    capacity,
                    on_mkt,
                }
            },
        )
}

fn chain_strategy() -> impl Strategy<Value = GenChain> {
    (
        0..BASES.len(),
        vec(store_strategy(), 1..=40),
        prop_oneof![
            3 => Just(None),
            3 => Just(Some(PLUS.to_vec())),
            1 => subsequence(&PLUS[..], 0..=PLUS.len()).prop_map(Some),
        ],
    )
        .prop_map(|(base, stores, menu)| GenChain { base, stores, menu })
}

fn live_strategy() -> impl Strategy<Value = GenLive> {
    (
        prop_oneof![
            6 => Just(None),
            2 => (-180_000..0i64).prop_map(Some),
            1 => Just(Some(0)),
            1 => (-2..=2i64).prop_map(Some),
            1 => (-90..=90i64).prop_map(Some),
            2 => (1..=180_000i64).prop_map(Some),
        ],
        prop_oneof![
            3 => Just(vec![]),
            1 => subsequence(&PLUS[..], 1..=3),
        ],
        prop_oneof![3 => Just(0u32), 1 => 0..=6u32],
    )
        .prop_map(|(paused, unavailable, active)| GenLive {
            paused,
            unavailable,
            active,
        })
}

fn plu_strategy() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![9 => select(&PLUS[..]).prop_map(Some), 1 => Just(None)]
}

fn modifier_strategy(depth: u32) -> BoxedStrategy<GenModifier> {
    let children = if depth == 0 {
        Just(vec![]).boxed()
    } else {
        prop_oneof![
            2 => Just(vec![]),
            1 => vec(modifier_strategy(depth - 1), 1..=2),
        ]
        .boxed()
    };
    (plu_strategy(), proptest::bool::weighted(0.25), children)
        .prop_map(|(plu, removed, modifiers)| GenModifier {
            plu,
            removed,
            modifiers,
        })
        .boxed()
}

fn line_strategy() -> impl Strategy<Value = GenLine> {
    (plu_strategy(), vec(modifier_strategy(2), 0..=3))
        .prop_map(|(plu, modifiers)| GenLine { plu, modifiers })
}

/// Drop-off points: anywhere in and around the area, on the grid (so on squares' edges
/// and corners), or exactly at a store or a zone's vertex.
fn point_strategy(landmarks: Vec<(f64, f64)>) -> impl Strategy<Value = (f64, f64)> {
    prop_oneof![
        4 => (40.71..40.79f64, -74.04..-73.96f64),
        2 => (-14..=14i32, -14..=14i32).prop_map(|(lat, lng)| (
            CENTER_LAT + f64::from(lat) * GRID,
            CENTER_LNG + f64::from(lng) * GRID,
        )),
        1 => select(landmarks),
    ]
}

/// What an order that names its store names: mostly a store of the chain by the
/// channel's id for it (which may be missing on `mkt`), sometimes another channel's id,
/// a store beyond the chain, or nothing like a store.
fn named_strategy(stores: usize) -> impl Strategy<Value = (&'static str, String)> {
    let channel = || select(&["own_app", "mkt"][..]);
    prop_oneof![
        4 => (0..stores).prop_map(|i| ("own_app", format!("S{i}"))),
        4 => (0..stores).prop_map(|i| ("mkt", format!("mkt-S{i}"))),
        1 => (channel(), 0..45usize).prop_map(|(channel, i)| (channel, format!("S{i}"))),
        1 => (channel(), 0..45usize).prop_map(|(channel, i)| (channel, format!("mkt-S{i}"))),
        1 => channel().prop_map(|channel| (channel, "nope".to_owned())),
    ]
}

fn order_strategy(stores: usize, landmarks: Vec<(f64, f64)>) -> impl Strategy<Value = GenOrder> {
    (
        prop_oneof![
            1 => Just(None),
            1 => named_strategy(stores).prop_map(Some),
        ],
        prop_oneof![
            10 => Just(FulfillmentKind::Delivery),
            1 => Just(FulfillmentKind::Pickup),
            1 => Just(FulfillmentKind::DineIn),
        ],
        prop_oneof![
            Just(Some(DeliveredBy::Store)),
            Just(Some(DeliveredBy::Platform)),
            Just(None),
        ],
        prop_oneof![15 => point_strategy(landmarks).prop_map(Some), 1 => Just(None)],
        prop_oneof![4 => Just(CoordSystem::Wgs84), 1 => Just(CoordSystem::Gcj02)],
        prop_oneof![
            3 => Just(None),
            3 => Just(Some("pizza")),
            3 => Just(Some("burgers")),
            1 => Just(Some("tacos")),
        ],
        prop_oneof![1 => Just(None), 1 => (-2880..=2880i64).prop_map(Some)],
        vec(line_strategy(), 1..=4),
    )
        .prop_map(
            |(named, kind, delivered_by, point, system, brand, scheduled, lines)| GenOrder {
                named,
                kind,
                delivered_by,
                point,
                system,
                brand,
                scheduled,
                lines,
            },
        )
}

fn scenario_strategy(stores: usize, landmarks: Vec<(f64, f64)>) -> impl Strategy<Value = Scenario> {
    (
        (
            0..14 * 24 * 60i64,
            prop_oneof![3 => Just(0i64), 1 => 0..60i64],
        ),
        vec(live_strategy(), stores),
        vec(proptest::bool::weighted(0.1), stores),
        order_strategy(stores, landmarks),
    )
        .prop_map(|(now, live, declined, order)| Scenario {
            now,
            live,
            declined,
            order,
        })
}

fn case_strategy() -> impl Strategy<Value = (GenChain, Vec<Scenario>)> {
    chain_strategy().prop_flat_map(|chain| {
        let stores = chain.stores.len();
        let mut landmarks = Vec::new();
        for store in &chain.stores {
            let (lat, lng) = location(store);
            landmarks.push((lat, lng));
            landmarks.extend(ring(store).iter().map(|[lng, lat]| (*lat, *lng)));
        }
        (
            Just(chain),
            vec(scenario_strategy(stores, landmarks), 1..=4),
        )
    })
}

// ----- from generated data to the router's types -----

fn zone_center(zone: &GenZone) -> (f64, f64) {
    match zone {
        GenZone::Square { lat, lng, .. } => (
            CENTER_LAT + f64::from(*lat) * GRID,
            CENTER_LNG + f64::from(*lng) * GRID,
        ),
        GenZone::Star { lat, lng, .. } => (*lat, *lng),
    }
}

fn location(store: &GenStore) -> (f64, f64) {
    let (lat, lng) = zone_center(&store.zone);
    (lat + store.offset.0, lng + store.offset.1)
}

/// The zone as a closed ring of `[lng, lat]`.
fn ring(store: &GenStore) -> Vec<[f64; 2]> {
    let mut ring: Vec<[f64; 2]> = match &store.zone {
        GenZone::Square { half, .. } => {
            let (lat, lng) = zone_center(&store.zone);
            let half = f64::from(*half) * GRID;
            vec![
                [lng - half, lat - half],
                [lng + half, lat - half],
                [lng + half, lat + half],
                [lng - half, lat + half],
            ]
        }
        GenZone::Star {
            lat,
            lng,
            radii,
            phase,
        } => {
            let step = std::f64::consts::TAU / radii.len() as f64;
            radii
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let angle = phase + step * i as f64;
                    [lng + r * angle.cos(), lat + r * angle.sin()]
                })
                .collect()
        }
    };
    if store.reversed {
        ring.reverse();
    }
    ring.push(ring[0]);
    ring
}

fn clock(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn base(chain: &GenChain) -> DateTime<Utc> {
    BASES[chain.base].parse().expect("an RFC 3339 instant")
}

fn holidays(chain: &GenChain, store: &GenStore) -> Vec<NaiveDate> {
    let day = base(chain).date_naive();
    store
        .closed_on
        .iter()
        .map(|offset| day + Duration::days(*offset))
        .collect()
}

fn store_id(i: usize) -> StoreId {
    StoreId::parse(format!("S{i}")).expect("id")
}

fn profile(chain: &GenChain, i: usize) -> StoreProfile {
    let store = &chain.stores[i];
    let (lat, lng) = location(store);
    let mut channels = BTreeMap::from([("own_app".to_owned(), format!("S{i}"))]);
    if store.on_mkt {
        channels.insert("mkt".to_owned(), format!("mkt-S{i}"));
    }
    StoreProfile {
        id: store_id(i),
        name: format!("Store {i}"),
        brand: store.brand.into(),
        city: "Testville".into(),
        country: "US".into(),
        timezone: store.timezone.into(),
        currency: Currency::parse("USD").expect("currency"),
        address: format!("{i} Main St"),
        location: LatLng { lat, lng },
        hours: DAYS
            .iter()
            .zip(&store.hours)
            .filter(|(_, intervals)| !intervals.is_empty())
            .map(|(day, intervals)| {
                (
                    day.to_string(),
                    intervals
                        .iter()
                        .map(|(open, close)| [clock(*open), clock(*close)])
                        .collect(),
                )
            })
            .collect(),
        closed_on: holidays(chain, store),
        capacity: store.capacity,
        prep_minutes: 15,
        delivery_zone: ring(store),
        channels,
    }
}

fn modifier(generated: &GenModifier) -> Modifier {
    let usd = Currency::parse("USD").expect("currency");
    Modifier {
        group: None,
        name: generated.plu.unwrap_or("unmapped").into(),
        channel_item_id: None,
        plu: generated.plu.map(str::to_owned),
        quantity: 1,
        unit_price: Money::zero(usd),
        removed: generated.removed,
        modifiers: generated.modifiers.iter().map(modifier).collect(),
    }
}

fn new_order(generated: &GenOrder, now: DateTime<Utc>) -> NewOrder {
    let usd = Currency::parse("USD").expect("currency");
    let (channel, store_ref) = match &generated.named {
        Some((channel, store_ref)) => (*channel, Some(store_ref.clone())),
        None => ("own_app", None),
    };
    NewOrder {
        channel: ChannelId::parse(channel).expect("channel"),
        external_order_id: "x-1".into(),
        display_code: None,
        channel_store_ref: store_ref,
        brand: generated.brand.map(str::to_owned),
        platform_brand: None,
        placed_at: now,
        fulfillment: Fulfillment {
            kind: generated.kind,
            delivered_by: generated.delivered_by,
            address: generated.point.map(|(lat, lng)| Address {
                coordinates: Some(Coordinates {
                    lat,
                    lng,
                    system: generated.system,
                }),
                ..Address::default()
            }),
            timing: match generated.scheduled {
                Some(minutes) => Timing::Scheduled {
                    at: now + Duration::minutes(minutes),
                },
                None => Timing::Asap,
            },
            promised_at: None,
            accept_by: None,
        },
        customer: Customer::default(),
        notes: None,
        lines: generated
            .lines
            .iter()
            .map(|line| Line {
                channel_item_id: format!("ch-{}", line.plu.unwrap_or("unmapped")),
                plu: line.plu.map(str::to_owned),
                name: line.plu.unwrap_or("unmapped").into(),
                quantity: 1,
                unit_price: Money::zero(usd),
                total: Money::zero(usd),
                notes: None,
                modifiers: line.modifiers.iter().map(modifier).collect(),
            })
            .collect(),
        totals: Totals::zero(usd),
        payment: Payment::Prepaid,
        channel_data: serde_json::Value::Null,
    }
}

fn store_live(generated: &GenLive, now: DateTime<Utc>) -> StoreLive {
    StoreLive {
        paused_until: generated.paused.map(|s| now + Duration::seconds(s)),
        pause_reason: generated.paused.map(|_| "HQ".to_owned()),
        unavailable: generated
            .unavailable
            .iter()
            .map(|p| p.to_string())
            .collect(),
        active: generated.active,
    }
}

// ----- the test's own reading of the rules -----

/// Whether the store is open at `at`, read from the generated hours without the router:
/// an interval of day D runs from D at its open to D (or D + 1, when it closes at or
/// before it opens) at its close, in local wall-clock time, and holds on neither a holiday
/// nor the day after its start day if that is a holiday.
fn open_at(store: &GenStore, holidays: &[NaiveDate], at: DateTime<Utc>) -> bool {
    let zone: Tz = store.timezone.parse().expect("an IANA zone");
    let local: NaiveDateTime = at.with_timezone(&zone).naive_local();
    let date = local.date();
    if holidays.contains(&date) {
        return false;
    }
    let previous = date.pred_opt().expect("a day before");
    [previous, date].into_iter().any(|day| {
        let midnight = day.and_hms_opt(0, 0, 0).expect("midnight");
        !holidays.contains(&day)
            && store.hours[day.weekday().num_days_from_monday() as usize]
                .iter()
                .any(|&(open, close)| {
                    let close = if close <= open {
                        close + 24 * 60
                    } else {
                        close
                    };
                    let from = midnight + Duration::minutes(i64::from(open));
                    let to = midnight + Duration::minutes(i64::from(close));
                    from <= local && local < to
                })
    })
}

/// The item codes the order needs made: every line's, and every modifier's that the
/// customer did not take off (with what hangs under it: a modifier of an ingredient
/// taken off is not made either).
fn needed(order: &GenOrder) -> BTreeSet<&'static str> {
    fn walk(modifiers: &[GenModifier], out: &mut BTreeSet<&'static str>) {
        for modifier in modifiers {
            if !modifier.removed {
                out.extend(modifier.plu);
                walk(&modifier.modifiers, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    for line in &order.lines {
        out.extend(line.plu);
        walk(&line.modifiers, &mut out);
    }
    out
}

/// Everything that keeps one store from taking the order.
#[derive(Debug, Default)]
struct Faults {
    brand: bool,
    paused: bool,
    closed: bool,
    busy: bool,
    missing: BTreeSet<&'static str>,
    declined: bool,
}

impl Faults {
    fn ok(&self) -> bool {
        !(self.brand || self.paused || self.closed || self.busy || self.declined)
            && self.missing.is_empty()
    }

    /// Whether a verdict of the router's names one of these faults.
    fn explains(&self, verdict: &str) -> bool {
        if verdict.starts_with("declined") {
            self.declined
        } else if verdict.starts_with("does not serve brand") {
            self.brand
        } else if verdict.starts_with("paused until") {
            self.paused
        } else if verdict.starts_with("closed ") {
            self.closed
        } else if verdict.starts_with("too busy") {
            self.busy
        } else if let Some(list) = verdict.strip_prefix("item unavailable: ") {
            !self.missing.is_empty()
                && list == self.missing.iter().copied().collect::<Vec<_>>().join(", ")
        } else {
            false
        }
    }
}

struct World<'a> {
    chain: &'a GenChain,
    scenario: &'a Scenario,
    holidays: Vec<Vec<NaiveDate>>,
    now: DateTime<Utc>,
    due: DateTime<Utc>,
    needed: BTreeSet<&'static str>,
}

impl World<'_> {
    fn faults(&self, i: usize) -> Faults {
        let store = &self.chain.stores[i];
        let live = &self.scenario.live[i];
        Faults {
            brand: self.scenario.order.brand.is_some_and(|b| b != store.brand),
            paused: live.paused.is_some_and(|s| s > 0),
            closed: !open_at(store, &self.holidays[i], self.due),
            busy: live.active >= store.capacity,
            missing: self
                .needed
                .iter()
                .copied()
                .filter(|plu| live.unavailable.contains(plu))
                .collect(),
            declined: self.scenario.declined[i],
        }
    }

    /// The store the order names, by the test's own map of channel store ids.
    fn named_store(&self, channel: &str, store_ref: &str) -> Option<usize> {
        let index = match channel {
            "own_app" => store_ref.strip_prefix('S'),
            "mkt" => store_ref.strip_prefix("mkt-S"),
            _ => None,
        }?;
        let i: usize = index.parse().ok()?;
        let store = self.chain.stores.get(i)?;
        (channel == "own_app" || store.on_mkt).then_some(i)
    }
}

fn index_of(id: &StoreId) -> usize {
    id.as_str()
        .strip_prefix('S')
        .and_then(|i| i.parse().ok())
        .expect("a generated store id")
}

/// Great-circle distance in metres, the test's own.
fn haversine(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lat2) = (a.0.to_radians(), b.0.to_radians());
    let (dlat, dlng) = ((b.0 - a.0).to_radians(), (b.1 - a.1).to_radians());
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlng / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * h.sqrt().asin()
}

fn check(chain: &GenChain, registry: &Registry, scenario: &Scenario) -> Result<(), TestCaseError> {
    let now = base(chain) + Duration::minutes(scenario.now.0) + Duration::seconds(scenario.now.1);
    let order = new_order(&scenario.order, now);
    let due = match order.fulfillment.timing {
        Timing::Scheduled { at } => at,
        Timing::Asap => now,
    };
    let n = chain.stores.len();
    for i in 0..n {
        prop_assert!(registry.set_live(&store_id(i), store_live(&scenario.live[i], now)));
    }
    let mut declined: Vec<StoreId> = (0..n)
        .filter(|&i| scenario.declined[i])
        .map(store_id)
        .collect();
    declined.push(StoreId::parse("S-gone").expect("id"));
    let world = World {
        chain,
        scenario,
        holidays: chain.stores.iter().map(|s| holidays(chain, s)).collect(),
        now,
        due,
        needed: needed(&scenario.order),
    };
    let faults: Vec<Faults> = (0..n).map(|i| world.faults(i)).collect();

    // The test's reading of the hours agrees with the compiled hours.
    for (i, fault) in faults.iter().enumerate() {
        let compiled = registry.hours(&store_id(i)).expect("hours");
        prop_assert_eq!(
            compiled.is_open(due),
            !fault.closed,
            "store S{} at {} ({}): hours {:?}, holidays {:?}",
            i,
            due,
            compiled.local(due),
            chain.stores[i].hours,
            world.holidays[i]
        );
    }

    let decision = route(registry, &order, world.now, &declined);
    let generated = &scenario.order;

    // The menu first: an item code the order needs made that the chain does not sell
    // refuses the order, whatever the stores.
    let off_menu: Vec<&str> = match chain.menu.as_ref().filter(|menu| !menu.is_empty()) {
        Some(menu) => world
            .needed
            .iter()
            .copied()
            .filter(|plu| !menu.contains(plu))
            .collect(),
        None => vec![],
    };
    if !off_menu.is_empty() {
        prop_assert_eq!(decision.rule, "menu");
        prop_assert_eq!(&decision.store, &None);
        prop_assert_eq!(decision.refusal, Some(Unroutable::UnknownItem));
        prop_assert!(decision.candidates.is_empty());
        let expected = match off_menu.as_slice() {
            [one] => format!("item unavailable: PLU {one} is not on the chain's menu"),
            many => format!(
                "item unavailable: PLUs {} are not on the chain's menu",
                many.join(", ")
            ),
        };
        prop_assert_eq!(decision.reason.as_deref(), Some(expected.as_str()));
        return Ok(());
    }
    // Where a store must deliver: the drop-off point of an address-based order, or the
    // WGS 84 point of a named store's own delivery.
    let store_delivery = generated.kind == FulfillmentKind::Delivery
        && generated.delivered_by == Some(DeliveredBy::Store)
        && generated.system == CoordSystem::Wgs84;
    let zone_point = match &generated.named {
        None => generated.point,
        Some(_) => generated.point.filter(|_| store_delivery),
    };

    // The property: never a store that cannot take the order, nor one outside its zone.
    if let Some(chosen) = &decision.store {
        let i = index_of(chosen);
        prop_assert!(i < n, "chose {} of {} stores", chosen, n);
        prop_assert!(
            faults[i].ok(),
            "{} was chosen but cannot take the order: {:?} ({:?}, now {}, due {})",
            chosen,
            faults[i],
            decision,
            now,
            due
        );
        if let Some((lat, lng)) = zone_point {
            prop_assert!(
                registry.delivers_to(chosen, lat, lng),
                "{} was chosen for ({}, {}) outside its zone: {:?}",
                chosen,
                lat,
                lng,
                decision
            );
        }
    }

    match &generated.named {
        Some((channel, store_ref)) => {
            prop_assert_eq!(decision.rule, "by_channel_store");
            let Some(i) = world.named_store(channel, store_ref) else {
                prop_assert_eq!(&decision.store, &None);
                prop_assert_eq!(decision.refusal, Some(Unroutable::UnknownStore));
                prop_assert!(decision.candidates.is_empty());
                return Ok(());
            };
            prop_assert_eq!(decision.candidates.len(), 1, "{:?}", decision);
            let candidate = &decision.candidates[0];
            prop_assert_eq!(&candidate.store, &store_id(i));
            let outside =
                zone_point.is_some_and(|(lat, lng)| !registry.delivers_to(&store_id(i), lat, lng));
            if outside {
                prop_assert_eq!(&decision.store, &None);
                prop_assert_eq!(decision.refusal, Some(Unroutable::OutOfArea));
                prop_assert_eq!(&candidate.verdict, "address outside its delivery zone");
            } else if faults[i].ok() {
                prop_assert_eq!(&decision.store, &Some(store_id(i)), "{:?}", decision);
                prop_assert_eq!(&candidate.verdict, "chosen");
            } else {
                prop_assert_eq!(&decision.store, &None);
                prop_assert_eq!(decision.refusal, Some(Unroutable::StoreUnavailable));
                prop_assert!(
                    faults[i].explains(&candidate.verdict),
                    "verdict {:?} for S{} with {:?}",
                    candidate.verdict,
                    i,
                    faults[i]
                );
            }
        }
        None => {
            prop_assert_eq!(decision.rule, "by_delivery_zone");
            let point = generated
                .point
                .filter(|_| generated.kind == FulfillmentKind::Delivery);
            let Some((lat, lng)) = point else {
                prop_assert_eq!(&decision.store, &None);
                prop_assert_eq!(decision.refusal, Some(Unroutable::NoLocation));
                prop_assert!(decision.candidates.is_empty());
                return Ok(());
            };
            // The stores whose zone contains the point, found one by one.
            let inside: BTreeSet<usize> = (0..n)
                .filter(|&i| registry.delivers_to(&store_id(i), lat, lng))
                .collect();
            let covering: Vec<usize> = registry
                .covering(lat, lng)
                .iter()
                .map(|(store, _)| index_of(&store.id))
                .collect();
            prop_assert_eq!(
                covering.len(),
                inside.len(),
                "{:?} vs {:?}",
                covering,
                inside
            );
            prop_assert_eq!(
                covering.iter().copied().collect::<BTreeSet<_>>(),
                inside.clone()
            );
            let distance = |i: usize| haversine(location(&chain.stores[i]), (lat, lng));
            for pair in covering.windows(2) {
                prop_assert!(
                    distance(pair[0]) <= distance(pair[1]) + 1e-6,
                    "covering is not nearest first: S{} at {} m before S{} at {} m",
                    pair[0],
                    distance(pair[0]),
                    pair[1],
                    distance(pair[1])
                );
            }
            if covering.is_empty() {
                prop_assert_eq!(&decision.store, &None);
                prop_assert_eq!(decision.refusal, Some(Unroutable::OutOfArea));
                prop_assert!(decision.candidates.is_empty());
                return Ok(());
            }
            // The positive side: the first store in that order that can take the order.
            let expected = covering.iter().copied().find(|&i| faults[i].ok());
            prop_assert_eq!(
                decision.store.as_ref().map(index_of),
                expected,
                "covering {:?}, faults {:?}, decision {:?}",
                covering,
                covering
                    .iter()
                    .map(|&i| (i, &faults[i]))
                    .collect::<Vec<_>>(),
                decision
            );
            if let Some(chosen) = expected {
                for &other in inside.iter().filter(|&&i| faults[i].ok()) {
                    prop_assert!(
                        distance(chosen) <= distance(other) + 1e-6,
                        "S{} chosen at {} m, S{} could take it at {} m",
                        chosen,
                        distance(chosen),
                        other,
                        distance(other)
                    );
                }
            } else {
                prop_assert_eq!(decision.refusal, Some(Unroutable::StoreUnavailable));
            }
            // Every store looked at is listed, in that order, with a true verdict.
            let listed: Vec<usize> = decision
                .candidates
                .iter()
                .map(|c| index_of(&c.store))
                .collect();
            prop_assert_eq!(&listed, &covering);
            let mut passed_chosen = false;
            for candidate in &decision.candidates {
                let i = index_of(&candidate.store);
                prop_assert!(candidate.distance_m.is_some());
                if Some(i) == expected {
                    prop_assert_eq!(&candidate.verdict, "chosen");
                    passed_chosen = true;
                } else if passed_chosen {
                    prop_assert!(
                        candidate.verdict.starts_with("not needed"),
                        "{:?}",
                        candidate
                    );
                } else {
                    prop_assert!(
                        faults[i].explains(&candidate.verdict),
                        "verdict {:?} for S{} with {:?}",
                        candidate.verdict,
                        i,
                        faults[i]
                    );
                }
            }
            for pair in decision.candidates.windows(2) {
                prop_assert!(pair[0].distance_m <= pair[1].distance_m);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// No order goes to a store that cannot take it; an address-based order goes to the
    /// nearest that can; the decision says why about every store it looked at.
    #[test]
    fn orders_go_only_to_stores_that_can_take_them((chain, scenarios) in case_strategy()) {
        let registry = Registry::build((0..chain.stores.len()).map(|i| profile(&chain, i)))
            .expect("a valid chain")
            .with_menu(chain.menu.iter().flatten().map(|plu| plu.to_string()));
        for scenario in &scenarios {
            check(&chain, &registry, scenario)?;
        }
    }
}
