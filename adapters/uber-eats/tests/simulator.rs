//! The adapter against its simulator, over real HTTP on loopback: webhook signing,
//! notify-then-fetch with a cached OAuth token, status pushes in both API generations,
//! token revocation (401 → refresh → retry), faults, duplicates, forged signatures,
//! cancellations, the unified status the simulator reads back, saved orders served as
//! they are (held until released) and the `/_sim` control endpoints.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use chrono::{TimeDelta, Utc};
use crossdock_adapter_uber_eats::simulator::{SimConfig, UberEatsSim};
use crossdock_adapter_uber_eats::{
    DEV_CLIENT_SECRET, Generation, SIGNATURE_HEADER, UberEats, UberEatsConfig,
};
use crossdock_channel::sim::{
    Fault, SampleFulfillment, SampleItem, SampleOrder, SimServer, next_heard,
};
use crossdock_channel::{Channel, ChannelError, FetchRef, Inbound, InboundRequest, PushOutcome};
use crossdock_model::{
    DeliveredBy, FulfillmentKind, NewOrder, Order, OrderId, Status, StatusAction, StatusChange,
    Timing,
};
use secrecy::SecretString;
use tokio::sync::mpsc;

/// A stand-in for the hub's webhook endpoint: records each request, answers 200 empty.
struct Receiver {
    server: SimServer,
    received: mpsc::UnboundedReceiver<(HeaderMap, Bytes)>,
}

