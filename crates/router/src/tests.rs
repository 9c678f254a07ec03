//! Routing rules, table-driven over a small synthetic chain.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use crossdock_model::{
    Address, ChannelId, CoordSystem, Coordinates, Currency, Customer, DeliveredBy, Fulfillment,
    FulfillmentKind, LatLng, Line, Modifier, Money, NewOrder, Payment, StoreId, StoreProfile,
    Timing, Totals,
};

use super::*;

/// A store at (lat, lng) with a square zone of ±`half` degrees.
fn store(id: &str, lat: f64, lng: f64, half: f64, brand: &str) -> StoreProfile {
    let ring = vec![
        [lng - half, lat - half],
        [lng + half, lat - half],
        [lng + half, lat + half],
        [lng - half, lat + half],
        [lng - half, lat - half],
    ];
    StoreProfile {
        id: StoreId::parse(id).expect("id"),
        name: id.into(),
        brand: brand.into(),
        city: "Testville".into(),
        country: "US".into(),
        timezone: "America/New_York".into(),
        currency: Currency::parse("USD").expect("currency"),
        address: "1 Main St".into(),
        location: LatLng { lat, lng },
        hours: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .iter()
            .map(|day| (day.to_string(), vec![["00:00".into(), "24:00".into()]]))
            .collect(),
        closed_on: vec![],
        capacity: 10,
        prep_minutes: 15,
        delivery_zone: ring,
        channels: BTreeMap::from([
            ("own_app".to_owned(), id.to_owned()),
            ("mkt".to_owned(), format!("mkt-{id}")),
        ]),
    }
}

