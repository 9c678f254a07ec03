//! Checks the sample chain in `fixtures/chain/` (stores, zones, menu) and that the own_app
//! fixtures use its stores and PLUs at its prices.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn load(path: &str) -> Value {
    let path = fixtures().join(path);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Ray casting: whether (`lng`, `lat`) lies inside the closed `ring` of `[lng, lat]` points.
fn inside(lng: f64, lat: f64, ring: &[(f64, f64)]) -> bool {
    let mut inside = false;
    for pair in ring.windows(2) {
        let ((x1, y1), (x2, y2)) = (pair[0], pair[1]);
        if (y1 > lat) != (y2 > lat) && lng < (x2 - x1) * (lat - y1) / (y2 - y1) + x1 {
            inside = !inside;
        }
    }
    inside
}

/// The array at `value`, or a panic naming `what`.
fn array<'a>(value: &'a Value, what: &str) -> &'a Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{what} is not an array: {value}"))
}

fn number(value: &Value, what: &str) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value}"))
}

fn text<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"))
}

fn ring(store: &Value) -> Vec<(f64, f64)> {
    let id = &store["id"];
    array(&store["delivery_zone"], "delivery_zone")
        .iter()
        .map(|point| {
            let point = array(point, "a zone point");
            assert_eq!(point.len(), 2, "{id}: a point is [lng, lat]");
            (number(&point[0], "lng"), number(&point[1], "lat"))
        })
        .collect()
}

fn location(value: &Value) -> (f64, f64) {
    (number(&value["lng"], "lng"), number(&value["lat"], "lat"))
}

fn stores() -> Vec<Value> {
    array(&load("chain/chain.json")["stores"], "stores").clone()
}