impl Receiver {
    async fn start() -> Receiver {
        let (tx, received) = mpsc::unbounded_channel();
        let app = Router::new()
            .route(
                "/webhooks/uber_eats",
                post(
                    |State(tx): State<mpsc::UnboundedSender<(HeaderMap, Bytes)>>,
                     headers: HeaderMap,
                     body: Bytes| async move {
                        let _ = tx.send((headers, body));
                    },
                ),
            )
            .with_state(tx);
        let server = SimServer::serve(app, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("receiver");
        Receiver { server, received }
    }

    fn url(&self) -> String {
        format!("{}/webhooks/uber_eats", self.server.base_url())
    }

    async fn next(&mut self) -> InboundRequest {
        let (headers, body) = tokio::time::timeout(Duration::from_secs(5), self.received.recv())
            .await
            .expect("a webhook within 5 s")
            .expect("receiver open");
        InboundRequest {
            method: crossdock_channel::Method::POST,
            event: None,
            url: self.url(),
            query: None,
            headers,
            body,
            received_at: Utc::now(),
        }
    }
}

struct Setup {
    sim: UberEatsSim,
    hub: Receiver,
    adapter: UberEats,
}

async fn setup(api: Generation, delivery_by_restaurant: bool) -> Setup {
    setup_with(SimConfig {
        api,
        delivery_by_restaurant,
        ..SimConfig::default()
    })
    .await
}

/// A simulator started with `config` (its webhooks go to a fresh receiver) and an adapter
/// pointed at it.
async fn setup_with(config: SimConfig) -> Setup {
    let hub = Receiver::start().await;
    let sim = UberEatsSim::start(SimConfig {
        hub_webhook_url: hub.url(),
        ..config
    })
    .await
    .expect("simulator");
    let adapter = UberEats::new(
        UberEatsConfig {
            base_url: sim.base_url(),
            token_url: sim.token_url(),
            timeout_secs: 5,
            ..UberEatsConfig::default()
        },
        SecretString::from(DEV_CLIENT_SECRET),
        reqwest::Client::new(),
    )
    .expect("adapter");
    Setup { sim, hub, adapter }
}

fn item(plu: &str, name: &str, quantity: i64, unit: i64, modifiers: Vec<SampleItem>) -> SampleItem {
    SampleItem {
        plu: plu.to_owned(),
        name: name.to_owned(),
        quantity,
        unit_price_minor: unit,
        notes: None,
        modifiers,
    }
}

fn sample() -> SampleOrder {
    let mut pizza = item(
        "PZ-MARG-L",
        "Margherita Pizza (Large)",
        2,
        1899,
        vec![
            item(
                "PZ-XTRA-BASIL",
                "Extra Basil",
                1,
                150,
                vec![item("PZ-XTRA-OIL", "Chili Oil Drizzle", 1, 50, vec![])],
            ),
            item("PZ-ING-OREGANO", "Oregano", 0, 0, vec![]),
        ],
    );
    pizza.notes = Some("Well done".to_owned());
    SampleOrder {
        store_ref: Some("b7e1c9a2-5d34-4f8b-9e21-6a0c3d7f4e18".to_owned()),
        currency: "USD".to_owned(),
        fulfillment: SampleFulfillment::Delivery {
            lat: 40.7458,
            lng: -73.9987,
            address_lines: vec!["350 W 23rd St".to_owned(), "Apt 5C".to_owned()],
            city: "New York".to_owned(),
            postcode: "10011".to_owned(),
            country: "US".to_owned(),
        },
        customer_name: "Ada Lovelace".to_owned(),
        customer_phone: Some("+1 212-555-0199".to_owned()),
        items: vec![
            pizza,
            item("DR-COLA-330", "Coca-Cola 330ml", 1, 299, vec![]),
        ],
        notes: Some("No onions, please".to_owned()),
        delivery_fee_minor: 299,
        tip_minor: 300,
        discount_minor: 200,
        scheduled_for: None,
    }
}

fn stored(order: NewOrder, status: Status) -> Order {
    Order {
        id: OrderId::new(),
        received_at: Utc::now(),
        updated_at: Utc::now(),
        status,
        store_id: None,
        flags: vec![],
        order,
    }
}

/// Receives the notification, verifies and parses it, and returns its fetch reference.
async fn notified(setup: &mut Setup) -> FetchRef {
    let request = setup.hub.next().await;
    setup
        .adapter
        .verify(&request)
        .expect("signed by the simulator");
    match setup.adapter.parse(&request).expect("parse").inbound {
        Inbound::Fetch(reference) => reference,
        other => panic!("expected a fetch, got {other:?}"),
    }
}

fn assert_matches_sample(order: &NewOrder, sample: &SampleOrder) {
    assert_eq!(order.totals.subtotal.minor, sample.subtotal_minor());
    assert_eq!(order.totals.total.minor, sample.total_minor());
    assert_eq!(order.totals.fees.delivery.minor, sample.delivery_fee_minor);
    assert_eq!(order.totals.tip.minor, sample.tip_minor);
    assert_eq!(
        order.totals.discounts[0].amount.minor,
        sample.discount_minor
    );
    assert_eq!(order.check(), Ok(vec![]), "the simulator's money adds up");
    assert_eq!(order.customer.name, "Ada Lovelace");
    assert_eq!(order.customer.phone.as_deref(), Some("+1 212-555-0199"));
    assert!(order.customer.phone_pin.is_some());
    assert_eq!(order.notes.as_deref(), Some("No onions, please"));
    assert_eq!(order.display_code.as_ref().map(String::len), Some(5));
    assert_eq!(
        order.channel_store_ref.as_deref(),
        Some("b7e1c9a2-5d34-4f8b-9e21-6a0c3d7f4e18")
    );
    let pizza = &order.lines[0];
    assert_eq!(pizza.plu.as_deref(), Some("PZ-MARG-L"));
    assert_eq!(pizza.quantity, 2);
    assert_eq!(pizza.unit_price.minor, 1899);
    assert_eq!(pizza.total.minor, (1899 + 150 + 50) * 2);
    assert_eq!(pizza.notes.as_deref(), Some("Well done"));
    assert_eq!(pizza.modifiers.len(), 2);
    assert_eq!(pizza.modifiers[0].plu.as_deref(), Some("PZ-XTRA-BASIL"));
    assert_eq!(
        pizza.modifiers[0].modifiers[0].plu.as_deref(),
        Some("PZ-XTRA-OIL")
    );
    assert!(pizza.modifiers[1].removed);
    assert_eq!(order.lines[1].plu.as_deref(), Some("DR-COLA-330"));
}

#[tokio::test]
async fn v1_order_is_notified_fetched_with_one_cached_token_and_accepted_then_ready() {
    let mut setup = setup(Generation::V1, false).await;
    let sample = sample();
    let placed = setup.sim.place_order(&sample).await;
    assert_eq!(placed.answer.status, 200);

    let reference = notified(&mut setup).await;
    assert_eq!(reference.external_order_id, placed.external_order_id);
    assert!(reference.resource.contains("/v1/delivery/order/"));

    let order = setup.adapter.fetch(&reference).await.expect("fetch");
    let again = setup.adapter.fetch(&reference).await.expect("second fetch");
    assert_eq!(order, again);
    assert_eq!(setup.sim.token_requests(), 1, "the token is cached");
    assert_matches_sample(&order, &sample);
    assert_eq!(order.channel_data, serde_json::json!({"api": "v1"}));
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Platform));
    assert_eq!(order.fulfillment.address, None);

    let id = &placed.external_order_id;
    assert_eq!(setup.sim.order_status(id), Some(Status::Received));
    let stored = stored(order, Status::Received);
    let mut feed = setup.sim.status_feed().subscribe();
    let accepted = setup
        .adapter
        .push(
            &stored,
            &change(&stored, &StatusAction::Accept { prep_minutes: 20 }),
        )
        .await
        .expect("accept");
    assert!(matches!(accepted, PushOutcome::Delivered { .. }));
    assert_eq!(setup.sim.order_status(id), Some(Status::Accepted));
    let heard = next_heard(&mut feed).await.expect("a status heard in time");
    assert_eq!(
        (heard.external_order_id.as_str(), heard.status),
        (id.as_str(), Status::Accepted)
    );
    let ready = setup
        .adapter
        .push(&stored, &change(&stored, &StatusAction::Ready))
        .await
        .expect("ready");
    assert!(matches!(ready, PushOutcome::Delivered { .. }));
    assert_eq!(
        setup.sim.order_status(id),
        Some(Status::Ready),
        "`/ready` sets preparation_status READY_FOR_HANDOFF"
    );
    let heard = next_heard(&mut feed).await.expect("a status heard in time");
    assert_eq!(
        (heard.external_order_id.as_str(), heard.status),
        (id.as_str(), Status::Ready)
    );
    assert!(matches!(
        setup
            .adapter
            .push(&stored, &change(&stored, &StatusAction::Preparing))
            .await,
        Ok(PushOutcome::NotApplicable { .. })
    ));

    let calls = setup.sim.calls().all();
    let base = format!("/v1/delivery/order/{}", placed.external_order_id);
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert_eq!(calls[0].method, "POST");
    assert_eq!(calls[0].path, format!("{base}/accept"));
    assert_eq!(calls[0].answered, 200);
    assert_eq!(calls[0].headers["authorization"], "<redacted>");
    let ready_at = calls[0].body["ready_for_pickup_time"]
        .as_str()
        .expect("ready_for_pickup_time");
    let ready_at = chrono::DateTime::parse_from_rfc3339(ready_at).expect("RFC 3339");
    let expected = Utc::now() + TimeDelta::minutes(20);
    assert!((ready_at.timestamp() - expected.timestamp()).abs() < 30);
    assert_eq!(calls[1].path, format!("{base}/ready"));
    assert_eq!(calls[1].body, serde_json::json!({}));
    assert_eq!(calls[1].answered, 200);
    assert_eq!(
        setup.sim.order_state(&placed.external_order_id).as_deref(),
        Some("ACCEPTED")
    );
    assert_eq!(setup.sim.token_requests(), 1);
    setup.sim.stop().await;
}

