//! The adapter against its simulator, over real HTTP on loopback: webhook signing, the
//! order as the simulator sends it, status pushes with a cached OAuth token (revoked →
//! refreshed once), Deliveroo's transitions and per-order limits, the auto-rejection,
//! status echoes, rider events, cancellations, faults, duplicates, forgeries and the
//! `/_sim` control endpoints.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use axum::routing::post;
use chrono::{TimeDelta, Utc};
use crossdock_adapter_deliveroo::simulator::{DeliverooSim, SimConfig};
use crossdock_adapter_deliveroo::{
    DEV_CLIENT_SECRET, DEV_WEBHOOK_SECRET, Deliveroo, DeliverooConfig, GUID_HEADER,
    SIGNATURE_HEADER, sign,
};
use crossdock_channel::sim::{
    Fault, SampleFulfillment, SampleItem, SampleOrder, SimServer, next_heard,
};
use crossdock_channel::{Channel, ChannelError, Inbound, InboundRequest, PushOutcome};
use crossdock_model::{
    DeliveredBy, FulfillmentKind, NewOrder, Order, OrderId, Status, StatusAction, StatusChange,
    Timing,
};
use secrecy::SecretString;
use tokio::sync::mpsc;

type Received = (String, HeaderMap, Bytes);

/// A stand-in for the hub's webhook endpoints: records each request, answers 200 empty.
struct Receiver {
    server: SimServer,
    received: mpsc::UnboundedReceiver<Received>,
}

