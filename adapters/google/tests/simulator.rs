//! The adapter against its simulator, over real HTTP on loopback: signed checkout and
//! submit requests answered by the adapter, Google's checks of those answers, the
//! service-account token (cached, refreshed after a revocation), every asynchronous
//! update and Google's state rules, rate limits, faults, duplicates, forged tokens and the
//! `/_sim` control endpoints.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::post;
use chrono::{TimeDelta, Timelike, Utc};
use crossdock_adapter_google::simulator::{
    GoogleSim, SimConfig, SimRateLimit, dev_authorization, transition_allowed,
};
use crossdock_adapter_google::{
    DEV_GOOGLE_PUBLIC_KEY, DEV_SERVICE_ACCOUNT_KEY, Google, GoogleConfig,
};
use crossdock_channel::sim::{
    Fault, SampleFulfillment, SampleItem, SampleOrder, SimServer, next_heard,
};
use crossdock_channel::{Channel, ChannelError, Inbound, InboundRequest, Outcome, PushOutcome};
use crossdock_model::{
    FulfillmentKind, NewOrder, Order, OrderId, Status, StatusAction, StatusChange,
};
use serde_json::{Value, json};

/// A stand-in for the hub: verifies, parses and answers with the adapter, remembering
/// dedupe keys (a replay is a duplicate) and the orders it took.
#[derive(Clone)]
struct MiniHub {
    adapter: Arc<Google>,
    seen: Arc<Mutex<HashSet<String>>>,
    orders: Arc<Mutex<Vec<NewOrder>>>,
    delay: Arc<Mutex<Option<Duration>>>,
}

async fn fulfill(State(hub): State<MiniHub>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let delay = *hub.delay.lock().expect("lock");
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let request = InboundRequest {
        method: crossdock_channel::Method::POST,
        event: None,
        url: "https://hub.crossdock.example/webhooks/google".to_owned(),
        query: None,
        headers,
        body,
        received_at: Utc::now(),
    };
    let adapter = &hub.adapter;
    let reply = match adapter
        .verify(&request)
        .and_then(|()| adapter.parse(&request))
    {
        Err(error) => adapter.reply(&request, Outcome::Refused(&error)),
        Ok(delivery) => match &delivery.inbound {
            Inbound::Quote(order) => adapter.reply(
                &request,
                Outcome::Quoted {
                    order,
                    verdict: Ok(()),
                },
            ),
            Inbound::Order(order) => {
                let duplicate = !hub
                    .seen
                    .lock()
                    .expect("lock")
                    .insert(delivery.dedupe_key.clone());
                if !duplicate {
                    hub.orders.lock().expect("lock").push((**order).clone());
                }
                adapter.reply(
                    &request,
                    Outcome::Accepted {
                        delivery: &delivery,
                        order_id: Some(OrderId::new()),
                        duplicate,
                    },
                )
            }
            other => panic!("unexpected {other:?}"),
        },
    };
    let mut response = (reply.status, reply.body).into_response();
    if let Some(content_type) = reply.content_type {
        response
            .headers_mut()
            .insert("content-type", content_type.parse().expect("content type"));
    }
    response
}

struct Setup {
    sim: GoogleSim,
    hub: MiniHub,
    _server: SimServer,
}

fn adapter_for(sim: &GoogleSim, key: &str) -> Google {
    let config = GoogleConfig {
        api_base_url: sim.base_url(),
        token_url: sim.token_url(),
        customer_service_url: "tel:+12125550100".to_owned(),
        ..GoogleConfig::default()
    };
    Google::new(config, DEV_GOOGLE_PUBLIC_KEY, key, reqwest::Client::new()).expect("adapter")
}