#[tokio::test]
async fn a_revoked_token_is_refreshed_once_and_the_call_retried() {
    let mut setup = setup(Generation::V1, false).await;
    let placed = setup.sim.place_order(&sample()).await;
    let reference = notified(&mut setup).await;
    let order = setup.adapter.fetch(&reference).await.expect("fetch");
    assert_eq!(setup.sim.token_requests(), 1);

    setup.sim.revoke_tokens();
    let refetched = setup
        .adapter
        .fetch(&reference)
        .await
        .expect("fetch after 401");
    assert_eq!(refetched.external_order_id, placed.external_order_id);
    assert_eq!(setup.sim.token_requests(), 2, "one new token after the 401");

    setup.sim.revoke_tokens();
    let stored = stored(order, Status::Received);
    setup
        .adapter
        .push(
            &stored,
            &change(&stored, &StatusAction::Accept { prep_minutes: 10 }),
        )
        .await
        .expect("accept after 401");
    assert_eq!(setup.sim.token_requests(), 3);
    let answered: Vec<u16> = setup.sim.calls().all().iter().map(|c| c.answered).collect();
    assert_eq!(answered, vec![401, 200], "a 401, then the retried call");
    setup.sim.stop().await;
}

#[tokio::test]
async fn a_token_about_to_expire_is_refreshed_before_each_call() {
    // A lifetime within the adapter's 60 s expiry margin is cached for no time at all, so
    // every call asks for a new token first instead of sending one about to expire.
    let mut setup = setup_with(SimConfig {
        api: Generation::V1,
        token_ttl: Duration::from_secs(30),
        ..SimConfig::default()
    })
    .await;
    let placed = setup.sim.place_order(&sample()).await;
    let reference = notified(&mut setup).await;
    let mut order = None;
    for expected in 1..=3 {
        let fetched = setup.adapter.fetch(&reference).await.expect("fetch");
        assert_eq!(fetched.external_order_id, placed.external_order_id);
        assert_eq!(setup.sim.token_requests(), expected, "a new token per call");
        order = Some(fetched);
    }
    let stored = stored(order.expect("fetched"), Status::Received);
    setup
        .adapter
        .push(&stored, &change(&stored, &StatusAction::Ready))
        .await
        .expect("ready");
    assert_eq!(setup.sim.token_requests(), 4, "pushes refresh too");
    let answered: Vec<u16> = setup.sim.calls().all().iter().map(|c| c.answered).collect();
    assert_eq!(
        answered,
        vec![200],
        "the fresh token was accepted, no 401 retry"
    );
    setup.sim.stop().await;
}