impl Receiver {
    async fn start() -> Receiver {
        let (tx, received) = mpsc::unbounded_channel();
        let record = |State(tx): State<mpsc::UnboundedSender<Received>>,
                      OriginalUri(uri): OriginalUri,
                      headers: HeaderMap,
                      body: Bytes| async move {
            let _ = tx.send((uri.path().to_owned(), headers, body));
        };
        let app = Router::new()
            .route("/webhooks/deliveroo", post(record))
            .route("/webhooks/deliveroo/rider", post(record))
            .with_state(tx);
        let server = SimServer::serve(app, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("receiver");
        Receiver { server, received }
    }

    fn url(&self) -> String {
        format!("{}/webhooks/deliveroo", self.server.base_url())
    }

    /// The next webhook, as the hub would hand it to the adapter.
    async fn next(&mut self) -> InboundRequest {
        let (path, headers, body) =
            tokio::time::timeout(Duration::from_secs(5), self.received.recv())
                .await
                .expect("a webhook within 5 s")
                .expect("receiver open");
        InboundRequest {
            method: crossdock_channel::Method::POST,
            event: path.strip_prefix("/webhooks/deliveroo/").map(str::to_owned),
            url: format!("{}{path}", self.server.base_url()),
            query: None,
            headers,
            body,
            received_at: Utc::now(),
        }
    }

    /// No further webhook arrives within `wait`.
    async fn none_within(&mut self, wait: Duration) {
        if let Ok(Some((path, _, body))) = tokio::time::timeout(wait, self.received.recv()).await {
            panic!(
                "unexpected webhook to {path}: {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
}

struct Setup {
    sim: DeliverooSim,
    hub: Receiver,
    adapter: Deliveroo,
}

/// A simulator started with `config` (its webhooks go to a fresh receiver) and an adapter
/// pointed at it.
async fn setup_with(config: SimConfig) -> Setup {
    let hub = Receiver::start().await;
    let sim = DeliverooSim::start(SimConfig {
        hub_webhook_url: hub.url(),
        ..config
    })
    .await
    .expect("simulator");
    let adapter = Deliveroo::new(
        DeliverooConfig {
            base_url: sim.base_url(),
            token_url: sim.token_url(),
            timeout_secs: 5,
            ..DeliverooConfig::default()
        },
        SecretString::from(DEV_CLIENT_SECRET),
        SecretString::from(DEV_WEBHOOK_SECRET),
        reqwest::Client::new(),
    )
    .expect("adapter");
    Setup { sim, hub, adapter }
}

async fn setup() -> Setup {
    setup_with(SimConfig::default()).await
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
        "Margherita (Large)",
        2,
        1499,
        vec![
            item(
                "MOD-HALF-HALF",
                "Half & half",
                1,
                0,
                vec![item("MOD-HALF-PEPP", "Pepperoni (half)", 1, 80, vec![])],
            ),
            item("MOD-TOP-OLIV", "Black olives", 0, 0, vec![]),
        ],
    );
    pizza.notes = Some("Well done".to_owned());
    SampleOrder {
        store_ref: Some("631052".to_owned()),
        currency: "GBP".to_owned(),
        fulfillment: SampleFulfillment::Delivery {
            lat: 51.5371,
            lng: -0.1452,
            address_lines: vec!["12 Parkway".to_owned(), "Flat 3".to_owned()],
            city: "London".to_owned(),
            postcode: "NW1 7AA".to_owned(),
            country: "GB".to_owned(),
        },
        customer_name: "Ada Lovelace".to_owned(),
        customer_phone: Some("+44 20 7946 0991".to_owned()),
        items: vec![pizza, item("DR-COLA-500", "Cola (500 ml)", 1, 199, vec![])],
        notes: Some("No onions, please".to_owned()),
        delivery_fee_minor: 299,
        tip_minor: 200,
        discount_minor: 300,
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

fn change(from: Status, action: StatusAction) -> StatusChange {
    StatusChange {
        action,
        from,
        at: Utc::now(),
    }
}

/// Receives the next webhook, verifies and parses it.
async fn inbound(setup: &mut Setup) -> (String, Inbound) {
    let request = setup.hub.next().await;
    setup
        .adapter
        .verify(&request)
        .expect("signed by the simulator");
    let delivery = setup.adapter.parse(&request).expect("parse");
    (delivery.dedupe_key, delivery.inbound)
}

/// Places `sample` and returns the order the adapter made of the webhook.
async fn placed(setup: &mut Setup, sample: &SampleOrder) -> NewOrder {
    let placed = setup.sim.place_order(sample).await;
    assert_eq!(placed.answer.status, 200, "{placed:?}");
    let (key, inbound) = inbound(setup).await;
    assert_eq!(key, placed.guid, "the dedupe key is the sequence GUID");
    match inbound {
        Inbound::Order(order) => {
            assert_eq!(order.external_order_id, placed.external_order_id);
            *order
        }
        other => panic!("expected an order, got {other:?}"),
    }
}

fn delivered(outcome: Result<PushOutcome, ChannelError>) -> String {
    match outcome {
        Ok(PushOutcome::Delivered { detail }) => detail,
        other => panic!("expected delivered, got {other:?}"),
    }
}

#[tokio::test]
async fn an_order_arrives_whole_and_is_worked_with_one_cached_token() {
    let mut setup = setup().await;
    let sample = sample();
    let order = placed(&mut setup, &sample).await;
    assert!(order.external_order_id.starts_with("gb:"));
    assert_eq!(order.channel_store_ref.as_deref(), Some("631052"));
    assert_eq!(order.display_code.as_ref().map(String::len), Some(4));
    assert_eq!(order.fulfillment.kind, FulfillmentKind::Delivery);
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Platform));
    assert_eq!(
        order.customer.name, "Ada",
        "Deliveroo shares first names only"
    );
    assert_eq!(order.customer.phone.as_deref(), Some("+44 20 7946 0991"));
    assert!(order.customer.phone_pin.is_some());
    assert_eq!(
        order.notes.as_deref(),
        Some("No onions, please\nMargherita (Large): Well done")
    );
    let pizza = &order.lines[0];
    assert_eq!(pizza.plu.as_deref(), Some("PZ-MARG-L"));
    assert_eq!(pizza.total.minor, (1499 + 80) * 2);
    assert_eq!(
        pizza.modifiers[0].modifiers[0].plu.as_deref(),
        Some("MOD-HALF-PEPP")
    );
    assert_eq!(pizza.modifiers[1].name, "No Black olives");
    // The partner's money: no delivery fee (the rider is Deliveroo's), no tip.
    assert_eq!(order.totals.subtotal.minor, sample.subtotal_minor());
    assert_eq!(order.totals.discounts[0].amount.minor, 300);
    assert_eq!(order.totals.total.minor, sample.subtotal_minor() - 300);
    assert_eq!(order.check(), Ok(vec![]), "the simulator's money adds up");

    let id = order.external_order_id.clone();
    let mut order = stored(order, Status::Received);
    let mut feed = setup.sim.status_feed().subscribe();
    let detail = delivered(
        setup
            .adapter
            .push(
                &order,
                &change(Status::Received, StatusAction::Accept { prep_minutes: 15 }),
            )
            .await,
    );
    assert!(detail.contains("accepted answered 204"), "{detail}");
    let heard = next_heard(&mut feed).await.expect("a status heard in time");
    assert_eq!(
        (heard.external_order_id.as_str(), heard.status),
        (id.as_str(), Status::Accepted)
    );
    assert!(
        detail.contains("sync_status succeeded answered 200"),
        "{detail}"
    );
    assert_eq!(setup.sim.order_status(&id).as_deref(), Some("accepted"));
    assert_eq!(setup.sim.unified_status(&id), Some(Status::Accepted));
    assert_eq!(
        setup.sim.sync_status(&id),
        Some(("succeeded".to_owned(), None))
    );
    // Deliveroo tells of the acceptance: an echo, ignored.
    let (_, echo) = inbound(&mut setup).await;
    assert_eq!(
        echo,
        Inbound::Ignored {
            event: "order.status_update:accepted".into()
        }
    );

    for (from, action, status, stage) in [
        (
            Status::Accepted,
            StatusAction::Preparing,
            Status::Preparing,
            "in_kitchen",
        ),
        (
            Status::Preparing,
            StatusAction::Ready,
            Status::Ready,
            "ready_for_collection",
        ),
        (
            Status::Ready,
            StatusAction::PickedUp,
            Status::PickedUp,
            "collected",
        ),
    ] {
        order.status = from;
        delivered(setup.adapter.push(&order, &change(from, action)).await);
        assert_eq!(setup.sim.unified_status(&id), Some(status));
        assert_eq!(setup.sim.prep_stage(&id).as_deref(), Some(stage));
        let heard = next_heard(&mut feed).await.expect("a status heard in time");
        assert_eq!(
            (heard.external_order_id.as_str(), heard.status),
            (id.as_str(), status)
        );
    }
    assert!(
        feed.try_recv().is_err(),
        "the sync status was not heard, nor anything twice"
    );
    let skipped = setup
        .adapter
        .push(&order, &change(Status::PickedUp, StatusAction::Complete))
        .await;
    assert!(
        matches!(skipped, Ok(PushOutcome::NotApplicable { .. })),
        "{skipped:?}"
    );
    assert_eq!(setup.sim.unified_status(&id), Some(Status::PickedUp));

    let calls = setup.sim.calls().all();
    let made: Vec<(String, String)> = calls
        .iter()
        .map(|c| (c.method.clone(), c.path.replace(&id, "{id}")))
        .collect();
    assert_eq!(
        made,
        [
            ("PATCH".to_owned(), "/order/v1/orders/{id}".to_owned()),
            (
                "POST".to_owned(),
                "/order/v1/orders/{id}/sync_status".to_owned()
            ),
            (
                "POST".to_owned(),
                "/order/v1/orders/{id}/prep_stage".to_owned()
            ),
            (
                "POST".to_owned(),
                "/order/v1/orders/{id}/prep_stage".to_owned()
            ),
            (
                "POST".to_owned(),
                "/order/v1/orders/{id}/prep_stage".to_owned()
            ),
        ]
    );
    assert_eq!(calls[0].body, serde_json::json!({"status": "accepted"}));
    assert_eq!(calls[4].body["stage"], "collected");
    assert_eq!(calls[0].headers["authorization"], "<redacted>");
    assert_eq!(setup.sim.token_requests(), 1, "one token for every call");
    setup.sim.stop().await;
}

#[tokio::test]
async fn a_revoked_token_is_refreshed_once_and_the_call_retried() {
    let mut setup = setup().await;
    let order = stored(placed(&mut setup, &sample()).await, Status::Received);
    delivered(
        setup
            .adapter
            .push(
                &order,
                &change(Status::Received, StatusAction::Accept { prep_minutes: 10 }),
            )
            .await,
    );
    setup.sim.revoke_tokens();
    delivered(
        setup
            .adapter
            .push(&order, &change(Status::Accepted, StatusAction::Preparing))
            .await,
    );
    let answered: Vec<u16> = setup.sim.calls().all().iter().map(|c| c.answered).collect();
    assert_eq!(answered, [204, 200, 401, 200]);
    assert_eq!(setup.sim.token_requests(), 2);
    setup.sim.stop().await;
}

#[tokio::test]
async fn a_short_lived_token_is_renewed_before_it_runs_out() {
    // Tokens of 60 s are inside the client's 60 s margin: each call takes a fresh one.
    let mut setup = setup_with(SimConfig {
        token_ttl: Duration::from_secs(60),
        ..SimConfig::default()
    })
    .await;
    let order = stored(placed(&mut setup, &sample()).await, Status::Received);
    delivered(
        setup
            .adapter
            .push(
                &order,
                &change(Status::Received, StatusAction::Accept { prep_minutes: 10 }),
            )
            .await,
    );
    assert_eq!(setup.sim.token_requests(), 2, "one per call");
    assert!(setup.sim.calls().all().iter().all(|c| c.answered < 300));
    setup.sim.stop().await;
}

#[tokio::test]
async fn wrong_client_credentials_are_a_permanent_error() {
    let mut setup = setup().await;
    let order = stored(placed(&mut setup, &sample()).await, Status::Received);
    let adapter = Deliveroo::new(
        DeliverooConfig {
            base_url: setup.sim.base_url(),
            token_url: setup.sim.token_url(),
            ..DeliverooConfig::default()
        },
        SecretString::from("wrong-secret"),
        SecretString::from(DEV_WEBHOOK_SECRET),
        reqwest::Client::new(),
    )
    .expect("adapter");
    let error = adapter
        .push(
            &order,
            &change(Status::Received, StatusAction::Accept { prep_minutes: 10 }),
        )
        .await
        .expect_err("refused");
    assert!(!error.is_retryable(), "{error}");
    assert!(
        error.to_string().contains("refused the client credentials"),
        "{error}"
    );
    assert!(
        setup.sim.calls().all().is_empty(),
        "no API call without a token"
    );
    setup.sim.stop().await;
}

#[tokio::test]
async fn a_scheduled_order_is_accepted_and_confirmed_and_only_it() {
    let mut setup = setup_with(SimConfig {
        sync_interval: Duration::from_millis(100),
        ..SimConfig::default()
    })
    .await;
    let mut scheduled = sample();
    scheduled.fulfillment = SampleFulfillment::Pickup;
    let due = Utc::now() + TimeDelta::hours(5);
    scheduled.scheduled_for = Some(due);
    let order = placed(&mut setup, &scheduled).await;
    assert!(matches!(order.fulfillment.timing, Timing::Scheduled { .. }));
    assert!(
        order.fulfillment.accept_by.is_some_and(|by| by < due),
        "confirm_at"
    );
    let id = order.external_order_id.clone();
    let order = stored(order, Status::Received);
    let detail = delivered(
        setup
            .adapter
            .push(
                &order,
                &change(Status::Received, StatusAction::Accept { prep_minutes: 10 }),
            )
            .await,
    );
    assert!(detail.contains("confirmed answered 204"), "{detail}");
    assert_eq!(setup.sim.order_status(&id).as_deref(), Some("confirmed"));
    assert_eq!(setup.sim.unified_status(&id), Some(Status::Accepted));
    // A repeat of the whole push (a retry after a crash) is a no-op: 409s count as done.
    setup.sim.clock().advance(Duration::from_millis(150));
    let again = delivered(
        setup
            .adapter
            .push(
                &order,
                &change(Status::Received, StatusAction::Accept { prep_minutes: 10 }),
            )
            .await,
    );
    assert!(again.contains("accepted answered 409"), "{again}");
    // Deliveroo told of both changes (in either order); the repeat changed nothing.
    let mut echoes = Vec::new();
    for _ in 0..2 {
        echoes.push(inbound(&mut setup).await.1);
    }
    for status in ["accepted", "confirmed"] {
        let echo = Inbound::Ignored {
            event: format!("order.status_update:{status}"),
        };
        assert!(echoes.contains(&echo), "{echoes:?}");
    }

    // An ASAP order cannot be confirmed: Deliveroo answers 400.
    let asap = placed(&mut setup, &sample()).await;
    let token = token(&setup).await;
    let http = reqwest::Client::new();
    let url = format!(
        "{}/order/v1/orders/{}",
        setup.sim.base_url(),
        asap.external_order_id
    );
    let answer = http
        .patch(&url)
        .bearer_auth(&token)
        .json(&serde_json::json!({"status": "accepted"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(answer.status(), 204);
    let answer = http
        .patch(&url)
        .bearer_auth(&token)
        .json(&serde_json::json!({"status": "confirmed"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(answer.status(), 400);
    setup.sim.stop().await;
}

async fn token(setup: &Setup) -> String {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(setup.sim.token_url())
        .form(&[
            ("client_id", "crossdock-dev-deliveroo"),
            ("client_secret", DEV_CLIENT_SECRET),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["expires_in"], 300);
    assert_eq!(answer["token_type"], "Bearer");
    answer["access_token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn a_rejection_is_patched_and_its_echo_cancels_nothing_more() {
    let mut setup = setup().await;
    let order = placed(&mut setup, &sample()).await;
    let id = order.external_order_id.clone();
    let order = stored(order, Status::Received);
    delivered(
        setup
            .adapter
            .push(
                &order,
                &change(
                    Status::Received,
                    StatusAction::Reject {
                        reason: "Too busy right now".into(),
                    },
                ),
            )
            .await,
    );
    assert_eq!(setup.sim.unified_status(&id), Some(Status::Rejected));
    let calls = setup.sim.calls().all();
    assert_eq!(
        calls[0].body,
        serde_json::json!({"status": "rejected", "reject_reason": "busy", "notes": "Too busy right now"})
    );
    // Deliveroo's status update for it: a cancellation the hub ignores for a final order.
    let (_, echo) = inbound(&mut setup).await;
    assert!(
        matches!(&echo, Inbound::Cancelled { external_order_id, .. } if *external_order_id == id),
        "{echo:?}"
    );
    // Accepting a rejected order: 409, counted as done (Deliveroo has the truth).
    let detail = delivered(
        setup
            .adapter
            .push(
                &order,
                &change(Status::Received, StatusAction::Accept { prep_minutes: 10 }),
            )
            .await,
    );
    assert!(detail.contains("409"), "{detail}");
    setup.sim.stop().await;
}

#[tokio::test]
async fn an_order_nobody_accepts_is_auto_rejected_and_the_hub_told() {
    let mut setup = setup_with(SimConfig {
        auto_reject_after: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await;
    let order = placed(&mut setup, &sample()).await;
    let id = order.external_order_id.clone();
    let (_, update) = inbound(&mut setup).await;
    match update {
        Inbound::Cancelled {
            external_order_id,
            reason: Some(reason),
        } => {
            assert_eq!(external_order_id, id);
            assert!(reason.contains("not accepted in time"), "{reason}");
        }
        other => panic!("expected the auto-rejection, got {other:?}"),
    }
    assert_eq!(setup.sim.order_status(&id).as_deref(), Some("rejected"));
    assert_eq!(setup.sim.unified_status(&id), Some(Status::Rejected));
    setup.sim.stop().await;
}

#[tokio::test]
async fn deliveroo_per_order_limits_answer_429_with_retry_after() {
    let mut setup = setup_with(SimConfig {
        sync_interval: Duration::from_millis(400),
        status_webhooks: false,
        ..SimConfig::default()
    })
    .await;
    let order = placed(&mut setup, &sample()).await;
    let id = order.external_order_id.clone();
    let token = token(&setup).await;
    let http = reqwest::Client::new();
    let base = format!("{}/order/v1/orders/{id}", setup.sim.base_url());
    // PATCH: five a minute per order, whatever they answer.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let answer = http
            .patch(&base)
            .bearer_auth(&token)
            .json(&serde_json::json!({"status": "accepted"}))
            .send()
            .await
            .expect("patch");
        statuses.push(answer.status().as_u16());
        if answer.status() == 429 {
            let wait: u64 = answer.headers()["retry-after"]
                .to_str()
                .expect("text")
                .parse()
                .expect("seconds");
            assert!((1..=60).contains(&wait), "{wait}");
        }
    }
    assert_eq!(statuses, [204, 409, 409, 409, 409, 429]);
    // sync_status: once, and one call per interval.
    let sync = |http: reqwest::Client| {
        let url = format!("{base}/sync_status");
        let token = token.clone();
        async move {
            http.post(url)
                .bearer_auth(token)
                .json(&serde_json::json!({"status": "succeeded", "occurred_at": Utc::now().to_rfc3339()}))
                .send()
                .await
                .expect("sync")
                .status()
                .as_u16()
        }
    };
    assert_eq!(sync(http.clone()).await, 200);
    assert_eq!(sync(http.clone()).await, 429, "within the interval");
    setup.sim.clock().advance(Duration::from_millis(450));
    assert_eq!(sync(http.clone()).await, 409, "a second sync status");
    // The adapter reads the limit as retryable, with the platform's wait.
    let stored_order = stored(order, Status::Received);
    let error = setup
        .adapter
        .push(
            &stored_order,
            &change(Status::Received, StatusAction::Accept { prep_minutes: 10 }),
        )
        .await
        .expect_err("rate limited");
    assert!(error.is_retryable());
    assert!(
        error.retry_after().is_some_and(|d| d.as_secs() >= 1),
        "{error:?}"
    );
    setup.sim.stop().await;
}

#[tokio::test]
async fn prep_stages_are_checked_as_deliveroo_checks_them() {
    let mut setup = setup_with(SimConfig {
        status_webhooks: false,
        ..SimConfig::default()
    })
    .await;
    let order = placed(&mut setup, &sample()).await;
    let id = order.external_order_id;
    let token = token(&setup).await;
    let http = reqwest::Client::new();
    let url = format!("{}/order/v1/orders/{id}/prep_stage", setup.sim.base_url());
    let post = |body: serde_json::Value| {
        let http = http.clone();
        let url = url.clone();
        let token = token.clone();
        async move {
            http.post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("prep stage")
                .status()
                .as_u16()
        }
    };
    let now = Utc::now();
    // Not accepted yet.
    assert_eq!(
        post(serde_json::json!({"stage": "in_kitchen", "occurred_at": now.to_rfc3339()})).await,
        409
    );
    http.patch(format!("{}/order/v1/orders/{id}", setup.sim.base_url()))
        .bearer_auth(&token)
        .json(&serde_json::json!({"status": "accepted"}))
        .send()
        .await
        .expect("accept");
    for (body, status) in [
        (
            serde_json::json!({"stage": "in_kitchen", "occurred_at": now.to_rfc3339(), "delay": 4}),
            200,
        ),
        (
            serde_json::json!({"stage": "on_the_counter", "occurred_at": now.to_rfc3339()}),
            400,
        ),
        (
            serde_json::json!({"stage": "collected", "occurred_at": (now - TimeDelta::hours(2)).to_rfc3339()}),
            400,
        ),
        (
            serde_json::json!({"stage": "collected", "occurred_at": (now + TimeDelta::minutes(20)).to_rfc3339()}),
            400,
        ),
        (
            serde_json::json!({"stage": "collected", "occurred_at": now.to_rfc3339(), "delay": 2}),
            400,
        ),
        (
            serde_json::json!({"stage": "in_kitchen", "occurred_at": now.to_rfc3339(), "delay": 3}),
            400,
        ),
        (
            serde_json::json!({"stage": "ready_for_collection", "occurred_at": now.to_rfc3339()}),
            200,
        ),
    ] {
        assert_eq!(post(body.clone()).await, status, "{body}");
    }
    assert_eq!(
        setup.sim.prep_stage(&id).as_deref(),
        Some("ready_for_collection")
    );
    // Without a token: 401.
    let answer = http
        .post(&url)
        .json(&serde_json::json!({"stage": "collected", "occurred_at": now.to_rfc3339()}))
        .send()
        .await
        .expect("post");
    assert_eq!(answer.status(), 401);
    setup.sim.stop().await;
}

#[tokio::test]
async fn injected_faults_become_typed_errors() {
    let mut setup = setup_with(SimConfig {
        status_webhooks: false,
        ..SimConfig::default()
    })
    .await;
    let order = stored(placed(&mut setup, &sample()).await, Status::Accepted);
    let preparing = change(Status::Accepted, StatusAction::Preparing);
    setup.sim.faults().push(
        Fault {
            status: Some(429),
            retry_after_s: Some(7),
            delay: None,
        },
        1,
    );
    let error = setup
        .adapter
        .push(&order, &preparing)
        .await
        .expect_err("429");
    assert_eq!(
        error,
        ChannelError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
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
        .push(&order, &preparing)
        .await
        .expect_err("503");
    assert!(matches!(error, ChannelError::Platform { status: 503, .. }));
    assert!(error.is_retryable());
    // A 4xx other than 409 is permanent: an unknown order.
    let mut unknown = order.clone();
    unknown.order.external_order_id = "gb:00000000-0000-4000-8000-000000000000".into();
    let error = setup
        .adapter
        .push(&unknown, &preparing)
        .await
        .expect_err("404");
    assert!(matches!(error, ChannelError::Platform { status: 404, .. }));
    assert!(!error.is_retryable());
    // Not accepted on Deliveroo yet: the prep stage is a 409, counted as done.
    let detail = delivered(setup.adapter.push(&order, &preparing).await);
    assert!(detail.contains("409"), "{detail}");
    setup.sim.stop().await;
}

#[tokio::test]
async fn a_slow_platform_hits_the_request_timeout() {
    let mut setup = setup_with(SimConfig {
        status_webhooks: false,
        ..SimConfig::default()
    })
    .await;
    let order = stored(placed(&mut setup, &sample()).await, Status::Received);
    let adapter = Deliveroo::new(
        DeliverooConfig {
            base_url: setup.sim.base_url(),
            token_url: setup.sim.token_url(),
            timeout_secs: 1,
            ..DeliverooConfig::default()
        },
        SecretString::from(DEV_CLIENT_SECRET),
        SecretString::from(DEV_WEBHOOK_SECRET),
        reqwest::Client::new(),
    )
    .expect("adapter");
    setup.sim.faults().push(
        Fault {
            status: None,
            retry_after_s: None,
            delay: Some(Duration::from_millis(1500)),
        },
        1,
    );
    let error = adapter
        .push(
            &order,
            &change(Status::Received, StatusAction::Accept { prep_minutes: 10 }),
        )
        .await
        .expect_err("timeout");
    assert!(matches!(error, ChannelError::Transport(_)), "{error:?}");
    assert!(error.is_retryable());
    setup.sim.stop().await;
}

#[tokio::test]
async fn restaurant_deliveries_carry_the_address_and_tabletless_sites_skip_sync() {
    let mut setup = setup_with(SimConfig {
        restaurant_delivery: true,
        tabletless: true,
        status_webhooks: false,
        ..SimConfig::default()
    })
    .await;
    let sample = sample();
    let order = placed(&mut setup, &sample).await;
    assert_eq!(order.fulfillment.delivered_by, Some(DeliveredBy::Store));
    let address = order.fulfillment.address.as_ref().expect("address");
    assert_eq!(address.lines, ["12 Parkway", "Flat 3"]);
    assert_eq!(address.postcode.as_deref(), Some("NW1 7AA"));
    assert_eq!(address.country.as_deref(), Some("GB"));
    assert_eq!(
        order.customer.name, "Ada Lovelace",
        "delivery.customer_name"
    );
    assert_eq!(order.totals.fees.delivery.minor, 299);
    assert_eq!(
        order.totals.total.minor,
        sample.subtotal_minor() - 300 + 299
    );
    assert_eq!(order.check(), Ok(vec![]));
    let order = stored(order, Status::Received);
    delivered(
        setup
            .adapter
            .push(
                &order,
                &change(Status::Received, StatusAction::Accept { prep_minutes: 10 }),
            )
            .await,
    );
    let paths: Vec<String> = setup
        .sim
        .calls()
        .all()
        .iter()
        .map(|c| c.path.clone())
        .collect();
    assert_eq!(
        paths.len(),
        1,
        "no sync_status for a tabletless site: {paths:?}"
    );
    setup.sim.stop().await;
}

#[tokio::test]
async fn riders_cancellations_duplicates_and_forgeries() {
    let mut setup = setup_with(SimConfig {
        status_webhooks: false,
        ..SimConfig::default()
    })
    .await;
    let order = placed(&mut setup, &sample()).await;
    let id = order.external_order_id.clone();
    delivered(
        setup
            .adapter
            .push(
                &stored(order, Status::Received),
                &change(Status::Received, StatusAction::Accept { prep_minutes: 10 }),
            )
            .await,
    );

    // A rider picks the order up: progress on the rider events URL.
    let answer = setup
        .sim
        .rider_update(&id, "rider_assigned")
        .await
        .expect("order");
    assert_eq!(answer.status, 200);
    let (_, assigned) = inbound(&mut setup).await;
    assert_eq!(
        assigned,
        Inbound::Ignored {
            event: "rider.status_update:rider_assigned".into()
        }
    );
    setup
        .sim
        .rider_update(&id, "rider_in_transit")
        .await
        .expect("order");
    let request = setup.hub.next().await;
    assert_eq!(request.event.as_deref(), Some("rider"));
    setup.adapter.verify(&request).expect("signed");
    assert_eq!(
        setup.adapter.parse(&request).expect("parse").inbound,
        Inbound::Progress {
            external_order_id: id.clone(),
            action: StatusAction::PickedUp
        }
    );
    assert_eq!(setup.sim.unified_status(&id), Some(Status::PickedUp));

    // Deliveroo cancels (the customer called support).
    let answer = setup.sim.cancel_order(&id).await;
    assert_eq!(answer.status, 200);
    let (cancel_guid, cancelled) = inbound(&mut setup).await;
    assert!(
        matches!(cancelled, Inbound::Cancelled { ref external_order_id, .. } if *external_order_id == id)
    );
    assert_eq!(setup.sim.unified_status(&id), Some(Status::Cancelled));
    // An unknown order can be cancelled too (the hub keeps a tombstone).
    setup.sim.cancel_order("gb:unknown-order").await;
    let (_, unknown) = inbound(&mut setup).await;
    assert!(
        matches!(unknown, Inbound::Cancelled { ref external_order_id, .. } if external_order_id == "gb:unknown-order")
    );

    // A retry is the same bytes with the same GUID: the same dedupe key.
    let resent = setup
        .sim
        .resend_webhook(&cancel_guid)
        .await
        .expect("known guid");
    assert_eq!(resent.status, 200);
    let (again, _) = inbound(&mut setup).await;
    assert_eq!(again, cancel_guid);

    // A forged webhook fails verification.
    let body =
        br#"{"event":"order.status_update","body":{"order":{"id":"gb:x","status":"canceled"}}}"#
            .to_vec();
    setup
        .sim
        .send_webhook_raw(
            body.clone(),
            &[
                (GUID_HEADER.to_owned(), "forged-guid".to_owned()),
                (
                    SIGNATURE_HEADER.to_owned(),
                    sign(b"guessed-secret", "forged-guid", &body),
                ),
            ],
        )
        .await;
    let forged = setup.hub.next().await;
    assert!(matches!(
        setup.adapter.verify(&forged),
        Err(ChannelError::Unauthorized(_))
    ));
    setup.hub.none_within(Duration::from_millis(200)).await;
    setup.sim.stop().await;
}

#[tokio::test]
async fn legacy_signatures_verify_too() {
    let mut setup = setup_with(SimConfig {
        legacy_signature: true,
        ..SimConfig::default()
    })
    .await;
    let order = placed(&mut setup, &sample()).await;
    assert!(order.external_order_id.starts_with("gb:"));
    setup.sim.stop().await;
}

#[tokio::test]
async fn the_control_endpoints_place_cancel_and_list() {
    let mut setup = setup().await;
    let http = reqwest::Client::new();
    let base = setup.sim.base_url();
    let placed: serde_json::Value = http
        .post(format!("{base}/_sim/orders"))
        .json(&sample())
        .send()
        .await
        .expect("place")
        .json()
        .await
        .expect("JSON");
    assert_eq!(placed["webhook_status"], 200);
    let id = placed["external_order_id"].as_str().expect("id").to_owned();
    let (key, inbound_order) = inbound(&mut setup).await;
    assert_eq!(serde_json::json!(key), placed["guid"]);
    assert!(matches!(inbound_order, Inbound::Order(_)));
    let view: serde_json::Value = http
        .get(format!("{base}/_sim/orders/{id}"))
        .send()
        .await
        .expect("view")
        .json()
        .await
        .expect("JSON");
    assert_eq!(view["status"], "received");
    assert_eq!(view["order"]["location_id"], "631052");
    let rider: serde_json::Value = http
        .post(format!("{base}/_sim/orders/{id}/rider"))
        .json(&serde_json::json!({"status": "rider_in_transit"}))
        .send()
        .await
        .expect("rider")
        .json()
        .await
        .expect("JSON");
    assert_eq!(rider["webhook_status"], 200);
    let (_, progress) = inbound(&mut setup).await;
    assert!(matches!(progress, Inbound::Progress { .. }));
    let cancel: serde_json::Value = http
        .post(format!("{base}/_sim/orders/{id}/cancel"))
        .send()
        .await
        .expect("cancel")
        .json()
        .await
        .expect("JSON");
    assert_eq!(cancel["webhook_status"], 200);
    let (_, cancelled) = inbound(&mut setup).await;
    assert!(matches!(cancelled, Inbound::Cancelled { .. }));
    let calls: serde_json::Value = http
        .get(format!("{base}/_sim/calls"))
        .send()
        .await
        .expect("calls")
        .json()
        .await
        .expect("JSON");
    assert_eq!(calls, serde_json::json!([]), "no API call was made");
    let bad = http
        .post(format!("{base}/_sim/orders"))
        .body("{}")
        .send()
        .await
        .expect("place");
    assert_eq!(bad.status(), 400);
    setup.sim.stop().await;
}
