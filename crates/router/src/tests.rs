//! Routing rules, table-driven over a small synthetic chain.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use crossdock_model::{
    Address, ChannelId, CoordSystem, Coordinates, Currency, Customer, DeliveredBy, Fees,
    Fulfillment, FulfillmentKind, LatLng, Money, NewOrder, Payment, StoreId, StoreProfile, Timing,
    Totals,
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
        hours: BTreeMap::new(),
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
        totals: Totals {
            currency: usd,
            subtotal: Money::zero(usd),
            discounts: vec![],
            tax: Money::zero(usd),
            tax_included: false,
            fees: Fees::zero(usd),
            tip: Money::zero(usd),
            total: Money::zero(usd),
            cash_due: None,
            total_is_derived: false,
        },
        payment: Payment::Prepaid,
        channel_data: serde_json::Value::Null,
    }
}

fn chain(paused: &[(&str, DateTime<Utc>)]) -> Registry {
    let stores = vec![
        store("A", 40.00, -74.00, 0.02, "pizza"),
        store("B", 40.01, -74.00, 0.02, "pizza"),
        store("C", 40.30, -74.00, 0.02, "pizza"),
        store("D", 40.50, -74.00, 0.02, "burgers"),
    ];
    Registry::build(stores.into_iter().map(|s| {
        let until = paused
            .iter()
            .find(|(id, _)| *id == s.id.as_str())
            .map(|(_, t)| *t);
        (s, until)
    }))
    .expect("registry")
}

/// (case, paused stores, order, the chosen store or the start of the reason).
type Case = (
    &'static str,
    Vec<(&'static str, DateTime<Utc>)>,
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
            order("mkt", Some("mkt-C"), None),
            Ok("C"),
        ),
        (
            "own app pickup names our store",
            vec![],
            order("own_app", Some("B"), None),
            Ok("B"),
        ),
        (
            "unknown channel store id",
            vec![],
            order("mkt", Some("mkt-Z"), None),
            Err("unknown store"),
        ),
        (
            "named store paused",
            vec![("C", later)],
            order("mkt", Some("mkt-C"), None),
            Err("store C cannot take"),
        ),
        (
            "pause that has passed",
            vec![("C", earlier)],
            order("mkt", Some("mkt-C"), None),
            Ok("C"),
        ),
        (
            "point in one zone",
            vec![],
            order("own_app", None, Some((40.30, -74.00))),
            Ok("C"),
        ),
        (
            "point in two zones, nearer A",
            vec![],
            order("own_app", None, Some((40.001, -74.0))),
            Ok("A"),
        ),
        (
            "point in two zones, nearer B",
            vec![],
            order("own_app", None, Some((40.009, -74.0))),
            Ok("B"),
        ),
        (
            "nearest paused: next one",
            vec![("A", later)],
            order("own_app", None, Some((40.001, -74.0))),
            Ok("B"),
        ),
        (
            "outside every zone",
            vec![],
            order("own_app", None, Some((41.0, -70.0))),
            Err("delivery address is outside"),
        ),
        (
            "only zone is another brand's",
            vec![],
            order("own_app", None, Some((40.50, -74.0))),
            Err("no store whose zone"),
        ),
        (
            "no store and no location",
            vec![],
            order("own_app", None, None),
            Err("the order names no store"),
        ),
    ];
    for (case, paused, order, expected) in cases {
        let registry = chain(&paused);
        let decision = route(&registry, &order, now);
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
    let registry = chain(&[("A", later)]);
    let decision = route(
        &registry,
        &order("own_app", None, Some((40.001, -74.0))),
        Utc::now(),
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
        Registry::build([(open, None)]),
        Err(RegistryError::BadZone { .. })
    ));
    let a = store("A", 40.0, -74.0, 0.01, "pizza");
    let mut b = store("B", 41.0, -74.0, 0.01, "pizza");
    b.channels.insert("mkt".into(), "mkt-A".into());
    assert!(matches!(
        Registry::build([(a, None), (b, None)]),
        Err(RegistryError::DuplicateChannelId { .. })
    ));
}

#[test]
fn a_sale_goes_to_the_store_that_made_it_even_when_paused() {
    let now = Utc::now();
    let registry = chain(&[("C", now + Duration::minutes(30))]);
    let sale = order("mkt", Some("mkt-C"), None);
    let decision = route(&registry, &sale, now);
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
