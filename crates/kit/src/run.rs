//! The conformance checks.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use crossdock_channel::normalize::{format_headers, refusal};
use crossdock_channel::sim::{SampleFulfillment, SampleItem, SampleOrder};
use crossdock_channel::{Channel, HeaderValue, InboundRequest, Method, SecretSource};
use crossdock_hub::Settings;
use crossdock_hub::inspect::{self, NormalizeArgs};
use crossdock_model::Status;
use serde_json::{Value, json};

use crate::fixtures::{Case, CaseInput, load_cases};
use crate::harness::{Hub, StoreQueue, WAIT, repo_root, store_for, wait_for};
use crate::{FIXTURE_PUBLIC_URL, FIXTURE_TIME, Platform};

/// Runs every check of the kit: fixtures, tampering, `crossdock normalize`, the full loop.
pub async fn conformance<P: Platform>(platform: P) {
    check_fixtures(&platform);
    check_tampering(&platform);
    check_normalize_command(&platform);
    check_loop(&platform).await;
}

fn fixture_time() -> DateTime<Utc> {
    FIXTURE_TIME.parse().expect("FIXTURE_TIME is RFC 3339")
}

/// The hub's configuration file in development mode, with the fixtures' public URL.
fn settings() -> Settings {
    let mut settings = Settings::load(Some(&repo_root().join("config/crossdock.toml")))
        .expect("the hub's configuration");
    settings.http.public_url = FIXTURE_PUBLIC_URL.into();
    settings
}

/// The adapter as `serve` builds it from the hub's configuration, in development (its
/// secrets are the simulator's).
fn adapter<P: Platform>(platform: &P) -> Arc<dyn Channel> {
    let factory = platform.factory();
    let settings = settings();
    let secrets = SecretSource::new(Default::default(), true);
    crossdock_hub::channels::build_one(
        factory.as_ref(),
        &settings,
        &secrets,
        &reqwest::Client::new(),
    )
    .unwrap_or_else(|e| panic!("building {}: {e:#}", factory.id()))
}

fn fixtures_dir(channel: &str) -> PathBuf {
    repo_root().join("fixtures").join(channel)
}

fn cases<P: Platform>(platform: &P) -> (String, Vec<Case>) {
    let channel = platform.factory().id().to_owned();
    let cases = load_cases(&channel, &fixtures_dir(&channel));
    (channel, cases)
}

/// What a case normalizes to, as its expected file holds it: the value and its text.
fn document(case: &Case, channel: &dyn Channel) -> (Value, String) {
    match case.normalize(channel, fixture_time()) {
        Ok(document) => (document.to_value(), document.to_pretty() + "\n"),
        Err(error) => {
            let value = refusal(&error);
            let text = serde_json::to_string_pretty(&value).unwrap_or_default() + "\n";
            (value, text)
        }
    }
}

