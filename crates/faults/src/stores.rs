//! The chain's stores as the suite plays them: one durable queue bound to every store's
//! routing key (as each store's POS binds its own), consumed with manual acks through the
//! broker crate's reconnecting consumer; every new order is worked through the store API
//! with the store's token — accept, a moment in the kitchen, ready, complete — retrying
//! while the API is down, as staff tap again on a tablet that lost its connection.
//!
//! A store can be stalled ([`Stores::stall`], the schedule's "a store stops accepting"):
//! like a tablet gone offline, it does not act on the platforms' orders that reach it until
//! the stall ends (the sales its own POS rings up at the counter it still works). Orders
//! it let time out are taken back by the hub — withdrawn from it, then routed to another
//! store or left to HQ — and the store, back online, acts only on those still its own.
//! Each store's work on each order ends in the ledger: completed, withdrawn before it
//! acted, found cancelled by the platform, or given up with the reason.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossdock_broker::{BrokerConfig, Disposition, Incoming};
use crossdock_model::Status;
use rand::Rng;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use crate::ledger::{Ledger, StoreEnd};

/// How long one store action is retried before the store gives up on the order.
const ACTION_PATIENCE: Duration = Duration::from_secs(300);

/// How long an order is in the kitchen between accept and ready: long enough, often, for
/// the platform to hear of the accept and its customer to cancel meanwhile.
const KITCHEN: std::ops::RangeInclusive<u64> = 250..=1500;

/// What a store does with each new order: the API action and the status it leads to.
const WORK: [(&str, Status); 3] = [
    ("accept", Status::Accepted),
    ("ready", Status::Ready),
    ("complete", Status::Completed),
];

#[derive(Deserialize)]
struct StoreMessage {
    order_id: String,
    store_id: String,
}

/// What the stores need: the API, their tokens, the record, and which are stalled.
pub struct Stores {
    pub api: String,
    pub tokens: HashMap<String, String>,
    pub ledger: Arc<Ledger>,
    pub http: reqwest::Client,
    /// Stalled stores and until when.
    stalled: Mutex<HashMap<String, Instant>>,
    /// Bumped when a stall is lifted early.
    lifted: watch::Sender<u64>,
}

impl Stores {
    pub fn new(
        api: String,
        tokens: HashMap<String, String>,
        ledger: Arc<Ledger>,
        http: reqwest::Client,
    ) -> Stores {
        Stores {
            api,
            tokens,
            ledger,
            http,
            stalled: Mutex::new(HashMap::new()),
            lifted: watch::channel(0).0,
        }
    }

