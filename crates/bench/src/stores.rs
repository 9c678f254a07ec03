//! The stores: one queue bound to every store's routing key, as each store's POS binds its
//! own, and on every order routed to a store, its accept at once through the store API
//! with that store's token.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crossdock_broker::{BrokerConfig, Disposition, Incoming, LinkState};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use uuid::Uuid;

use crate::ledger::Ledger;

/// Store messages handled at once (each an accept awaiting the hub's answer).
const CONCURRENCY: usize = 256;

#[derive(Deserialize)]
struct StoreMessage {
    order_id: Uuid,
    store_id: String,
}

/// What the stores need: the API, their tokens and the record.
pub struct Stores {
    pub api: String,
    pub tokens: HashMap<String, String>,
    pub ledger: Arc<Ledger>,
    pub http: reqwest::Client,
}

/// Consumes the stores' queue until `stop`.
pub async fn run(
    stores: Arc<Stores>,
    config: BrokerConfig,
    queue: String,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let handler = move |incoming: Incoming| {
        let stores = stores.clone();
        async move {
            if incoming.kind.as_deref() != Some(crossdock_hub::routes::kind::ORDER_ROUTED) {
                return Disposition::Ack;
            }
            let Ok(message) = serde_json::from_slice::<StoreMessage>(&incoming.body) else {
                tracing::error!(routing_key = %incoming.routing_key, "Unreadable store message.");
                return Disposition::Ack;
            };
            let message_id = incoming.message_id.unwrap_or_default();
            if stores
                .ledger
                .at_store(message.order_id, &message.store_id, &message_id)
            {
                let status = accept(&stores, message.order_id, &message.store_id).await;
                stores.ledger.accepted(message.order_id, status);
            }
            Disposition::Ack
        }
    };
    crossdock_broker::consume(
        config,
        queue,
        u16::try_from(CONCURRENCY * 2).unwrap_or(u16::MAX),
        CONCURRENCY,
        LinkState::default(),
        stop,
        handler,
    )
    .await?;
    Ok(())
}

/// The store accepts the order; the hub's answer (0: none within a minute of retries).
async fn accept(stores: &Stores, order_id: Uuid, store: &str) -> u16 {
    let Some(token) = stores.tokens.get(store) else {
        tracing::error!(store, "No token for the store.");
        return 0;
    };
    let url = format!("{}/api/v1/orders/{order_id}/accept", stores.api);
    let mut delay = Duration::from_millis(50);
    for _ in 0..12 {
        let answer = stores
            .http
            .post(&url)
            .bearer_auth(token)
            .json(&json!({ "prep_minutes": 10 }))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match answer {
            Ok(response) if !response.status().is_server_error() => {
                let status = response.status().as_u16();
                if !response.status().is_success() {
                    let body = response.text().await.unwrap_or_default();
                    tracing::warn!(%order_id, store, status, body, "The accept was refused.");
                }
                return status;
            }
            Ok(response) => {
                tracing::warn!(%order_id, status = %response.status(), "The accept failed; again.");
            }
            Err(error) => tracing::warn!(%order_id, %error, "The accept failed; again."),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    0
}