fn order(channel: &str, store_ref: Option<&str>, point: Option<(f64, f64)>) -> NewOrder {
    let usd = Currency::parse("USD").expect("currency");
    NewOrder {
        channel: ChannelId::parse(channel).expect("channel"),
        external_order_id: "x-1".into(),
        display_code: None,
        channel_store_ref: store_ref.map(str::to_owned),
        brand: Some("pizza".into()),
        platform_brand: None,
        placed_at: Utc::now(),
        fulfillment: Fulfillment {
            kind: if point.is_some() {
                FulfillmentKind::Delivery
            } else {
                FulfillmentKind::Pickup
            },
            delivered_by: point.map(|_| DeliveredBy::Store),
            address: point.map(|(lat, lng)| Address {
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
        lines: vec![],
        totals: Totals::zero(usd),
        payment: Payment::Prepaid,
        channel_data: serde_json::Value::Null,
    }
}

/// An order line of the item `plu`, with modifiers of the given PLUs (`-PLU`: taken off).
fn line(plu: &str, modifiers: &[&str]) -> Line {
    let usd = Currency::parse("USD").expect("currency");
    Line {
        channel_item_id: format!("ch-{plu}"),
        plu: Some(plu.into()),
        name: plu.into(),
        quantity: 1,
        unit_price: Money::zero(usd),
        total: Money::zero(usd),
        notes: None,
        modifiers: modifiers
            .iter()
            .map(|m| Modifier {
                group: None,
                name: m.to_string(),
                channel_item_id: None,
                plu: Some(m.trim_start_matches('-').into()),
                quantity: 1,
                unit_price: Money::zero(usd),
                removed: m.starts_with('-'),
                modifiers: vec![],
            })
            .collect(),
    }
}

fn with_lines(mut order: NewOrder, lines: Vec<Line>) -> NewOrder {
    order.lines = lines;
    order
}

/// Live state: paused until a time.
fn paused(until: DateTime<Utc>) -> StoreLive {
    StoreLive {
        paused_until: Some(until),
        ..StoreLive::default()
    }
}

/// Live state: working `active` orders.
fn busy(active: u32) -> StoreLive {
    StoreLive {
        active,
        ..StoreLive::default()
    }
}

/// Live state: these items are "86".
fn out_of(plus: &[&str]) -> StoreLive {
    StoreLive {
        unavailable: plus.iter().map(|p| p.to_string()).collect(),
        ..StoreLive::default()
    }
}

/// Four stores: A and B overlap (B 0.01° north of A), C alone, D another brand's. Each
/// has capacity 10 and is open around the clock.
fn chain(live: &[(&str, StoreLive)]) -> Registry {
    let stores = vec![
        store("A", 40.00, -74.00, 0.02, "pizza"),
        store("B", 40.01, -74.00, 0.02, "pizza"),
        store("C", 40.30, -74.00, 0.02, "pizza"),
        store("D", 40.50, -74.00, 0.02, "burgers"),
    ];
    let registry = Registry::build(stores).expect("registry");
    for (id, state) in live {
        assert!(registry.set_live(&StoreId::parse(*id).expect("id"), state.clone()));
    }
    registry
}

fn id(text: &str) -> StoreId {
    StoreId::parse(text).expect("id")
}

/// (case, stores' live state, stores that declined, order, the chosen store or the start
/// of the reason).
type Case = (
    &'static str,
    Vec<(&'static str, StoreLive)>,
    Vec<&'static str>,
    NewOrder,
    Result<&'static str, &'static str>,
);

#[test]
fn routing_rules() {
    let now = Utc::now();
    let later = now + Duration::minutes(30);
    let earlier = now - Duration::minutes(30);
    // (case, paused stores, order, expected store or the reason's start)
    let cases: Vec<Case> = vec![
        (
            "channel names the store",
            vec![],
            vec![],
            order("mkt", Some("mkt-C"), None),
            Ok("C"),
        ),
        (
            "own app pickup names our store",
            vec![],
            vec![],
            order("own_app", Some("B"), None),
            Ok("B"),
        ),
        (
            "unknown channel store id",
            vec![],
            vec![],
            order("mkt", Some("mkt-Z"), None),
            Err("unknown store"),
        ),
        (
            "named store paused",
            vec![("C", paused(later))],
            vec![],
            order("mkt", Some("mkt-C"), None),
            Err("store C cannot take"),
        ),
        (
            "pause that has passed",
            vec![("C", paused(earlier))],
            vec![],
            order("mkt", Some("mkt-C"), None),
            Ok("C"),
        ),
        (
            "point in one zone",
            vec![],
            vec![],
            order("own_app", None, Some((40.30, -74.00))),
            Ok("C"),
        ),
        (
            "point in two zones, nearer A",
            vec![],
            vec![],
            order("own_app", None, Some((40.001, -74.0))),
            Ok("A"),
        ),
        (
            "point in two zones, nearer B",
            vec![],
            vec![],
            order("own_app", None, Some((40.009, -74.0))),
            Ok("B"),
        ),
        (
            "nearest paused: next one",
            vec![("A", paused(later))],
            vec![],
            order("own_app", None, Some((40.001, -74.0))),
            Ok("B"),
        ),
        (
            "outside every zone",
            vec![],
            vec![],
            order("own_app", None, Some((41.0, -70.0))),
            Err("delivery address is outside"),
        ),
        (
            "only zone is another brand's",
            vec![],
            vec![],
            order("own_app", None, Some((40.50, -74.0))),
            Err("no store whose zone"),
        ),
        (
            "no store and no location",
            vec![],
            vec![],
            order("own_app", None, None),
            Err("the order names no store"),
        ),
        (
            "named store at capacity",
            vec![("C", busy(10))],
            vec![],
            order("mkt", Some("mkt-C"), None),
            Err("store C cannot take the order: too busy"),
        ),
        (
            "named store with room again",
            vec![("C", busy(9))],
            vec![],
            order("mkt", Some("mkt-C"), None),
            Ok("C"),
        ),
        (
            "nearest at capacity: next one",
            vec![("A", busy(12))],
            vec![],
            order("own_app", None, Some((40.001, -74.0))),
            Ok("B"),
        ),
        (
            "item unavailable at the nearest: next one",
            vec![("A", out_of(&["PZ-MARG"]))],
            vec![],
            with_lines(
                order("own_app", None, Some((40.001, -74.0))),
                vec![line("PZ-MARG", &[])],
            ),
            Ok("B"),
        ),
        (
            "a modifier unavailable counts",
            vec![("A", out_of(&["MOD-BASIL"]))],
            vec![],
            with_lines(
                order("own_app", None, Some((40.001, -74.0))),
                vec![line("PZ-MARG", &["MOD-BASIL"])],
            ),
            Ok("B"),
        ),
        (
            "an ingredient taken off does not",
            vec![("A", out_of(&["MOD-BASIL"]))],
            vec![],
            with_lines(
                order("own_app", None, Some((40.001, -74.0))),
                vec![line("PZ-MARG", &["-MOD-BASIL"])],
            ),
            Ok("A"),
        ),
        (
            "other items unavailable do not",
            vec![("A", out_of(&["PZ-PEPP"]))],
            vec![],
            with_lines(
                order("own_app", None, Some((40.001, -74.0))),
                vec![line("PZ-MARG", &[])],
            ),
            Ok("A"),
        ),
        (
            "named store missing an item",
            vec![("C", out_of(&["PZ-MARG", "DR-COLA"]))],
            vec![],
            with_lines(
                order("mkt", Some("mkt-C"), None),
                vec![line("DR-COLA", &[]), line("PZ-MARG", &[])],
            ),
            Err("store C cannot take the order: item unavailable: DR-COLA, PZ-MARG"),
        ),
        (
            "the nearest declined: next one",
            vec![],
            vec!["A"],
            order("own_app", None, Some((40.001, -74.0))),
            Ok("B"),
        ),
        (
            "every covering store declined",
            vec![],
            vec!["A", "B"],
            order("own_app", None, Some((40.001, -74.0))),
            Err("no store whose zone"),
        ),
        (
            "every covering store busy, paused or out",
            vec![("A", busy(10)), ("B", paused(later))],
            vec![],
            order("own_app", None, Some((40.001, -74.0))),
            Err("no store whose zone"),
        ),
    ];
    for (case, live, declined, order, expected) in cases {
        let registry = chain(&live);
        let declined: Vec<StoreId> = declined.into_iter().map(id).collect();
        let decision = route(&registry, &order, now, &declined);
        match expected {
            Ok(store) => assert_eq!(
                decision.store.as_ref().map(StoreId::as_str),
                Some(store),
                "{case}: {decision:?}"
            ),
            Err(reason) => {
                assert_eq!(decision.store, None, "{case}");
                let got = decision.reason.clone().unwrap_or_default();
                assert!(
                    got.starts_with(reason),
                    "{case}: reason {got:?} does not start with {reason:?}"
                );
            }
        }
    }
}

#[test]
fn the_decision_lists_every_candidate_with_its_verdict() {
    let later = Utc::now() + Duration::minutes(30);
    let registry = chain(&[("A", paused(later))]);
    let decision = route(
        &registry,
        &order("own_app", None, Some((40.001, -74.0))),
        Utc::now(),
        &[],
    );
    let verdicts: Vec<(&str, &str)> = decision
        .candidates
        .iter()
        .map(|c| (c.store.as_str(), c.verdict.as_str()))
        .collect();
    assert_eq!(verdicts.len(), 2);
    assert_eq!(verdicts[0].0, "A");
    assert!(verdicts[0].1.starts_with("paused until"));
    assert_eq!(verdicts[1], ("B", "chosen"));
    assert!(decision.candidates[0].distance_m < decision.candidates[1].distance_m);
    let json = serde_json::to_value(&decision).expect("json");
    assert_eq!(json["rule"], "by_delivery_zone");
    assert_eq!(json["store"], "B");
}

#[test]
fn a_registry_refuses_open_rings_and_ambiguous_channel_ids() {
    let mut open = store("A", 40.0, -74.0, 0.01, "pizza");
    open.delivery_zone.pop();
    assert!(matches!(
        Registry::build([open]),
        Err(RegistryError::BadZone { .. })
    ));
    let a = store("A", 40.0, -74.0, 0.01, "pizza");
    let mut b = store("B", 41.0, -74.0, 0.01, "pizza");
    b.channels.insert("mkt".into(), "mkt-A".into());
    assert!(matches!(
        Registry::build([a, b]),
        Err(RegistryError::DuplicateChannelId { .. })
    ));
}

#[test]
fn a_sale_goes_to_the_store_that_made_it_even_when_paused() {
    let now = Utc::now();
    let registry = chain(&[("C", paused(now + Duration::minutes(30)))]);
    let sale = order("mkt", Some("mkt-C"), None);
    let decision = route(&registry, &sale, now, &[]);
    assert_eq!(
        decision.store, None,
        "an order to a paused store is refused"
    );
    let decision = route_sale(&registry, &sale);
    assert_eq!(decision.rule, "store_sale");
    assert_eq!(decision.store.as_ref().map(|s| s.as_str()), Some("C"));
    let unknown = route_sale(&registry, &order("mkt", Some("mkt-Z"), None));
    assert_eq!(unknown.store, None);
    assert_eq!(unknown.refusal, Some(Unroutable::UnknownStore));
    let unnamed = route_sale(&registry, &order("mkt", None, Some((40.0, -74.0))));
    assert_eq!(unnamed.refusal, Some(Unroutable::UnknownStore));
}

/// A store with `hours` in `zone`, for the hours rules.
fn with_hours(zone: &str, hours: &[(&str, &str, &str)], closed_on: &[&str]) -> Registry {
    let mut profile = store("H", 40.00, -74.00, 0.02, "pizza");
    profile.timezone = zone.into();
    profile.hours = BTreeMap::new();
    for (day, open, close) in hours {
        profile
            .hours
            .entry(day.to_string())
            .or_default()
            .push([open.to_string(), close.to_string()]);
    }
    profile.closed_on = closed_on
        .iter()
        .map(|d| d.parse().expect("a date"))
        .collect();
    Registry::build([profile]).expect("registry")
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("an RFC 3339 instant")
}

/// (case, zone, hours as (day, open, close), closed days, instant, open?)
type HoursCase<'a> = (
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str, &'a str)],
    &'a [&'a str],
    &'a str,
    bool,
);

#[test]
fn opening_hours_rules() {
    let friday_late = [("fri", "18:00", "02:00"), ("sat", "12:00", "23:00")];
    let cases: Vec<HoursCase> = vec![
        // London is UTC+0 in November; 2026-11-20 is a Friday.
        (
            "friday evening",
            "Europe/London",
            &friday_late,
            &[],
            "2026-11-20T19:00:00Z",
            true,
        ),
        (
            "after midnight, still Friday's hours",
            "Europe/London",
            &friday_late,
            &[],
            "2026-11-21T01:30:00Z",
            true,
        ),
        (
            "after Friday's close",
            "Europe/London",
            &friday_late,
            &[],
            "2026-11-21T02:00:00Z",
            false,
        ),
        (
            "Saturday morning",
            "Europe/London",
            &friday_late,
            &[],
            "2026-11-21T10:00:00Z",
            false,
        ),
        (
            "Saturday noon",
            "Europe/London",
            &friday_late,
            &[],
            "2026-11-21T12:00:00Z",
            true,
        ),
        (
            "Friday before opening",
            "Europe/London",
            &friday_late,
            &[],
            "2026-11-20T17:59:00Z",
            false,
        ),
        // Shanghai is UTC+8: 13:59Z is 21:59 there, 14:00Z is 22:00.
        (
            "Shanghai open",
            "Asia/Shanghai",
            &[("fri", "10:00", "22:00")],
            &[],
            "2026-11-20T13:59:00Z",
            true,
        ),
        (
            "Shanghai closing time",
            "Asia/Shanghai",
            &[("fri", "10:00", "22:00")],
            &[],
            "2026-11-20T14:00:00Z",
            false,
        ),
        (
            "Shanghai's Friday is UTC's Thursday",
            "Asia/Shanghai",
            &[("fri", "06:00", "10:00")],
            &[],
            "2026-11-19T23:00:00Z",
            true,
        ),
        // New York: 2026-03-08 is the spring-forward Sunday (UTC-5 → UTC-4 at 02:00).
        (
            "New York before DST",
            "America/New_York",
            &[("sun", "10:00", "12:00")],
            &[],
            "2026-03-01T15:30:00Z",
            true,
        ),
        (
            "New York after DST",
            "America/New_York",
            &[("sun", "10:00", "12:00")],
            &[],
            "2026-03-08T14:30:00Z",
            true,
        ),
        (
            "New York after DST, an hour early",
            "America/New_York",
            &[("sun", "10:00", "12:00")],
            &[],
            "2026-03-08T13:30:00Z",
            false,
        ),
        // Special days closed, and the tail of the day before that runs into one.
        (
            "closed on a holiday",
            "Europe/London",
            &friday_late,
            &["2026-11-20"],
            "2026-11-20T19:00:00Z",
            false,
        ),
        (
            "the night into a holiday",
            "Europe/London",
            &friday_late,
            &["2026-11-21"],
            "2026-11-21T01:00:00Z",
            false,
        ),
        (
            "the day after a holiday",
            "Europe/London",
            &friday_late,
            &["2026-11-20"],
            "2026-11-21T12:30:00Z",
            true,
        ),
        (
            "no hours: never open",
            "Europe/London",
            &[],
            &[],
            "2026-11-20T19:00:00Z",
            false,
        ),
    ];
    for (case, zone, hours, closed, instant, open) in cases {
        let registry = with_hours(zone, hours, closed);
        let id = crossdock_model::StoreId::parse("H").expect("id");
        let compiled = registry.hours(&id).expect("hours");
        assert_eq!(
            compiled.is_open(at(instant)),
            open,
            "{case}: {}",
            compiled.local(at(instant))
        );
    }
}

#[test]
fn bad_hours_are_refused_with_the_store_and_the_reason() {
    let mut profile = store("H", 40.00, -74.00, 0.02, "pizza");
    profile.timezone = "Mars/Olympus".into();
    let error = Registry::build([profile.clone()]).expect_err("refused");
    assert!(error.to_string().contains("Mars/Olympus"), "{error}");
    profile.timezone = "Europe/London".into();
    profile
        .hours
        .insert("fri".into(), vec![["25:00".into(), "02:00".into()]]);
    let error = Registry::build([profile.clone()]).expect_err("refused");
    assert!(
        error.to_string().contains("store H") && error.to_string().contains("25:00"),
        "{error}"
    );
    profile.hours.remove("fri");
    profile.hours.insert("friday".into(), vec![]);
    let error = Registry::build([profile]).expect_err("refused");
    assert!(error.to_string().contains("friday"), "{error}");
}

#[test]
fn a_closed_store_is_dropped_and_a_scheduled_order_is_checked_at_its_time() {
    // Open Friday 18:00–02:00 in London; now is Saturday 10:00 (closed).
    let registry = with_hours(
        "Europe/London",
        &[("fri", "18:00", "02:00"), ("sat", "18:00", "23:00")],
        &[],
    );
    let now = at("2026-11-21T10:00:00Z");
    let asap = order("mkt", Some("mkt-H"), None);
    let decision = route(&registry, &asap, now, &[]);
    assert_eq!(decision.store, None);
    assert_eq!(decision.refusal, Some(Unroutable::StoreUnavailable));
    let reason = decision.reason.unwrap_or_default();
    assert!(
        reason.contains("closed now (Sat 10:00 Europe/London)"),
        "{reason}"
    );
    let mut later = asap.clone();
    later.fulfillment.timing = crossdock_model::Timing::Scheduled {
        at: at("2026-11-21T19:00:00Z"),
    };
    assert_eq!(
        route(&registry, &later, now, &[])
            .store
            .map(|s| s.to_string()),
        Some("H".into()),
        "due when the store is open"
    );
    later.fulfillment.timing = crossdock_model::Timing::Scheduled {
        at: at("2026-11-22T10:00:00Z"),
    };
    let reason = route(&registry, &later, now, &[])
        .reason
        .unwrap_or_default();
    assert!(
        reason.contains("closed at the order's time (Sun 10:00"),
        "{reason}"
    );
}

#[test]
fn a_named_store_delivers_itself_only_inside_its_zone() {
    let now = Utc::now();
    let registry = chain(&[]);
    // Store C's zone is ±0.02° around (40.30, -74.00).
    let inside = order("mkt", Some("mkt-C"), Some((40.30, -74.00)));
    assert_eq!(
        route(&registry, &inside, now, &[])
            .store
            .map(|s| s.to_string()),
        Some("C".into())
    );
    let outside = order("mkt", Some("mkt-C"), Some((40.00, -74.00)));
    let decision = route(&registry, &outside, now, &[]);
    assert_eq!(decision.store, None);
    assert_eq!(decision.refusal, Some(Unroutable::OutOfArea));
    assert!(
        decision
            .reason
            .unwrap_or_default()
            .contains("outside the store's delivery zone")
    );
    // A platform courier delivers anywhere the platform does.
    let mut courier = outside.clone();
    courier.fulfillment.delivered_by = Some(DeliveredBy::Platform);
    assert_eq!(
        route(&registry, &courier, now, &[])
            .store
            .map(|s| s.to_string()),
        Some("C".into())
    );
}

#[test]
fn an_older_version_of_a_stores_live_state_never_replaces_a_newer_one() {
    let registry = chain(&[]);
    let a = id("A");
    let later = Utc::now() + Duration::minutes(30);
    assert!(registry.update_live(&a, paused(later), 3));
    // A read that started before the pause lands after it: it is ignored.
    assert!(!registry.update_live(&a, StoreLive::default(), 2));
    assert_eq!(registry.live(&a).and_then(|l| l.paused_until), Some(later));
    // A load counted under the row lock at an older version is ignored too; a newer one
    // is taken.
    registry.update_active(&a, 7, 2);
    assert_eq!(registry.live(&a).map(|l| l.active), Some(0));
    registry.update_active(&a, 7, 4);
    assert_eq!(registry.live(&a).map(|l| l.active), Some(7));
    assert!(registry.update_live(&a, busy(1), 5));
    assert_eq!(registry.live(&a), Some(busy(1)));
    assert!(!registry.update_live(&id("Z"), busy(1), 9), "unknown store");
}

/// The menu of the synthetic chain's tests: two items and two options.
const MENU: [&str; 4] = ["PZ-MARG", "DR-COLA", "MOD-BASIL", "MOD-CHEESE"];

fn menu_chain(live: &[(&str, StoreLive)]) -> Registry {
    chain(live).with_menu(MENU.iter().map(|plu| plu.to_string()))
}

/// A modifier of `plu` carrying `nested` modifiers.
fn modifier(plu: Option<&str>, removed: bool, nested: Vec<Modifier>) -> Modifier {
    let usd = Currency::parse("USD").expect("currency");
    Modifier {
        group: None,
        name: plu.unwrap_or("their own option").into(),
        channel_item_id: Some("ch-option".into()),
        plu: plu.map(str::to_owned),
        quantity: if removed { 0 } else { 1 },
        unit_price: Money::zero(usd),
        removed,
        modifiers: nested,
    }
}

#[test]
fn an_order_naming_an_item_not_on_the_menu_is_refused_before_any_store_with_the_plu() {
    let now = Utc::now();
    let registry = menu_chain(&[]);
    assert_eq!(registry.menu().map(|menu| menu.len()), Some(4));
    for named in [
        order("mkt", Some("mkt-C"), None),
        order("own_app", None, Some((40.001, -74.0))),
        order("own_app", None, None),
    ] {
        let unknown = with_lines(
            named,
            vec![line("PZ-MARG", &["MOD-BASIL"]), line("PZ-HAWAII", &[])],
        );
        let decision = route(&registry, &unknown, now, &[]);
        assert_eq!(decision.store, None);
        assert_eq!(decision.rule, "menu");
        assert_eq!(decision.refusal, Some(Unroutable::UnknownItem));
        assert_eq!(
            decision.reason.as_deref(),
            Some("item unavailable: PLU PZ-HAWAII is not on the chain's menu")
        );
        assert_eq!(decision.candidates, vec![], "no store was looked at");
        let json = serde_json::to_value(&decision).expect("json");
        assert_eq!(json["refusal"], "unknown_item");
    }
    // Several are listed once each, sorted.
    let several = with_lines(
        order("mkt", Some("mkt-C"), None),
        vec![
            line("SD-WINGS", &[]),
            line("PZ-HAWAII", &[]),
            line("SD-WINGS", &[]),
        ],
    );
    assert_eq!(
        route(&registry, &several, now, &[]).reason.as_deref(),
        Some("item unavailable: PLUs PZ-HAWAII, SD-WINGS are not on the chain's menu")
    );
}

#[test]
fn an_unknown_modifier_plu_is_refused_at_any_depth_but_one_taken_off_is_not() {
    let now = Utc::now();
    let registry = menu_chain(&[]);
    let with_modifiers = |modifiers: Vec<Modifier>| {
        let mut pizza = line("PZ-MARG", &[]);
        pizza.modifiers = modifiers;
        with_lines(order("mkt", Some("mkt-C"), None), vec![pizza])
    };

    let top = with_modifiers(vec![modifier(Some("MOD-TRUFFLE"), false, vec![])]);
    let decision = route(&registry, &top, now, &[]);
    assert_eq!(decision.refusal, Some(Unroutable::UnknownItem));
    assert_eq!(
        decision.reason.as_deref(),
        Some("item unavailable: PLU MOD-TRUFFLE is not on the chain's menu")
    );

    let nested = with_modifiers(vec![modifier(
        Some("MOD-CHEESE"),
        false,
        vec![modifier(Some("MOD-TRUFFLE"), false, vec![])],
    )]);
    let decision = route(&registry, &nested, now, &[]);
    assert_eq!(decision.refusal, Some(Unroutable::UnknownItem));
    assert!(
        decision
            .reason
            .as_deref()
            .is_some_and(|reason| reason.contains("MOD-TRUFFLE")),
        "{decision:?}"
    );

    // An ingredient taken off is not made: its code need not be on the menu, nor those
    // under it.
    let removed = with_modifiers(vec![modifier(
        Some("PZ-ING-OREGANO"),
        true,
        vec![modifier(Some("MOD-TRUFFLE"), false, vec![])],
    )]);
    assert_eq!(
        route(&registry, &removed, now, &[])
            .store
            .map(|s| s.to_string()),
        Some("C".into())
    );
}

#[test]
fn lines_and_modifiers_without_a_plu_are_not_checked_against_the_menu() {
    let now = Utc::now();
    let registry = menu_chain(&[]);
    let mut own_id = line("ignored", &[]);
    own_id.plu = None;
    own_id.modifiers = vec![modifier(None, false, vec![])];
    let order = with_lines(order("mkt", Some("mkt-C"), None), vec![own_id]);
    assert_eq!(
        route(&registry, &order, now, &[])
            .store
            .map(|s| s.to_string()),
        Some("C".into())
    );
    assert!(unknown_items(&registry, &order).is_empty());
}

#[test]
fn without_a_menu_items_are_not_checked() {
    let now = Utc::now();
    let unknown = with_lines(
        order("own_app", None, Some((40.001, -74.0))),
        vec![line("PZ-HAWAII", &["MOD-TRUFFLE"])],
    );
    for registry in [chain(&[]), chain(&[]).with_menu(Vec::<String>::new())] {
        assert_eq!(registry.menu(), None, "no PLUs is no menu");
        assert!(registry.on_menu("PZ-HAWAII"));
        let decision = route(&registry, &unknown, now, &[]);
        assert_eq!(
            decision.store.as_ref().map(StoreId::as_str),
            Some("A"),
            "{decision:?}"
        );
        assert_eq!(decision.rule, "by_delivery_zone");
    }
}

#[test]
fn an_item_on_the_menu_but_unavailable_at_a_store_drops_only_that_store() {
    let now = Utc::now();
    let registry = menu_chain(&[("A", out_of(&["PZ-MARG"]))]);
    let pizza = with_lines(
        order("own_app", None, Some((40.001, -74.0))),
        vec![line("PZ-MARG", &["MOD-BASIL"])],
    );
    let decision = route(&registry, &pizza, now, &[]);
    assert_eq!(decision.rule, "by_delivery_zone");
    assert_eq!(decision.store.as_ref().map(StoreId::as_str), Some("B"));
    let verdicts: Vec<(&str, &str)> = decision
        .candidates
        .iter()
        .map(|c| (c.store.as_str(), c.verdict.as_str()))
        .collect();
    assert_eq!(
        verdicts,
        vec![("A", "item unavailable: PZ-MARG"), ("B", "chosen")]
    );

    // The store the channel names, out of it: that store cannot take it, and the refusal
    // is the store's, not the menu's.
    let registry = menu_chain(&[("C", out_of(&["DR-COLA"]))]);
    let named = with_lines(
        order("mkt", Some("mkt-C"), None),
        vec![line("DR-COLA", &[])],
    );
    let decision = route(&registry, &named, now, &[]);
    assert_eq!(decision.refusal, Some(Unroutable::StoreUnavailable));
    assert_eq!(
        decision.reason.as_deref(),
        Some("store C cannot take the order: item unavailable: DR-COLA")
    );
}

#[test]
fn a_sale_a_store_made_is_not_checked_against_the_menu() {
    let registry = menu_chain(&[]);
    let sale = with_lines(
        order("mkt", Some("mkt-C"), None),
        vec![line("PZ-HAWAII", &[])],
    );
    assert_eq!(
        route(&registry, &sale, Utc::now(), &[]).refusal,
        Some(Unroutable::UnknownItem)
    );
    let decision = route_sale(&registry, &sale);
    assert_eq!(decision.rule, "store_sale");
    assert_eq!(decision.store.as_ref().map(StoreId::as_str), Some("C"));
}