async fn setup_with(config: SimConfig) -> Setup {
    let sim = GoogleSim::start(config).await.expect("simulator");
    let hub = MiniHub {
        adapter: Arc::new(adapter_for(&sim, DEV_SERVICE_ACCOUNT_KEY)),
        seen: Arc::default(),
        orders: Arc::default(),
        delay: Arc::default(),
    };
    let app = Router::new()
        .route("/webhooks/google", post(fulfill))
        .with_state(hub.clone());
    let server = SimServer::serve(app, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("hub");
    sim.set_hub_webhook_url(format!("{}/webhooks/google", server.base_url()));
    Setup {
        sim,
        hub,
        _server: server,
    }
}

async fn setup() -> Setup {
    setup_with(SimConfig::default()).await
}

fn sample(fulfillment: SampleFulfillment) -> SampleOrder {
    SampleOrder {
        store_ref: Some("crossdockpizza-nyc-001".to_owned()),
        currency: "USD".to_owned(),
        fulfillment,
        customer_name: "Ada Lovelace".to_owned(),
        customer_phone: Some("+1 212 555 0187".to_owned()),
        items: vec![
            SampleItem {
                plu: "PZ-MARG-L".to_owned(),
                name: "Margherita (Large)".to_owned(),
                quantity: 2,
                unit_price_minor: 1899,
                notes: Some("well done".to_owned()),
                modifiers: vec![
                    SampleItem {
                        plu: "MOD-HALF-HALF".to_owned(),
                        name: "Half & half".to_owned(),
                        quantity: 1,
                        unit_price_minor: 0,
                        notes: None,
                        modifiers: vec![SampleItem {
                            plu: "MOD-HALF-PEPP".to_owned(),
                            name: "Pepperoni (half)".to_owned(),
                            quantity: 1,
                            unit_price_minor: 100,
                            notes: None,
                            modifiers: vec![],
                        }],
                    },
                    SampleItem {
                        plu: "MOD-TOP-OLIV".to_owned(),
                        name: "Black olives".to_owned(),
                        quantity: 0,
                        unit_price_minor: 150,
                        notes: None,
                        modifiers: vec![],
                    },
                ],
            },
            SampleItem {
                plu: "DR-COLA-500".to_owned(),
                name: "Cola (500 ml)".to_owned(),
                quantity: 1,
                unit_price_minor: 299,
                notes: None,
                modifiers: vec![],
            },
        ],
        notes: Some("ring the bell".to_owned()),
        delivery_fee_minor: 0,
        tip_minor: 200,
        discount_minor: 300,
        scheduled_for: None,
    }
}

fn pickup() -> SampleOrder {
    sample(SampleFulfillment::Pickup)
}

fn delivery() -> SampleOrder {
    let mut order = sample(SampleFulfillment::Delivery {
        lat: 40.7443,
        lng: -74.0022,
        address_lines: vec!["350 W 20th St".to_owned()],
        city: "New York".to_owned(),
        postcode: "10011".to_owned(),
        country: "US".to_owned(),
    });
    order.delivery_fee_minor = 299;
    order
}

fn stored(new: NewOrder, status: Status) -> Order {
    Order {
        id: OrderId::new(),
        received_at: Utc::now(),
        updated_at: Utc::now(),
        status,
        store_id: None,
        flags: vec![],
        order: new,
    }
}

fn change(action: StatusAction, from: Status) -> StatusChange {
    StatusChange {
        action,
        from,
        at: Utc::now(),
    }
}

/// Places `sample` and returns the stored order the mini hub took.
async fn placed(setup: &Setup, sample: &SampleOrder) -> (String, Order) {
    let placed = setup.sim.place_order(sample).await;
    assert_eq!(placed.answer.status, 200, "{}", placed.answer.body);
    let new = setup
        .hub
        .orders
        .lock()
        .expect("lock")
        .iter()
        .find(|o| o.external_order_id == placed.external_order_id)
        .cloned()
        .expect("the hub took the order");
    (placed.external_order_id, stored(new, Status::Received))
}

#[tokio::test]
async fn a_submitted_order_is_created_on_google_and_reads_back() {
    let setup = setup().await;
    let sample = pickup();
    let placed = setup.sim.place_order(&sample).await;
    assert_eq!(placed.answer.status, 200, "{}", placed.answer.body);
    let update = placed.update.expect("an order update");
    assert_eq!(update.order_state.state, "CREATED");
    assert_eq!(update.action_order_id, placed.external_order_id);
    let order = setup.sim.order(&placed.external_order_id).expect("kept");
    assert!(order.problems.is_empty(), "{:?}", order.problems);
    assert_eq!(
        setup.sim.status(&placed.external_order_id),
        Some(Status::Received)
    );

    // The order the hub took matches the sample: lines, nested modifiers, money.
    let orders = setup.hub.orders.lock().expect("lock").clone();
    let new = &orders[0];
    assert_eq!(
        new.channel_store_ref.as_deref(),
        Some("crossdockpizza-nyc-001")
    );
    assert_eq!(new.fulfillment.kind, FulfillmentKind::Pickup);
    assert_eq!(new.lines.len(), 2);
    let pizza = &new.lines[0];
    assert_eq!(pizza.unit_price.minor, 1899);
    assert_eq!(
        pizza.total.minor,
        sample.items[0].unit_with_modifiers_minor() * 2
    );
    assert_eq!(
        pizza.modifiers.len(),
        1,
        "the removed option is not an option"
    );
    assert_eq!(
        pizza.modifiers[0].modifiers[0].plu.as_deref(),
        Some("MOD-HALF-PEPP")
    );
    assert_eq!(pizza.notes.as_deref(), Some("well done; No Black olives"));
    assert_eq!(new.notes.as_deref(), Some("ring the bell"));
    assert_eq!(new.totals.subtotal.minor, sample.subtotal_minor());
    assert_eq!(new.totals.total.minor, sample.total_minor());
    assert_eq!(new.totals.tip.minor, 200);
    assert_eq!(new.totals.discounts[0].amount.minor, 300);
    assert_eq!(new.channel_data, json!({ "is_in_sandbox": true }));
    assert_eq!(new.check(), Ok(vec![]));

    // A delivery order too.
    let sample = delivery();
    let placed = setup.sim.place_order(&sample).await;
    assert_eq!(
        setup.sim.status(&placed.external_order_id),
        Some(Status::Received)
    );
    let orders = setup.hub.orders.lock().expect("lock").clone();
    let new = &orders[1];
    assert_eq!(new.fulfillment.kind, FulfillmentKind::Delivery);
    assert_eq!(new.totals.fees.delivery.minor, 299);
    assert_eq!(new.check(), Ok(vec![]));
}

#[tokio::test]
async fn a_checkout_is_answered_with_a_proposed_order() {
    let setup = setup().await;
    let answer = setup.sim.checkout(&delivery()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body: Value = serde_json::from_str(&answer.body).expect("json");
    let proposed = &body["finalResponse"]["richResponse"]["items"][0]["structuredResponse"]["checkoutResponse"]
        ["proposedOrder"];
    assert_eq!(proposed["cart"]["merchant"]["id"], "crossdockpizza-nyc-001");
    let subtotal = delivery().subtotal_minor();
    assert_eq!(
        proposed["otherItems"][0]["price"]["amount"]["units"],
        json!((subtotal / 100).to_string())
    );
    assert!(proposed["totalPrice"]["amount"]["currencyCode"] == "USD");
    // Nothing was stored for a checkout.
    assert!(setup.hub.orders.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn every_action_reaches_google_and_reads_back_as_the_same_status() {
    let setup = setup().await;
    let adapter = adapter_for(&setup.sim, DEV_SERVICE_ACCOUNT_KEY);
    // Pickup: accept, preparing, ready, complete.
    let (id, mut order) = placed(&setup, &pickup()).await;
    // Google hears each update taken, not the submit's answer.
    let mut feed = setup.sim.status_feed().subscribe();
    for (action, expected) in [
        (StatusAction::Accept { prep_minutes: 12 }, Status::Accepted),
        (StatusAction::Preparing, Status::Preparing),
        (StatusAction::Ready, Status::Ready),
        (StatusAction::Complete, Status::Completed),
    ] {
        let from = order.status;
        let outcome = adapter
            .push(&order, &change(action.clone(), from))
            .await
            .expect("pushed");
        assert!(
            matches!(outcome, PushOutcome::Delivered { .. }),
            "{outcome:?}"
        );
        assert_eq!(setup.sim.status(&id), Some(expected), "after {action:?}");
        assert_eq!(
            next_heard(&mut feed)
                .await
                .expect("a status heard in time")
                .into_order_status(),
            (id.clone(), expected)
        );
        order.status = expected;
    }
    // Delivery: accept, preparing, ready (not sent), picked up, delivered.
    let (id, mut order) = placed(&setup, &delivery()).await;
    for (action, expected, sent) in [
        (
            StatusAction::Accept { prep_minutes: 12 },
            Status::Accepted,
            true,
        ),
        (StatusAction::Preparing, Status::Preparing, true),
        (StatusAction::Ready, Status::Preparing, false),
        (StatusAction::PickedUp, Status::PickedUp, true),
        (StatusAction::Delivered, Status::Delivered, true),
    ] {
        let outcome = adapter
            .push(&order, &change(action.clone(), order.status))
            .await
            .expect("pushed");
        assert_eq!(
            matches!(outcome, PushOutcome::Delivered { .. }),
            sent,
            "{action:?}: {outcome:?}"
        );
        assert_eq!(setup.sim.status(&id), Some(expected), "after {action:?}");
        if sent {
            assert_eq!(
                next_heard(&mut feed)
                    .await
                    .expect("a status heard in time")
                    .into_order_status(),
                (id.clone(), expected)
            );
        }
        order.status = action.target();
    }
    assert!(feed.try_recv().is_err(), "nothing else heard");
    // One token served every update.
    assert_eq!(setup.sim.token_requests(), 1);
    let sent = setup.sim.order(&id).expect("order").updates;
    let states: Vec<&str> = sent.iter().map(|u| u.order_state.state.as_str()).collect();
    assert_eq!(
        states,
        [
            "CREATED",
            "CONFIRMED",
            "IN_PREPARATION",
            "IN_TRANSIT",
            "FULFILLED"
        ]
    );
    let calls = setup.sim.calls().matching("/v2/conversations:send");
    assert!(calls.iter().all(|c| c.answered == 200));
    assert_eq!(calls[0].headers["authorization"], "<redacted>");
}

#[tokio::test]
async fn reject_and_cancel_carry_their_reasons_and_end_the_order() {
    let setup = setup().await;
    let adapter = adapter_for(&setup.sim, DEV_SERVICE_ACCOUNT_KEY);
    let (id, order) = placed(&setup, &pickup()).await;
    adapter
        .push(
            &order,
            &change(
                StatusAction::Reject {
                    reason: "out of dough".into(),
                },
                Status::Received,
            ),
        )
        .await
        .expect("rejected");
    assert_eq!(setup.sim.status(&id), Some(Status::Rejected));
    let last = setup
        .sim
        .order(&id)
        .expect("order")
        .updates
        .pop()
        .expect("update");
    assert_eq!(
        last.rejection_info.and_then(|r| r.reason).as_deref(),
        Some("out of dough")
    );
    // A final state admits nothing more: Google refuses, permanently.
    let error = adapter
        .push(&order, &change(StatusAction::Preparing, Status::Rejected))
        .await
        .expect_err("refused");
    assert!(
        matches!(&error, ChannelError::Platform { status: 400, body } if body.contains("FAILED_PRECONDITION")),
        "{error:?}"
    );
    assert!(!error.is_retryable());

    let (id, mut order) = placed(&setup, &delivery()).await;
    adapter
        .push(
            &order,
            &change(StatusAction::Accept { prep_minutes: 5 }, Status::Received),
        )
        .await
        .expect("accepted");
    order.status = Status::Accepted;
    adapter
        .push(
            &order,
            &change(
                StatusAction::Cancel {
                    reason: "customer called to cancel".into(),
                },
                Status::Accepted,
            ),
        )
        .await
        .expect("cancelled");
    assert_eq!(setup.sim.status(&id), Some(Status::Cancelled));
    // Rejecting after confirmation is not Google's rule either.
    let (_, order) = placed(&setup, &delivery()).await;
    adapter
        .push(
            &order,
            &change(StatusAction::Accept { prep_minutes: 5 }, Status::Received),
        )
        .await
        .expect("accepted");
    let error = adapter
        .push(
            &order,
            &change(
                StatusAction::Reject {
                    reason: "late".into(),
                },
                Status::Received,
            ),
        )
        .await
        .expect_err("no reject after confirm");
    assert!(matches!(error, ChannelError::Platform { status: 400, .. }));
}

#[tokio::test]
async fn a_repeated_update_is_accepted_as_a_retry() {
    let setup = setup().await;
    let adapter = adapter_for(&setup.sim, DEV_SERVICE_ACCOUNT_KEY);
    let (id, order) = placed(&setup, &pickup()).await;
    let accept = change(StatusAction::Accept { prep_minutes: 12 }, Status::Received);
    adapter.push(&order, &accept).await.expect("first");
    adapter.push(&order, &accept).await.expect("repeat");
    assert_eq!(setup.sim.status(&id), Some(Status::Accepted));
}

#[tokio::test]
async fn a_revoked_token_is_refreshed_once_and_the_update_retried() {
    let setup = setup().await;
    let adapter = adapter_for(&setup.sim, DEV_SERVICE_ACCOUNT_KEY);
    let (id, order) = placed(&setup, &pickup()).await;
    adapter
        .push(
            &order,
            &change(StatusAction::Accept { prep_minutes: 5 }, Status::Received),
        )
        .await
        .expect("accepted");
    setup.sim.revoke_tokens();
    adapter
        .push(&order, &change(StatusAction::Preparing, Status::Accepted))
        .await
        .expect("retried with a new token");
    assert_eq!(setup.sim.token_requests(), 2);
    assert_eq!(setup.sim.status(&id), Some(Status::Preparing));
    let answered: Vec<u16> = setup
        .sim
        .calls()
        .matching("/v2/conversations:send")
        .iter()
        .map(|c| c.answered)
        .collect();
    assert_eq!(answered, [200, 401, 200]);
}

#[tokio::test]
async fn a_foreign_service_account_gets_no_token() {
    let setup = setup().await;
    // Google's own signing key is not our service account's.
    let adapter = adapter_for(&setup.sim, crossdock_adapter_google::DEV_GOOGLE_PRIVATE_KEY);
    let (_, order) = placed(&setup, &pickup()).await;
    let error = adapter
        .push(&order, &change(StatusAction::Preparing, Status::Accepted))
        .await
        .expect_err("no token");
    assert!(
        matches!(&error, ChannelError::Platform { status: 401, body } if body.contains("invalid_grant")),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    let token_calls = setup.sim.calls().matching("/token");
    assert_eq!(token_calls[0].answered, 400);
    assert_eq!(token_calls[0].body["assertion"], "<redacted>");
}

#[tokio::test]
async fn faults_and_rate_limits_are_retryable_and_the_rest_is_permanent() {
    let setup = setup_with(SimConfig {
        rate_limit: Some(SimRateLimit {
            per_second: 0.5,
            burst: 3.0,
        }),
        ..SimConfig::default()
    })
    .await;
    let adapter = adapter_for(&setup.sim, DEV_SERVICE_ACCOUNT_KEY);
    let (_, order) = placed(&setup, &pickup()).await;
    let accept = change(StatusAction::Accept { prep_minutes: 5 }, Status::Received);

    setup.sim.faults().push(
        Fault {
            status: Some(429),
            retry_after_s: Some(7),
            delay: None,
        },
        1,
    );
    let error = adapter.push(&order, &accept).await.expect_err("429");
    assert_eq!(
        error,
        ChannelError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert!(error.is_retryable());

    setup.sim.faults().push(
        Fault {
            status: Some(503),
            retry_after_s: None,
            delay: None,
        },
        1,
    );
    let error = adapter.push(&order, &accept).await.expect_err("503");
    assert!(matches!(error, ChannelError::Platform { status: 503, .. }));
    assert!(error.is_retryable());

    // Faulted calls are answered before the limiter: the burst of three is whole. Three
    // updates pass, the fourth is over the limit.
    for _ in 0..3 {
        adapter
            .push(&order, &accept)
            .await
            .expect("within the burst");
    }
    let error = adapter
        .push(&order, &accept)
        .await
        .expect_err("over the limit");
    assert!(
        matches!(error, ChannelError::RateLimited { .. }),
        "{error:?}"
    );

    // An unknown order: permanent.
    let mut unknown = order.clone();
    unknown.order.external_order_id = "00000000000000000001".into();
    setup.sim.clock().advance(Duration::from_secs(2));
    let error = adapter.push(&unknown, &accept).await.expect_err("unknown");
    assert!(
        matches!(&error, ChannelError::Platform { status: 404, .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn a_slow_answer_times_out_as_a_transport_error() {
    let setup = setup().await;
    let config = GoogleConfig {
        api_base_url: setup.sim.base_url(),
        token_url: setup.sim.token_url(),
        timeout_secs: 1,
        ..GoogleConfig::default()
    };
    let adapter = Google::new(
        config,
        DEV_GOOGLE_PUBLIC_KEY,
        DEV_SERVICE_ACCOUNT_KEY,
        reqwest::Client::new(),
    )
    .expect("adapter");
    let (_, order) = placed(&setup, &pickup()).await;
    // The token first (not delayed), then a slow update.
    adapter
        .push(
            &order,
            &change(StatusAction::Accept { prep_minutes: 5 }, Status::Received),
        )
        .await
        .expect("accepted");
    setup.sim.faults().push(
        Fault {
            status: None,
            retry_after_s: None,
            delay: Some(Duration::from_secs(3)),
        },
        1,
    );
    let error = adapter
        .push(&order, &change(StatusAction::Preparing, Status::Accepted))
        .await
        .expect_err("timeout");
    assert!(matches!(error, ChannelError::Transport(_)), "{error:?}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_resubmit_is_a_duplicate_and_keeps_the_order_state() {
    let setup = setup().await;
    let adapter = adapter_for(&setup.sim, DEV_SERVICE_ACCOUNT_KEY);
    let (id, order) = placed(&setup, &pickup()).await;
    adapter
        .push(
            &order,
            &change(StatusAction::Accept { prep_minutes: 5 }, Status::Received),
        )
        .await
        .expect("accepted");
    let again = setup.sim.resend_submit(&id).await.expect("known order");
    assert_eq!(again.status, 200);
    let body: Value = serde_json::from_str(&again.body).expect("json");
    assert_eq!(
        body["finalResponse"]["richResponse"]["items"][0]["structuredResponse"]["orderUpdate"]["actionOrderId"],
        json!(id)
    );
    assert_eq!(setup.hub.orders.lock().expect("lock").len(), 1, "one order");
    assert_eq!(setup.sim.status(&id), Some(Status::Accepted));
    assert!(setup.sim.resend_submit("unknown").await.is_none());
}

#[tokio::test]
async fn forged_or_expired_tokens_are_refused_with_401() {
    let setup = setup().await;
    let body = serde_json::to_vec(&crossdock_adapter_google::simulator::submit_request(
        &pickup(),
        "12345678901234567890",
        Utc::now(),
        true,
    ))
    .expect("json");
    let answer = setup.sim.send_raw(body.clone(), None).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    let forged = format!(
        "Bearer {}",
        crossdock_adapter_google::simulator::sign_request_jwt(
            DEV_SERVICE_ACCOUNT_KEY,
            None,
            crossdock_adapter_google::DEV_PROJECT_ID,
            Utc::now(),
        )
        .expect("sign")
    );
    assert_eq!(
        setup.sim.send_raw(body.clone(), Some(forged)).await.status,
        401
    );
    let expired = setup.sim.authorization(Utc::now() - TimeDelta::hours(2));
    let answer = setup.sim.send_raw(body.clone(), Some(expired)).await;
    assert_eq!(answer.status, 401);
    assert!(answer.body.contains("stale"), "{}", answer.body);
    assert!(setup.hub.orders.lock().expect("lock").is_empty());
    // The same body, signed now, goes through.
    let signed = setup.sim.authorization(Utc::now());
    assert_eq!(setup.sim.send_raw(body, Some(signed)).await.status, 200);
}

#[tokio::test]
async fn a_hub_slower_than_googles_deadline_is_a_failed_submit() {
    let setup = setup_with(SimConfig {
        deadline: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await;
    *setup.hub.delay.lock().expect("lock") = Some(Duration::from_secs(1));
    let placed = setup.sim.place_order(&pickup()).await;
    assert_eq!(placed.answer.status, 0, "timed out");
    assert_eq!(setup.sim.status(&placed.external_order_id), None);
    let order = setup.sim.order(&placed.external_order_id).expect("kept");
    assert!(
        order.problems[0].contains("answered 0"),
        "{:?}",
        order.problems
    );

    // Regression: the hub took the order and its router rejected it before Google had
    // read the submit's answer. The update is not refused for good (it was parked, and
    // Google never heard of the rejection): it is tried again, and goes through once
    // Google has the answer (here: Google's retry of the submit).
    *setup.hub.delay.lock().expect("lock") = None;
    let slow = placed;
    let (_, mut order) = self::placed(&setup, &pickup()).await;
    order.order.external_order_id = slow.external_order_id.clone();
    let adapter = adapter_for(&setup.sim, DEV_SERVICE_ACCOUNT_KEY);
    let reject = change(
        StatusAction::Reject {
            reason: "item unavailable".into(),
        },
        Status::Received,
    );
    let error = adapter
        .push(&order, &reject)
        .await
        .expect_err("Google has no order yet");
    assert!(error.is_retryable(), "{error:?}");
    assert!(
        error.to_string().contains("not created the order yet"),
        "{error}"
    );
    let resent = setup
        .sim
        .resend_submit(&slow.external_order_id)
        .await
        .expect("a known order");
    assert_eq!(resent.status, 200, "{}", resent.body);
    adapter
        .push(&order, &reject)
        .await
        .expect("now it is created");
    assert_eq!(
        setup.sim.status(&slow.external_order_id),
        Some(Status::Rejected)
    );
}

#[tokio::test]
async fn the_control_endpoints_place_orders_and_show_state() {
    let setup = setup().await;
    let http = reqwest::Client::new();
    let placed: Value = http
        .post(format!("{}/_sim/orders", setup.sim.base_url()))
        .json(&pickup())
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert_eq!(placed["webhook_status"], 200);
    let id = placed["external_order_id"].as_str().expect("id");
    let order: Value = http
        .get(format!("{}/_sim/orders/{id}", setup.sim.base_url()))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(order["state"], "CREATED");
    assert_eq!(order["kind"], "pickup");
    let checkout: Value = http
        .post(format!("{}/_sim/checkout", setup.sim.base_url()))
        .json(&pickup())
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert_eq!(checkout["webhook_status"], 200);
    assert!(
        checkout["webhook_body"]["finalResponse"]["richResponse"]["items"][0]["structuredResponse"]
            ["checkoutResponse"]
            .is_object()
    );
    let bad = http
        .post(format!("{}/_sim/orders", setup.sim.base_url()))
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), 400);
    let calls: Value = http
        .get(format!("{}/_sim/calls", setup.sim.base_url()))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert!(calls.is_array());
}

#[test]
fn googles_state_rules() {
    use FulfillmentKind::{Delivery, Pickup};
    let ok = |from: &str, to: &str, kind| transition_allowed(from, to, kind).is_ok();
    assert!(ok("CREATED", "CONFIRMED", Pickup));
    assert!(ok("CREATED", "REJECTED", Pickup));
    assert!(ok("CREATED", "CANCELLED", Pickup));
    assert!(ok("CONFIRMED", "FULFILLED", Pickup), "skips are allowed");
    assert!(ok("IN_PREPARATION", "READY_FOR_PICKUP", Pickup));
    assert!(ok("IN_PREPARATION", "IN_TRANSIT", Delivery));
    assert!(ok("IN_TRANSIT", "CANCELLED", Delivery));
    assert!(ok("CONFIRMED", "CONFIRMED", Pickup), "a repeat");
    assert!(!ok("CONFIRMED", "REJECTED", Pickup));
    assert!(!ok("IN_PREPARATION", "CONFIRMED", Pickup), "backwards");
    assert!(!ok("FULFILLED", "CANCELLED", Pickup), "final");
    assert!(!ok("CANCELLED", "CONFIRMED", Delivery));
    assert!(!ok("REJECTED", "CONFIRMED", Delivery));
    assert!(!ok("CONFIRMED", "CREATED", Delivery));
    assert!(!ok("IN_PREPARATION", "READY_FOR_PICKUP", Delivery));
    assert!(!ok("IN_PREPARATION", "IN_TRANSIT", Pickup));
    assert!(!ok("CONFIRMED", "RETURNED", Pickup));
}

/// The simulator signs a request token once a second and reuses it: what a hub sees is
/// unchanged, the token Google's signing gives for that second (claims name whole seconds;
/// RS256 is deterministic), and the next second gets a token of its own.
#[tokio::test]
async fn requests_of_one_second_carry_the_token_signed_for_that_second() {
    let sim = GoogleSim::start(SimConfig::default())
        .await
        .expect("simulator");
    let second = Utc::now()
        .with_nanosecond(0)
        .expect("a whole second is a valid time");
    let first = sim.authorization(second);
    assert_eq!(
        first,
        dev_authorization(second).expect("sign"),
        "the token of the second, as signed afresh"
    );
    assert_eq!(
        sim.authorization(second + TimeDelta::milliseconds(999)),
        first,
        "later in the same second"
    );
    let next = second + TimeDelta::seconds(1);
    let later = sim.authorization(next);
    assert_ne!(later, first, "the next second");
    assert_eq!(later, dev_authorization(next).expect("sign"));
}