/// Every fixture normalizes to its expected document (`UPDATE_EXPECT=1` rewrites them);
/// at least six cases, at least one of them not an order.
pub fn check_fixtures<P: Platform>(platform: &P) {
    let adapter = adapter(platform);
    let (channel, cases) = cases(platform);
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    let mut kinds = Vec::new();
    for case in &cases {
        let (actual, text) = document(case, adapter.as_ref());
        kinds.push(actual["kind"].as_str().unwrap_or("refused").to_owned());
        if update {
            std::fs::write(&case.expected_path, text)
                .unwrap_or_else(|e| panic!("writing {}: {e}", case.expected_path.display()));
            continue;
        }
        let Ok(expected_text) = std::fs::read_to_string(&case.expected_path) else {
            failures.push(format!(
                "{}: no {} (UPDATE_EXPECT=1 writes it; read it before keeping it)",
                case.name,
                case.expected_path.display()
            ));
            continue;
        };
        let expected: Value = serde_json::from_str(&expected_text)
            .unwrap_or_else(|e| panic!("{}: {e}", case.expected_path.display()));
        if expected != actual {
            failures.push(format!(
                "{}: normalizes to\n{text}\nbut {} expects\n{expected_text}",
                case.name,
                case.expected_path.display(),
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{channel} fixtures:\n{}",
        failures.join("\n\n")
    );
    assert!(
        cases.len() >= 6,
        "{channel}: {} fixture cases in {}; the kit wants at least six (delivery, pickup with \
         nested modifiers and a note, discounts + fees + tip, scheduled, unicode, and a \
         cancellation or status event)",
        cases.len(),
        fixtures_dir(&channel).display()
    );
    // A code channel has no events of its own: each case is a redemption.
    let code_channel = cases.iter().all(|c| matches!(c.input, CaseInput::Claim(_)));
    assert!(
        code_channel
            || kinds
                .iter()
                .any(|k| k != "order" && k != "fetch" && k != "refused"),
        "{channel}: no fixture is a cancellation or status event (kinds: {kinds:?})"
    );
}

/// Changes one byte (flips its lowest bit).
fn flip(byte: &mut u8) {
    *byte ^= 0x01;
}

/// Every variant of `request` with one byte of a signed part changed, named by where.
fn tampered<P: Platform>(platform: &P, request: &InboundRequest) -> Vec<(String, InboundRequest)> {
    let signed = platform.signed();
    let mut variants = Vec::new();
    if signed.body {
        for i in 0..request.body.len() {
            let mut body = request.body.to_vec();
            flip(&mut body[i]);
            let mut variant = request.clone();
            variant.body = Bytes::from(body);
            variants.push((format!("body byte {i}"), variant));
        }
    }
    for name in signed.headers {
        let Some(value) = request.headers.get(*name) else {
            continue;
        };
        for i in 0..value.len() {
            let mut bytes = value.as_bytes().to_vec();
            flip(&mut bytes[i]);
            // A byte no HTTP client could send is not a test of the adapter.
            let Ok(value) = HeaderValue::from_bytes(&bytes) else {
                continue;
            };
            let mut variant = request.clone();
            variant.headers.insert(*name, value);
            variants.push((format!("header {name} byte {i}"), variant));
        }
    }
    if signed.query
        && let Some(query) = &request.query
    {
        for i in 0..query.len() {
            let mut bytes = query.as_bytes().to_vec();
            flip(&mut bytes[i]);
            let Ok(query) = String::from_utf8(bytes) else {
                continue;
            };
            let mut variant = request.clone();
            variant.query = Some(query);
            variants.push((format!("query byte {i}"), variant));
        }
    }
    variants
}

/// Every fixture request passes verification as saved, and fails verification or parsing
/// once any byte of its signed parts is changed.
pub fn check_tampering<P: Platform>(platform: &P) {
    let adapter = adapter(platform);
    let (channel, cases) = cases(platform);
    let signed = platform.signed();
    assert!(
        signed.body
            || signed.query
            || !signed.headers.is_empty()
            || cases.iter().all(|c| matches!(c.input, CaseInput::Claim(_))),
        "{channel}: `Platform::signed` covers nothing; every channel that receives requests authenticates them"
    );
    for case in &cases {
        let Some(request) = case.request(fixture_time()) else {
            continue;
        };
        if let Err(error) = adapter.verify(&request) {
            panic!(
                "{channel} fixture {}: fails verification as saved: {error}",
                case.name
            );
        }
        let variants = tampered(platform, &request);
        assert!(
            !variants.is_empty(),
            "{channel} fixture {}: no signed part to tamper with",
            case.name
        );
        for (place, variant) in variants {
            let passed = adapter
                .verify(&variant)
                .and_then(|()| adapter.parse(&variant))
                .is_ok();
            assert!(
                !passed,
                "{channel} fixture {}: changing {place} still passes verification and parsing",
                case.name
            );
        }
    }
}

/// The arguments of `crossdock normalize` for a case's files.
fn normalize_args(channel: &str, case: &Case) -> NormalizeArgs {
    let url = match &case.input {
        CaseInput::Request { url, .. } => Some(url.clone()),
        CaseInput::Claim(_) => None,
    };
    let method = match &case.input {
        CaseInput::Request { method, .. } => method.clone(),
        CaseInput::Claim(_) => Method::POST,
    };
    NormalizeArgs {
        channel: channel.to_owned(),
        headers: case.file(".headers"),
        body: case.file(".body"),
        url,
        method,
        fetched: case.file(".fetched.json"),
        claim: case.file(".claim.json"),
        received_at: Some(fixture_time()),
    }
}

/// `crossdock normalize` (the command's own code, with the hub's configuration file) prints
/// each fixture's expected document from its files, and refuses a copy with one signed
/// byte changed.
pub fn check_normalize_command<P: Platform>(platform: &P) {
    let (channel, cases) = cases(platform);
    let settings = settings();
    let adapter = adapter(platform);
    let scratch = std::env::temp_dir().join(format!(
        "crossdock-kit-{channel}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&scratch).expect("scratch directory");
    for case in &cases {
        let args = normalize_args(&channel, case);
        let normalized = inspect::normalize(&settings, &args).unwrap_or_else(|e| {
            panic!(
                "{channel} fixture {}: crossdock normalize: {e:#}",
                case.name
            )
        });
        let printed: Value = serde_json::from_str(&normalized.text).unwrap_or_else(|e| {
            panic!(
                "{channel} {}: normalize printed no JSON ({e}): {}",
                case.name, normalized.text
            )
        });
        let (expected, _) = document(case, adapter.as_ref());
        match expected.get("error") {
            Some(error) => {
                assert!(
                    !normalized.ok,
                    "{channel} {}: normalize passed a refused case",
                    case.name
                );
                assert_eq!(printed.get("error"), Some(error), "{channel} {}", case.name);
            }
            None => {
                assert!(
                    normalized.ok,
                    "{channel} {}: normalize refused it: {}",
                    case.name, normalized.text
                );
                assert_eq!(
                    printed, expected,
                    "{channel} {}: normalize printed another document",
                    case.name
                );
            }
        }
        let Some(request) = case.request(fixture_time()) else {
            continue;
        };
        let Some((place, variant)) = one_tampered(platform, &request) else {
            continue;
        };
        let body = scratch.join(format!("{}.body", case.name));
        let headers = scratch.join(format!("{}.headers", case.name));
        std::fs::write(&body, &variant.body).expect("write");
        std::fs::write(&headers, format_headers(&variant.headers)).expect("write");
        let url = match &variant.query {
            Some(query) => format!("{}?{query}", variant.url),
            None => variant.url.clone(),
        };
        let tampered = inspect::normalize(
            &settings,
            &NormalizeArgs {
                headers: Some(headers),
                body: Some(body),
                url: Some(url),
                ..normalize_args(&channel, case)
            },
        )
        .expect("normalize runs");
        assert!(
            !tampered.ok,
            "{channel} fixture {}: with {place} changed, crossdock normalize still passes it",
            case.name
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

/// One variant with one byte changed: in the middle of a signed body, where the order is,
/// or else in the credential.
fn one_tampered<P: Platform>(
    platform: &P,
    request: &InboundRequest,
) -> Option<(String, InboundRequest)> {
    let middle = format!("body byte {}", request.body.len() / 2);
    let mut variants = tampered(platform, request);
    let index = variants
        .iter()
        .position(|(place, _)| *place == middle)
        .or_else(|| (!variants.is_empty()).then_some(0))?;
    Some(variants.swap_remove(index))
}

/// The hub's URL for a fixture's URL: the same path and query under the running hub.
fn live_url(hub: &Hub, fixture_url: &str, query: Option<&str>) -> String {
    let path_and_query = fixture_url
        .strip_prefix(FIXTURE_PUBLIC_URL)
        .unwrap_or_else(|| panic!("fixture URL {fixture_url} is not under {FIXTURE_PUBLIC_URL}"));
    match query {
        Some(query) => format!("{}{path_and_query}?{query}", hub.base()),
        None => format!("{}{path_and_query}", hub.base()),
    }
}

async fn send(hub: &Hub, request: &InboundRequest) -> (u16, String) {
    let mut builder = hub
        .access
        .http
        .request(
            request.method.clone(),
            live_url(hub, &request.url, request.query.as_deref()),
        )
        .body(request.body.clone());
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let response = builder.send().await.expect("the hub answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

async fn count(hub: &Hub, table: &str) -> i64 {
    let client = hub.db().pool().get().await.expect("database connection");
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count")
        .get(0)
}

/// Posts every fixture's exact bytes to a running hub (a tampered copy first, which must
/// be refused and store nothing) and checks the answers.
async fn fixtures_through_the_hub<P: Platform>(
    platform: &P,
    sim: &P::Sim,
    hub: &Hub,
    adapter: &dyn Channel,
) {
    let (channel, cases) = cases(platform);
    for case in &cases {
        let Some(mut request) = case.request(Utc::now()) else {
            continue;
        };
        platform.resign(&mut request);
        if let Some(answer) = &case.fetched {
            platform.serve_fetched(sim, answer).unwrap_or_else(|e| {
                panic!(
                    "{channel} fixture {}: serving its fetched answer: {e:#}",
                    case.name
                )
            });
        }
        let (expected, _) = document(case, adapter);
        if let Some((place, variant)) = one_tampered(platform, &request) {
            let (orders, inbox, quarantine) = (
                count(hub, "orders").await,
                count(hub, "inbox").await,
                count(hub, "quarantine").await,
            );
            let (status, body) = send(hub, &variant).await;
            assert!(
                (400..500).contains(&status),
                "{channel} fixture {} with {place} changed: the hub answered {status} {body}",
                case.name
            );
            assert_eq!(
                count(hub, "orders").await,
                orders,
                "{channel} {}: tampered copy stored an order",
                case.name
            );
            assert_eq!(
                count(hub, "inbox").await,
                inbox,
                "{channel} {}: tampered copy reached the inbox",
                case.name
            );
            assert_eq!(
                count(hub, "quarantine").await,
                quarantine + 1,
                "{channel} {}: the refused copy left no quarantine record",
                case.name
            );
        }
        let (orders, inbox, quarantine) = (
            count(hub, "orders").await,
            count(hub, "inbox").await,
            count(hub, "quarantine").await,
        );
        let (status, body) = send(hub, &request).await;
        let refused = expected.get("error").is_some();
        if refused {
            assert!(
                (400..500).contains(&status),
                "{channel} fixture {} should be refused ({expected}); the hub answered {status} {body}",
                case.name
            );
            assert_eq!(
                count(hub, "orders").await,
                orders,
                "{channel} {}: a refused request stored an order",
                case.name
            );
            assert_eq!(
                count(hub, "quarantine").await,
                quarantine + 1,
                "{channel} {}: a refused request left no quarantine record",
                case.name
            );
            continue;
        }
        assert!(
            (200..300).contains(&status),
            "{channel} fixture {}: the hub answered {status} {body}",
            case.name
        );
        // A quote is answered and recorded nowhere.
        if expected["kind"] == "quote" {
            assert_eq!(
                (count(hub, "orders").await, count(hub, "inbox").await),
                (orders, inbox),
                "{channel} {}: a quote was recorded",
                case.name
            );
        }
        // An order is stored when the hub answers; a notified one once the hub fetched it
        // (wait for it, so that the counts below see a settled hub).
        if let Some(external) = expected["order"]["external_order_id"].as_str()
            && expected["kind"] != "quote"
        {
            let db = hub.db();
            let channel = channel.as_str();
            wait_for(
                &format!("{channel} fixture {}: order {external} stored", case.name),
                WAIT,
                || async move { db.order_by_external(channel, external).await.ok().flatten() },
            )
            .await;
        }
        // The platform's retry of the same bytes is answered the same way and changes
        // nothing.
        let orders = count(hub, "orders").await;
        let (again, _) = send(hub, &request).await;
        assert!(
            (200..300).contains(&again),
            "{channel} {}: replay answered {again}",
            case.name
        );
        assert_eq!(
            count(hub, "orders").await,
            orders,
            "{channel} {}: replay made an order",
            case.name
        );
    }
}

/// The chain menu's price of `plu` in `currency` (`fixtures/chain/menu.json`).
fn menu_price(menu: &Value, plu: &str, currency: &str) -> i64 {
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
    find(menu, plu)
        .and_then(|item| item["prices"][currency].as_i64())
        .unwrap_or_else(|| panic!("the chain menu has no {currency} price for {plu}"))
}

/// A pickup order at the store the channel knows as `store_ref`, priced from the chain's
/// menu in the store's currency.
fn sample(store_ref: &str, currency: &str) -> SampleOrder {
    let path = repo_root().join("fixtures/chain/menu.json");
    let menu: Value = serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let item = |plu: &str, name: &str, quantity, notes: Option<&str>, modifiers| SampleItem {
        plu: plu.into(),
        name: name.into(),
        quantity,
        unit_price_minor: menu_price(&menu, plu, currency),
        notes: notes.map(Into::into),
        modifiers,
    };
    SampleOrder {
        store_ref: Some(store_ref.to_owned()),
        currency: currency.to_owned(),
        fulfillment: SampleFulfillment::Pickup,
        customer_name: "Ada Lovelace".into(),
        customer_phone: Some("+1 212 555 0187".into()),
        items: vec![
            item(
                "PZ-MARG-L",
                "Margherita (Large)",
                2,
                Some("well done"),
                vec![item("MOD-TOP-XCHS", "Extra mozzarella", 1, None, vec![])],
            ),
            item("DR-COLA-500", "Cola (500 ml)", 1, None, vec![]),
        ],
        notes: Some("ring the bell".into()),
        delivery_fee_minor: 0,
        tip_minor: 200,
        discount_minor: 300,
        scheduled_for: None,
    }
}

/// Runs one store action and checks the platform's view afterwards: a pushed status reads
/// back as the same unified status; a skipped one leaves the platform's view alone.
async fn act_and_round_trip<P: Platform>(
    platform: &P,
    sim: &P::Sim,
    hub: &Hub,
    token: &str,
    (order_id, external): (&str, &str),
    (action, body): (&str, Value),
) {
    let before = platform.status(sim, external);
    let (status, answer) = hub
        .access
        .post(token, &format!("/orders/{order_id}/{action}"), body)
        .await;
    assert_eq!(status, 200, "store action {action}: {answer}");
    let syncs = hub.settled(order_id).await;
    let (done, state) = syncs.last().expect("the action made a sync").clone();
    let target = done.target();
    match state.as_str() {
        "delivered" => {
            let platform_view = platform.status(sim, external);
            assert_eq!(
                platform_view,
                Some(target),
                "after `{action}` the hub pushed {done:?}; the platform reads back {platform_view:?}"
            );
        }
        "skipped" => assert_eq!(
            platform.status(sim, external),
            before,
            "`{action}` was skipped (no such call on the platform), yet the platform's view changed"
        ),
        other => panic!("the sync of `{action}` ended {other}: {syncs:?}"),
    }
}

/// Places `order` on the platform and waits until the hub routed it; returns the platform's
/// id of the order and the hub's.
async fn place_and_route<P: Platform>(
    platform: &P,
    sim: &P::Sim,
    hub: &Hub,
    order: &SampleOrder,
    channel: &str,
) -> (String, String, Value) {
    let external = platform
        .place_order(sim, &hub.access, order)
        .await
        .expect("place an order on the platform");
    let view = hub.routed_order(channel, &external).await;
    let order_id = view["id"].as_str().expect("order id").to_owned();
    (external, order_id, view)
}

/// The full loop through a real hub and the platform's simulator.
pub async fn check_loop<P: Platform>(platform: &P) {
    let adapter = adapter(platform);
    let channel = adapter.id().to_string();
    let sim = platform.start().await.expect("start the simulator");
    let hub = Hub::start([(channel.clone(), platform.options(&sim))]).await;
    platform.connect(&sim, &hub.access.address);

    fixtures_through_the_hub(platform, &sim, &hub, adapter.as_ref()).await;

    let (store, store_ref, currency) = store_for(&channel);
    let token = hub.access.store_token(store.as_str()).to_owned();
    let order = sample(&store_ref, &currency);

    // Order in, worked by the store, every status back out.
    let (external, order_id, view) = place_and_route(platform, &sim, &hub, &order, &channel).await;
    assert_eq!(
        view["store_id"],
        json!(store),
        "{channel} order went to the wrong store: {view}"
    );
    hub.delivered_to_store(&order_id).await;
    for (action, body) in [
        ("accept", json!({ "prep_minutes": 12 })),
        ("preparing", json!({})),
        ("ready", json!({})),
        ("complete", json!({})),
    ] {
        act_and_round_trip(
            platform,
            &sim,
            &hub,
            &token,
            (&order_id, &external),
            (action, body),
        )
        .await;
    }

    // A store that rejects an order its channel named it for: the order waits for HQ,
    // who rejects it back to the platform.
    let (external, order_id, _) = place_and_route(platform, &sim, &hub, &order, &channel).await;
    let (status, answer) = hub
        .access
        .post(
            &token,
            &format!("/orders/{order_id}/reject"),
            json!({ "reason": "out of dough" }),
        )
        .await;
    assert_eq!(status, 200, "store reject: {answer}");
    assert_eq!(answer["next"], "hq", "{channel}: {answer}");
    let (_, attention) = hub.access.get(&hub.access.admin_token, "/attention").await;
    let waiting = attention["orders"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|item| item["order"]["id"] == order_id.as_str())
        .unwrap_or_else(|| {
            panic!("{channel}: the declined order is not on HQ's attention list: {attention}")
        });
    assert!(
        waiting["reason"]
            .as_str()
            .is_some_and(|r| r.contains("out of dough")),
        "{waiting}"
    );
    act_and_round_trip(
        platform,
        &sim,
        &hub,
        &hub.access.admin_token,
        (&order_id, &external),
        ("reject", json!({ "reason": "out of dough" })),
    )
    .await;

    // The platform cancels: the store hears at once, and nothing more is pushed.
    let (external, order_id, _) = place_and_route(platform, &sim, &hub, &order, &channel).await;
    act_and_round_trip(
        platform,
        &sim,
        &hub,
        &token,
        (&order_id, &external),
        ("accept", json!({ "prep_minutes": 10 })),
    )
    .await;
    let mut queue = StoreQueue::bind(&hub.infra.settings, store.as_str()).await;
    if platform
        .cancel(&sim, &external)
        .await
        .expect("cancel on the platform")
    {
        let db = hub.db();
        let id = crossdock_model::OrderId::parse(&order_id).expect("order id");
        wait_for("the platform's cancellation", WAIT, || async move {
            db.order(id, None)
                .await
                .ok()
                .flatten()
                .filter(|o| o.status == Status::Cancelled)
        })
        .await;
        let mut told = false;
        while let Some((kind, body)) = queue.next(WAIT).await {
            if kind == "order.cancelled" && body["order_id"] == json!(order_id) {
                told = true;
                break;
            }
        }
        assert!(
            told,
            "{channel}: the store's queue never heard of the cancellation"
        );
        let syncs_before = hub.settled(&order_id).await.len();
        let (status, _) = hub
            .access
            .post(&token, &format!("/orders/{order_id}/ready"), json!({}))
            .await;
        assert_eq!(
            status, 409,
            "{channel}: a cancelled order can still be worked"
        );
        assert_eq!(
            hub.settled(&order_id).await.len(),
            syncs_before,
            "{channel}: a push was queued after the platform cancelled"
        );
    }

    hub.stop().await;
    platform.stop(sim).await;
}