#[test]
fn the_chain_is_well_formed() {
    let chain = load("chain/chain.json");
    assert_eq!(chain["chain"], "Crossdock Pizza Co.");
    let brands: BTreeSet<&str> = chain["brands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    let stores = stores();
    assert!(stores.len() >= 20, "{} stores", stores.len());
    let cities: BTreeSet<&str> = stores.iter().map(|s| s["city"].as_str().unwrap()).collect();
    assert!(cities.len() >= 2, "{cities:?}");

    let mut ids = BTreeSet::new();
    for store in &stores {
        let id = store["id"].as_str().unwrap();
        assert!(ids.insert(id), "{id} appears twice");
        assert!(
            !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "store id `{id}` must match ^[A-Za-z0-9-]+$"
        );
        assert_eq!(
            store["channels"]["own_app"], id,
            "{id}: own_app id is the store id"
        );
        assert!(
            brands.contains(store["brand"].as_str().unwrap()),
            "{id}: unknown brand"
        );
        for field in ["name", "city", "country", "timezone", "currency", "address"] {
            assert!(
                store[field].as_str().is_some_and(|v| !v.is_empty()),
                "{id}: {field}"
            );
        }
        assert!(store["capacity"].as_u64().unwrap() > 0, "{id}: capacity");
        assert!(
            store["prep_minutes"].as_u64().unwrap() > 0,
            "{id}: prep_minutes"
        );

        let ring = ring(store);
        assert!(
            ring.len() >= 9 && ring.len() <= 13,
            "{id}: {} points",
            ring.len()
        );
        assert_eq!(
            ring.first(),
            ring.last(),
            "{id}: the zone ring is not closed"
        );
        let (lng, lat) = location(&store["location"]);
        assert!(
            inside(lng, lat, &ring),
            "{id}: the store lies outside its own zone"
        );
        for (x, y) in &ring {
            // Within about 4 km of the store.
            assert!(
                (x - lng).abs() < 0.06 && (y - lat).abs() < 0.04,
                "{id}: far point"
            );
        }

        let days = store["hours"].as_object().unwrap();
        let names: Vec<&str> = days.keys().map(String::as_str).collect();
        let mut expected = vec!["fri", "mon", "sat", "sun", "thu", "tue", "wed"];
        expected.sort_unstable();
        assert_eq!(names, expected, "{id}: hours need every day");
        for (day, spans) in days {
            for span in spans.as_array().unwrap() {
                let span = span.as_array().unwrap();
                assert_eq!(span.len(), 2, "{id} {day}");
                for time in span {
                    let time = time.as_str().unwrap();
                    let (h, m) = time.split_once(':').unwrap();
                    assert!(h.len() == 2 && m.len() == 2, "{id} {day}: {time}");
                    assert!(h.parse::<u8>().unwrap() < 24 && m.parse::<u8>().unwrap() < 60);
                }
            }
        }
    }

    // Each city's channels, in each platform's id style.
    for store in &stores {
        let id = store["id"].as_str().unwrap();
        let channels = store["channels"].as_object().unwrap();
        // Our own channels name the store by its code, everywhere; each city has the
        // platforms of its market (more may be added with new channels).
        for own in ["own_app", "pos"] {
            assert_eq!(
                channels.get(own).and_then(Value::as_str),
                Some(id),
                "{id}: {own}"
            );
        }
        let names: BTreeSet<&str> = channels.keys().map(String::as_str).collect();
        let market: BTreeSet<&str> = match store["currency"].as_str().unwrap() {
            "USD" => ["uber_eats", "doordash", "google"].into(),
            "GBP" => ["uber_eats", "deliveroo", "google"].into(),
            "CNY" => ["meituan", "eleme", "dianping"].into(),
            other => panic!("{id}: unexpected currency {other}"),
        };
        assert!(
            names.is_superset(&market),
            "{id}: {names:?} lacks some of {market:?}"
        );
        if let Some(uber) = channels.get("uber_eats") {
            assert!(
                uuid::Uuid::parse_str(uber.as_str().unwrap()).is_ok(),
                "{id}: uber id"
            );
        }
        for numeric in ["eleme", "deliveroo"] {
            if let Some(value) = channels.get(numeric) {
                assert!(
                    value.as_str().unwrap().bytes().all(|b| b.is_ascii_digit()),
                    "{id}: {numeric}"
                );
            }
        }
    }
}

/// PLU → prices by currency, over items and (nested) options.
fn menu_prices() -> BTreeMap<String, BTreeMap<String, i64>> {
    fn walk(entry: &Value, prices: &mut BTreeMap<String, BTreeMap<String, i64>>) {
        let plu = text(&entry["plu"], "plu").to_owned();
        let by_currency: BTreeMap<String, i64> = entry["prices"]
            .as_object()
            .unwrap_or_else(|| panic!("{plu}: prices is not an object"))
            .iter()
            .map(|(currency, minor)| {
                let minor = minor
                    .as_i64()
                    .unwrap_or_else(|| panic!("{plu}: {currency} price is not an integer"));
                assert!(minor >= 0, "{plu}: negative price");
                (currency.clone(), minor)
            })
            .collect();
        let currencies: Vec<&str> = by_currency.keys().map(String::as_str).collect();
        assert_eq!(
            currencies,
            ["CNY", "GBP", "USD"],
            "{plu}: USD, GBP and CNY prices"
        );
        if let Some(previous) = prices.insert(plu.clone(), by_currency.clone()) {
            assert_eq!(previous, by_currency, "{plu} has two prices");
        }
        for group in array(&entry["modifier_groups"], "modifier_groups") {
            let min = number(&group["min"], "min");
            let max = number(&group["max"], "max");
            assert!(min <= max && max >= 1.0, "{plu}: group {}", group["id"]);
            for option in array(&group["options"], "options") {
                walk(option, prices);
            }
        }
    }
    let menu = load("chain/menu.json");
    let items = array(&menu["items"], "items");
    assert!(items.len() >= 12, "{} items", items.len());
    let mut prices = BTreeMap::new();
    for item in items {
        walk(item, &mut prices);
    }
    let categories: BTreeSet<&str> = items
        .iter()
        .map(|i| text(&i["category"], "category"))
        .collect();
    assert_eq!(categories, ["dessert", "drink", "pizza", "side"].into());
    let has_options =
        |option: &Value| !array(&option["modifier_groups"], "modifier_groups").is_empty();
    let nested = items.iter().any(|item| {
        array(&item["modifier_groups"], "modifier_groups")
            .iter()
            .any(|group| array(&group["options"], "options").iter().any(has_options))
    });
    assert!(nested, "some option carries its own modifier group");
    prices
}

#[test]
fn the_menu_is_well_formed() {
    assert!(menu_prices().contains_key("PZ-MARG-L"));
}

#[test]
fn own_app_fixtures_use_the_chain() {
    let prices = menu_prices();
    let stores = stores();
    let store_ids: BTreeSet<&str> = stores.iter().map(|s| s["id"].as_str().unwrap()).collect();
    fn check_prices(
        entry: &Value,
        currency: &str,
        prices: &BTreeMap<String, BTreeMap<String, i64>>,
        name: &str,
    ) {
        let sku = entry["sku"].as_str().unwrap();
        let menu = prices
            .get(sku)
            .unwrap_or_else(|| panic!("{name}: `{sku}` is not on the menu"));
        if !entry["removed"].as_bool().unwrap_or(false) {
            assert_eq!(
                entry["unit_price"].as_i64(),
                Some(menu[currency]),
                "{name}: {sku}"
            );
        }
        for modifier in entry["modifiers"].as_array().into_iter().flatten() {
            check_prices(modifier, currency, prices, name);
        }
    }
    let mut orders = 0;
    for entry in std::fs::read_dir(fixtures().join("own_app")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.ends_with(".body") {
            continue;
        }
        let body = load(&format!("own_app/{name}"));
        let Some(order) = body.get("order") else {
            continue;
        };
        orders += 1;
        let currency = order["currency"].as_str().unwrap();
        if let Some(store) = order["store_id"].as_str() {
            assert!(store_ids.contains(store), "{name}: unknown store {store}");
            let store = stores.iter().find(|s| s["id"] == store).unwrap();
            assert_eq!(store["currency"], currency, "{name}");
        }
        if let Some(delivery) = order.get("delivery") {
            let (lng, lat) = location(&delivery["location"]);
            let covering: Vec<&str> = stores
                .iter()
                .filter(|s| inside(lng, lat, &ring(s)))
                .map(|s| s["id"].as_str().unwrap())
                .collect();
            assert!(
                !covering.is_empty(),
                "{name}: no store delivers to ({lat}, {lng})"
            );
            for id in covering {
                let store = stores.iter().find(|s| s["id"] == id).unwrap();
                assert_eq!(store["currency"], currency, "{name}");
            }
        }
        for item in order["items"].as_array().unwrap() {
            check_prices(item, currency, &prices, &name);
        }
    }
    assert!(orders >= 5);
}