#[tokio::test]
async fn an_unreadable_notified_order_is_denied_in_either_generation() {
    let reason = "Unknown item PZ-XYZ in the order";
    for api in [Generation::Classic, Generation::V1] {
        let mut setup = setup(api, false).await;
        let placed = setup.sim.place_order(&sample()).await;
        let reference = notified(&mut setup).await;
        let id = &placed.external_order_id;
        let outcome = setup
            .adapter
            .refuse_notified(&reference, reason)
            .await
            .expect("denied");
        let (path, answered, body, state) = match api {
            Generation::Classic => (
                format!("/v1/eats/orders/{id}/deny_pos_order"),
                204,
                serde_json::json!({
                    "reason": { "explanation": reason, "code": "ITEM_AVAILABILITY" }
                }),
                "DENIED",
            ),
            Generation::V1 => (
                format!("/v1/delivery/order/{id}/deny"),
                200,
                serde_json::json!({
                    "deny_reason": { "type": "ITEM_AVAILABILITY", "info": reason }
                }),
                "FAILED",
            ),
        };
        assert_eq!(
            outcome,
            PushOutcome::Delivered {
                detail: format!("POST {path} answered {answered}")
            },
            "{api:?}"
        );
        let calls = setup.sim.calls().all();
        assert_eq!(calls.len(), 1, "{api:?}: {calls:#?}");
        assert_eq!(calls[0].method, "POST");
        assert_eq!(calls[0].path, path);
        assert_eq!(calls[0].answered, answered);
        assert_eq!(calls[0].body, body, "{api:?}");
        assert_eq!(calls[0].headers["authorization"], "<redacted>");
        assert_eq!(setup.sim.order_state(id).as_deref(), Some(state));
        assert_eq!(
            setup.sim.order_status(id),
            Some(Status::Rejected),
            "{api:?}"
        );
        // A repeat (a redelivered fetch message after a crash) is safe: the order is
        // already finished on Uber, and the refusal counts as done.
        let again = setup
            .adapter
            .refuse_notified(&reference, reason)
            .await
            .expect("a repeat is not an error");
        let expected = match api {
            // Classic Uber takes a repeated deny as it took the first.
            Generation::Classic => format!("POST {path} answered 204"),
            Generation::V1 => {
                format!("POST {path} answered 409: the order is already finished on Uber")
            }
        };
        assert_eq!(
            again,
            PushOutcome::Delivered { detail: expected },
            "{api:?}"
        );
        assert_eq!(setup.sim.order_state(id).as_deref(), Some(state), "{api:?}");
        setup.sim.stop().await;
    }
}