    fn stalls(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.stalled.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops `store` acting on the platforms' new orders until `until`.
    pub fn stall(&self, store: &str, until: Instant) {
        self.stalls().insert(store.to_owned(), until);
    }

    /// Lifts every stall now (the faults stop).
    pub fn lift_stalls(&self) {
        self.stalls().clear();
        self.lifted.send_modify(|n| *n += 1);
    }

    /// Until when `store` is stalled, if it is.
    pub fn stalled_until(&self, store: &str) -> Option<Instant> {
        let mut stalls = self.stalls();
        match stalls.get(store) {
            Some(until) if *until > Instant::now() => Some(*until),
            Some(_) => {
                stalls.remove(store);
                None
            }
            None => None,
        }
    }

    /// Waits until `store` is no longer stalled.
    async fn stall_over(&self, store: &str) {
        let mut lifted = self.lifted.subscribe();
        while let Some(until) = self.stalled_until(store) {
            tokio::select! {
                _ = tokio::time::sleep_until(until.into()) => {}
                _ = lifted.changed() => {}
            }
        }
    }
}

/// Consumes the store queue until `stop`.
pub async fn run(
    stores: Arc<Stores>,
    config: BrokerConfig,
    queue: String,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let handler = move |incoming: Incoming| {
        let stores = stores.clone();
        async move {
            let Ok(message) = serde_json::from_slice::<StoreMessage>(&incoming.body) else {
                tracing::error!(routing_key = %incoming.routing_key, "Unreadable store message.");
                return Disposition::Ack;
            };
            let kind = incoming.kind.as_deref().unwrap_or("");
            let work = stores.ledger.store_message(
                &message.order_id,
                &message.store_id,
                kind,
                incoming.message_id.as_deref(),
            );
            if work {
                tokio::spawn(work_order(stores, message.order_id, message.store_id));
            }
            Disposition::Ack
        }
    };
    crossdock_broker::consume(
        config,
        queue,
        256,
        64,
        crossdock_broker::LinkState::default(),
        stop,
        handler,
    )
    .await?;
    Ok(())
}

/// How one store action came out.
enum Acted {
    Done,
    /// The order is no longer the store's (404): taken back.
    NotTheStores,
    /// The platform cancelled it, or the hub rejected it back (the status it has).
    EndedByHub(Status),
    Failed(String),
}

/// Accepts, readies and completes an order as its store — after the store's stall, if it
/// is stalled and the order is not its own POS's sale.
async fn work_order(stores: Arc<Stores>, order_id: String, store: String) {
    let Some(token) = stores.tokens.get(&store).cloned() else {
        stores.ledger.ended(
            &order_id,
            &store,
            StoreEnd::GaveUp(format!("no token for store {store}")),
        );
        return;
    };
    if stores.stalled_until(&store).is_some()
        && order_channel(&stores, &token, &order_id).await.as_deref() != Some("pos")
    {
        stores.ledger.while_stalled(&order_id, &store);
        stores.stall_over(&store).await;
        if stores.ledger.withdrawn(&order_id, &store) {
            // Back online, the tablet no longer shows it.
            stores.ledger.ended(&order_id, &store, StoreEnd::Withdrawn);
            return;
        }
    }
    for (action, step) in WORK {
        if action == "ready" {
            let ms = rand::rng().random_range(KITCHEN);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let sent = Instant::now();
        let end = match act(&stores, &token, &order_id, action, step).await {
            Acted::Done => {
                stores.ledger.worked(&order_id, &store, action, sent);
                continue;
            }
            Acted::NotTheStores => StoreEnd::Withdrawn,
            Acted::EndedByHub(status) => StoreEnd::EndedByHub {
                status: status.as_str().to_owned(),
                before: action.to_owned(),
            },
            Acted::Failed(why) => StoreEnd::GaveUp(format!("{action}: {why}")),
        };
        stores.ledger.ended(&order_id, &store, end);
        return;
    }
    stores.ledger.ended(&order_id, &store, StoreEnd::Completed);
}

/// One store action, retried through outages until it is done (or the order is found at
/// `step` already).
async fn act(stores: &Stores, token: &str, order_id: &str, action: &str, step: Status) -> Acted {
    let url = format!("{}/api/v1/orders/{order_id}/{action}", stores.api);
    let body = if action == "accept" {
        json!({ "prep_minutes": 10 })
    } else {
        json!({})
    };
    let deadline = tokio::time::Instant::now() + ACTION_PATIENCE;
    let mut delay = Duration::from_millis(100);
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        let sent = stores
            .http
            .post(&url)
            .bearer_auth(token)
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => return Acted::Done,
            Ok(response) if response.status().as_u16() == 404 => return Acted::NotTheStores,
            Ok(response) if response.status().as_u16() == 409 => {
                // Refused by the state machine: an earlier try went through before the
                // answer was lost, the platform's courier moved it on, or the platform
                // cancelled it.
                let text = response.text().await.unwrap_or_default();
                // What the order is now, read until the API answers: a read lost to a
                // busy or restarting hub says nothing about the order.
                let status = loop {
                    match order_status(stores, token, order_id).await {
                        Ok(status) => break status,
                        Err(why) if tokio::time::Instant::now() < deadline => {
                            tracing::debug!(order_id, %why, "Reading the order's status again.");
                        }
                        Err(why) => {
                            return Acted::Failed(format!(
                                "409 {text}; its status could not be read: {why}"
                            ));
                        }
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                };
                return match status {
                    Some(status @ (Status::Cancelled | Status::Rejected | Status::Failed)) => {
                        Acted::EndedByHub(status)
                    }
                    Some(status) if status.has_reached(step) => Acted::Done,
                    None => Acted::NotTheStores,
                    status => Acted::Failed(format!("409 {text} (order is {status:?})")),
                };
            }
            Ok(response) if response.status().is_client_error() => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                return Acted::Failed(format!("{status} {text}"));
            }
            Ok(response) => last = response.status().to_string(),
            Err(error) => last = error.to_string(),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
    Acted::Failed(format!("no answer within {ACTION_PATIENCE:?}: {last}"))
}

/// The order's channel, as the store's tablet shows it (retried through outages for a
/// while; `None` if it cannot be read).
async fn order_channel(stores: &Stores, token: &str, order_id: &str) -> Option<String> {
    for _ in 0..20 {
        if let Some(channel) = order_field(stores, token, order_id, "channel").await {
            return Some(channel);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    None
}

/// The order's status as the store reads it: `Ok(None)` when it is not the store's order
/// (404), `Err` when the API did not answer it.
async fn order_status(
    stores: &Stores,
    token: &str,
    order_id: &str,
) -> Result<Option<Status>, String> {
    let response = stores
        .http
        .get(format!("{}/api/v1/orders/{order_id}", stores.api))
        .bearer_auth(token)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|error| error.to_string())?;
    match response.status().as_u16() {
        404 => Ok(None),
        200..=299 => {
            let body: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
            body["status"]
                .as_str()
                .and_then(Status::parse)
                .map(Some)
                .ok_or_else(|| format!("no status in {body}"))
        }
        other => Err(format!("answered {other}")),
    }
}

/// A field of the order as the store reads it; `None` if the store cannot read it (not its
/// order, or the API down).
async fn order_field(stores: &Stores, token: &str, order_id: &str, field: &str) -> Option<String> {
    let url = format!("{}/api/v1/orders/{order_id}", stores.api);
    let body: serde_json::Value = crate::api_get(&stores.http, url, token).await?;
    body[field].as_str().map(str::to_owned)
}
