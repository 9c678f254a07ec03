//! The chain's stores as the suite plays them: one durable queue bound to every store's
//! routing key (as each store's POS binds its own), consumed with manual acks through the
//! broker crate's reconnecting consumer; every new order is worked through the store API
//! with the store's token — accept, ready, complete — retrying while the API is down, as
//! staff tap again on a tablet that lost its connection.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use crossdock_broker::{BrokerConfig, Disposition, Incoming, Topology};
use crossdock_model::Status;
use lapin::options::{QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use crate::ledger::Ledger;

/// How long one store action is retried before the store gives up on the order.
const ACTION_PATIENCE: Duration = Duration::from_secs(300);

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

/// What the stores need: the API, their tokens, and the record.
pub struct Stores {
    pub api: String,
    pub tokens: HashMap<String, String>,
    pub ledger: Arc<Ledger>,
    pub http: reqwest::Client,
}

/// Declares the suite's durable store queue on `config`'s topology; returns its name.
pub async fn declare_queue(config: &BrokerConfig) -> anyhow::Result<String> {
    let topology = Topology::from_config(config);
    let connection = crossdock_broker::connect(config)
        .await
        .context("connecting to RabbitMQ")?;
    let channel = connection.create_channel().await?;
    topology.declare(&channel, config.delivery_limit).await?;
    let queue = format!("{}.faults.stores", config.prefix);
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            arguments,
        )
        .await?;
    channel
        .queue_bind(
            queue.as_str().into(),
            topology.exchange().as_str().into(),
            "store.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let _ = connection.close(200, "declared".into()).await;
    Ok(queue)
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

/// Accepts, readies and completes an order as its store.
async fn work_order(stores: Arc<Stores>, order_id: String, store: String) {
    let Some(token) = stores.tokens.get(&store).cloned() else {
        stores
            .ledger
            .gave_up(&order_id, format!("no token for store {store}"));
        return;
    };
    for (action, step) in WORK {
        match act(&stores, &token, &order_id, action, step).await {
            Ok(()) => stores.ledger.worked(&order_id, action),
            Err(why) => {
                stores.ledger.gave_up(&order_id, format!("{action}: {why}"));
                return;
            }
        }
    }
}

/// One store action, retried through outages until it is done (or the order is found at
/// `step` already).
async fn act(
    stores: &Stores,
    token: &str,
    order_id: &str,
    action: &str,
    step: Status,
) -> Result<(), String> {
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
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) if response.status().as_u16() == 409 => {
                // Refused by the state machine: an earlier try went through before the
                // answer was lost, or the order was cancelled or taken back.
                let text = response.text().await.unwrap_or_default();
                return match order_status(stores, token, order_id).await {
                    Some(status) if Status::parse(&status).is_some_and(|s| s.has_reached(step)) => {
                        Ok(())
                    }
                    status => Err(format!("409 {text} (order is {status:?})")),
                };
            }
            Ok(response) if response.status().is_client_error() => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                return Err(format!("{status} {text}"));
            }
            Ok(response) => last = response.status().to_string(),
            Err(error) => last = error.to_string(),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
    Err(format!("no answer within {ACTION_PATIENCE:?}: {last}"))
}

async fn order_status(stores: &Stores, token: &str, order_id: &str) -> Option<String> {
    let response = stores
        .http
        .get(format!("{}/api/v1/orders/{order_id}", stores.api))
        .bearer_auth(token)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = response.json().await.ok()?;
    body["status"].as_str().map(str::to_owned)
}