#[tokio::test]
async fn wrong_client_credentials_are_a_permanent_error() {
    let hub = Receiver::start().await;
    let sim = UberEatsSim::start(SimConfig {
        hub_webhook_url: hub.url(),
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let adapter = UberEats::new(
        UberEatsConfig {
            base_url: sim.base_url(),
            token_url: sim.token_url(),
            ..UberEatsConfig::default()
        },
        SecretString::from("not-the-secret"),
        reqwest::Client::new(),
    )
    .expect("adapter");
    let reference = FetchRef {
        external_order_id: "abc".to_owned(),
        resource: format!("{}/v2/eats/order/abc", sim.base_url()),
        scheduled: false,
    };
    let error = adapter.fetch(&reference).await.expect_err("refused");
    assert!(
        matches!(error, ChannelError::Platform { status: 401, .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    sim.stop().await;
}

#[tokio::test]
async fn classic_order_accept_cancel_and_terminal_cancel() {
    let mut setup = setup(Generation::Classic, false).await;
    let sample = sample();
    let placed = setup.sim.place_order(&sample).await;
    let reference = notified(&mut setup).await;
    assert!(reference.resource.contains("/v2/eats/order/"));
    let order = setup.adapter.fetch(&reference).await.expect("fetch");
    assert_matches_sample(&order, &sample);
    assert_eq!(order.channel_data, serde_json::json!({"api": "classic"}));
    assert_eq!(order.payment, crossdock_model::Payment::Prepaid);

    let id = &placed.external_order_id;
    let stored = stored(order, Status::Received);
    setup
        .adapter
        .push(
            &stored,
            &change(&stored, &StatusAction::Accept { prep_minutes: 15 }),
        )
        .await
        .expect("accept");
    assert_eq!(setup.sim.order_status(id), Some(Status::Accepted));
    assert!(matches!(
        setup
            .adapter
            .push(&stored, &change(&stored, &StatusAction::Ready))
            .await,
        Ok(PushOutcome::NotApplicable { .. })
    ));
    let cancel = StatusAction::Cancel {
        reason: "Kitchen closed early".to_owned(),
    };
    setup
        .adapter
        .push(&stored, &change(&stored, &cancel))
        .await
        .expect("cancel");
    assert_eq!(setup.sim.order_status(id), Some(Status::Cancelled));
    let error = setup
        .adapter
        .push(&stored, &change(&stored, &cancel))
        .await
        .expect_err("already terminal");
    assert!(
        matches!(error, ChannelError::Platform { status: 404, .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable());

    let calls = setup.sim.calls().all();
    let base = format!("/v1/eats/orders/{}", placed.external_order_id);
    assert_eq!(calls[0].path, format!("{base}/accept_pos_order"));
    assert_eq!(calls[0].answered, 204);
    assert_eq!(calls[0].body["reason"], "accepted");
    assert_eq!(
        calls[0].body["external_reference_id"],
        stored.id.to_string()
    );
    let pickup = calls[0].body["pickup_time"].as_i64().expect("pickup_time");
    assert!((pickup - (Utc::now().timestamp() + 15 * 60)).abs() < 30);
    assert_eq!(calls[1].path, format!("{base}/cancel"));
    assert_eq!(
        calls[1].body,
        serde_json::json!({"reason": "KITCHEN_CLOSED", "details": "Kitchen closed early"})
    );
    assert_eq!(calls[2].answered, 404);
    assert_eq!(
        setup.sim.order_state(&placed.external_order_id).as_deref(),
        Some("CANCELED")
    );
    setup.sim.stop().await;
}

#[tokio::test]
async fn restaurant_delivery_exposes_the_address_and_takes_progress() {
    let mut setup = setup(Generation::Classic, true).await;
    let placed = setup.sim.place_order(&sample()).await;
    let reference = notified(&mut setup).await;
    let order = setup.adapter.fetch(&reference).await.expect("fetch");
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Delivery);
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Store));
    let address = order.fulfillment.address.clone().expect("address");
    assert!(address.lines[0].starts_with("350 W 23rd St"));
    let id = &placed.external_order_id;
    let stored = stored(order, Status::Ready);
    setup
        .adapter
        .push(
            &stored,
            &change(&stored, &StatusAction::Accept { prep_minutes: 10 }),
        )
        .await
        .expect("accept");
    assert_eq!(setup.sim.order_status(id), Some(Status::Accepted));
    setup
        .adapter
        .push(&stored, &change(&stored, &StatusAction::PickedUp))
        .await
        .expect("picked up");
    assert_eq!(
        setup.sim.order_status(id),
        Some(Status::PickedUp),
        "`restaurantdelivery/status started`"
    );
    setup
        .adapter
        .push(&stored, &change(&stored, &StatusAction::Delivered))
        .await
        .expect("delivered");
    assert_eq!(setup.sim.order_status(id), Some(Status::Delivered));
    let progress = setup.sim.calls().matching("/restaurantdelivery/status");
    let statuses: Vec<_> = progress.iter().map(|c| c.body["status"].clone()).collect();
    assert_eq!(statuses, vec!["started", "delivered"]);
    assert_eq!(
        setup.sim.order_state(&placed.external_order_id).as_deref(),
        Some("FINISHED")
    );
    setup.sim.stop().await;
}

#[tokio::test]
async fn injected_faults_become_typed_retryable_errors() {
    let mut setup = setup(Generation::V1, false).await;
    setup.sim.place_order(&sample()).await;
    let reference = notified(&mut setup).await;
    let stored = stored(
        setup.adapter.fetch(&reference).await.expect("fetch"),
        Status::Received,
    );
    let accept = StatusAction::Accept { prep_minutes: 10 };
    let mut feed = setup.sim.status_feed().subscribe();

    setup.sim.faults().push(
        Fault {
            status: Some(429),
            retry_after_s: Some(2),
            delay: None,
        },
        1,
    );
    let error = setup
        .adapter
        .push(&stored, &change(&stored, &accept))
        .await
        .expect_err("429");
    assert_eq!(
        error,
        ChannelError::RateLimited {
            retry_after: Some(Duration::from_secs(2))
        }
    );

    setup.sim.faults().push(
        Fault {
            status: Some(503),
            retry_after_s: None,
            delay: None,
        },
        1,
    );
    let error = setup
        .adapter
        .push(&stored, &change(&stored, &accept))
        .await
        .expect_err("503");
    assert!(matches!(error, ChannelError::Platform { status: 503, .. }));
    assert!(error.is_retryable());
    assert!(feed.try_recv().is_err(), "refused calls are not heard");

    setup
        .adapter
        .push(&stored, &change(&stored, &accept))
        .await
        .expect("then it works");
    let heard = next_heard(&mut feed).await.expect("a status heard in time");
    assert_eq!(
        (heard.external_order_id.as_str(), heard.status),
        (stored.order.external_order_id.as_str(), Status::Accepted)
    );
    setup
        .adapter
        .push(&stored, &change(&stored, &accept))
        .await
        .expect("a repeat is taken");
    assert!(
        feed.try_recv().is_err(),
        "a repeat that changes nothing is not heard again"
    );
    let answered: Vec<u16> = setup.sim.calls().all().iter().map(|c| c.answered).collect();
    assert_eq!(answered, vec![429, 503, 200, 200]);
    setup.sim.stop().await;
}

#[tokio::test]
async fn a_slow_platform_hits_the_request_timeout() {
    let mut setup = setup(Generation::V1, false).await;
    setup.sim.place_order(&sample()).await;
    let reference = notified(&mut setup).await;
    let order = setup.adapter.fetch(&reference).await.expect("fetch");
    let adapter = UberEats::new(
        UberEatsConfig {
            base_url: setup.sim.base_url(),
            token_url: setup.sim.token_url(),
            timeout_secs: 1,
            ..UberEatsConfig::default()
        },
        SecretString::from(DEV_CLIENT_SECRET),
        reqwest::Client::new(),
    )
    .expect("adapter");
    setup.sim.faults().push(
        Fault {
            status: None,
            retry_after_s: None,
            delay: Some(Duration::from_secs(3)),
        },
        1,
    );
    let order = stored(order, Status::Received);
    let error = adapter
        .push(&order, &change(&order, &StatusAction::Ready))
        .await
        .expect_err("timeout");
    assert!(matches!(error, ChannelError::Transport(_)), "{error:?}");
    assert!(error.is_retryable());
    setup.sim.stop().await;
}

#[tokio::test]
async fn duplicates_forgeries_cancellations_and_schedules() {
    let mut setup = setup(Generation::Classic, false).await;
    let placed = setup.sim.place_order(&sample()).await;
    let first = setup.hub.next().await;

    // A redelivery is byte-identical, hence the same dedupe key.
    let answer = setup
        .sim
        .resend_webhook(&placed.event_id)
        .await
        .expect("known event");
    assert_eq!(answer.status, 200);
    let second = setup.hub.next().await;
    assert_eq!(first.body, second.body);
    assert_eq!(
        first.headers.get(SIGNATURE_HEADER),
        second.headers.get(SIGNATURE_HEADER)
    );
    assert_eq!(
        setup.adapter.parse(&second).expect("parse").dedupe_key,
        placed.event_id
    );
    assert!(setup.sim.resend_webhook("no-such-event").await.is_none());

    // A forged signature and a missing one are refused by the adapter.
    let forged = br#"{"event_id":"x","event_type":"orders.notification"}"#.to_vec();
    setup
        .sim
        .send_webhook_raw(forged.clone(), Some("00".repeat(32)))
        .await;
    let request = setup.hub.next().await;
    assert!(matches!(
        setup.adapter.verify(&request),
        Err(ChannelError::Unauthorized(_))
    ));
    setup.sim.send_webhook_raw(forged, None).await;
    let request = setup.hub.next().await;
    assert!(matches!(
        setup.adapter.verify(&request),
        Err(ChannelError::Unauthorized(m)) if m.contains("missing")
    ));

    // The platform cancels.
    let answer = setup.sim.cancel_order(&placed.external_order_id).await;
    assert_eq!(answer.status, 200);
    let request = setup.hub.next().await;
    setup.adapter.verify(&request).expect("signed");
    assert_eq!(
        setup.adapter.parse(&request).expect("parse").inbound,
        Inbound::Cancelled {
            external_order_id: placed.external_order_id.clone(),
            reason: None
        }
    );
    assert_eq!(
        setup.sim.order_state(&placed.external_order_id).as_deref(),
        Some("CANCELED")
    );
    assert_eq!(
        setup.sim.order_status(&placed.external_order_id),
        Some(Status::Cancelled)
    );
    assert_eq!(setup.sim.order_status("no-such-order"), None);

    // A scheduled order, in both generations.
    let at = Utc::now() + TimeDelta::hours(3);
    let at = at - TimeDelta::nanoseconds(i64::from(at.timestamp_subsec_nanos()));
    let scheduled = SampleOrder {
        scheduled_for: Some(at),
        fulfillment: SampleFulfillment::Pickup,
        ..sample()
    };
    for generation in [Generation::Classic, Generation::V1] {
        setup.sim.place_order_with(&scheduled, generation).await;
        let request = setup.hub.next().await;
        let envelope: serde_json::Value = serde_json::from_slice(&request.body).expect("json");
        assert_eq!(envelope["event_type"], "orders.scheduled.notification");
        let Inbound::Fetch(reference) = setup.adapter.parse(&request).expect("parse").inbound
        else {
            panic!("expected a fetch");
        };
        let order = setup.adapter.fetch(&reference).await.expect("fetch");
        assert_eq!(
            order.fulfillment.timing,
            Timing::Scheduled { at },
            "{generation:?}"
        );
        assert_eq!(order.fulfillment.kind, FulfillmentKind::Pickup);
    }
    setup.sim.stop().await;
}

#[tokio::test]
async fn the_control_endpoints_place_orders_and_list_calls() {
    let mut setup = setup(Generation::V1, false).await;
    let http = reqwest::Client::new();
    let answer: serde_json::Value = http
        .post(format!("{}/_sim/orders", setup.sim.base_url()))
        .json(&sample())
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert_eq!(answer["webhook_status"], 200);
    let reference = notified(&mut setup).await;
    assert_eq!(
        answer["external_order_id"],
        reference.external_order_id.as_str()
    );
    let order = stored(
        setup.adapter.fetch(&reference).await.expect("fetch"),
        Status::Received,
    );
    setup
        .adapter
        .push(&order, &change(&order, &StatusAction::Ready))
        .await
        .expect("ready");
    let calls: serde_json::Value = http
        .get(format!("{}/_sim/calls", setup.sim.base_url()))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(calls.as_array().map(Vec::len), Some(1));
    assert!(
        calls[0]["path"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/ready")
    );

    let bad = http
        .post(format!("{}/_sim/orders", setup.sim.base_url()))
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status().as_u16(), 400);
    let unauthenticated = http
        .get(format!(
            "{}/v1/delivery/order/{}",
            setup.sim.base_url(),
            reference.external_order_id
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(unauthenticated.status().as_u16(), 401);
    setup.sim.stop().await;
}

/// `action` done now on `order` as it stands.
fn change(order: &Order, action: &StatusAction) -> StatusChange {
    StatusChange {
        action: action.clone(),
        from: order.status,
        at: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn the_new_api_platform_cancel_reads_back_cancelled() {
    let mut setup = setup(Generation::V1, false).await;
    let placed = setup.sim.place_order(&sample()).await;
    notified(&mut setup).await;
    assert_eq!(
        setup.sim.order_status(&placed.external_order_id),
        Some(Status::Received)
    );
    setup.sim.cancel_order(&placed.external_order_id).await;
    let request = setup.hub.next().await;
    assert!(matches!(
        setup.adapter.parse(&request).expect("parse").inbound,
        Inbound::Cancelled { .. }
    ));
    // FAILED for a reason other than POS_DENIED is a cancellation, not a rejection.
    assert_eq!(
        setup.sim.order_state(&placed.external_order_id).as_deref(),
        Some("FAILED")
    );
    assert_eq!(
        setup.sim.order_status(&placed.external_order_id),
        Some(Status::Cancelled)
    );
    setup.sim.stop().await;
}

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/uber_eats")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn saved_orders_are_served_as_uber_answered_them_once_reads_are_released() {
    let setup = setup(Generation::Classic, false).await;
    for (case, generation) in [
        ("discount_fees_tip_nyc", Generation::Classic),
        ("scheduled_merchant_delivery_v1_brooklyn", Generation::V1),
    ] {
        let answer = fixture(&format!("{case}.fetched.json"));
        let id = setup.sim.serve_order(&answer).expect("a saved order");
        let reference = FetchRef {
            external_order_id: id.clone(),
            resource: format!("{}{}", setup.sim.base_url(), generation.order_path(&id)),
            scheduled: false,
        };
        setup.sim.hold_order_reads();
        let fetch = setup.adapter.fetch(&reference);
        tokio::pin!(fetch);
        assert!(
            tokio::time::timeout(Duration::from_millis(300), &mut fetch)
                .await
                .is_err(),
            "{case}: a held read is not answered"
        );
        setup.sim.release_order_reads();
        let fetched = fetch.await.expect("answered once released");
        // Served through the simulator, the order is the one Uber answered.
        let saved = setup
            .adapter
            .parse_fetched(&reference, &answer)
            .expect("the saved answer");
        assert_eq!(fetched, saved, "{case}");
        assert_eq!(setup.sim.order_status(&id), Some(Status::Received));
    }
    assert!(setup.sim.serve_order(b"{\"order\": {}}").is_err());
    assert!(setup.sim.serve_order(b"not json").is_err());
    setup.sim.stop().await;
}
