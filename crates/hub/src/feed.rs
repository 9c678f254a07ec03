//! Live changes for the web pages: which store's orders (or which part of the chain) may
//! have changed, for the streams of the store console and the HQ dashboard to read again.
//!
//! Every process that serves the API taps the events exchange (`crossdock_broker::tap`):
//! the messages to the stores' routing keys (an order routed, withdrawn, cancelled, or any
//! status change, the store's own included), new and re-routed orders, sync nudges and
//! parked syncs. A message only says *what* to read again; the database says what it now
//! is. When the tap reconnects it may have missed messages, so every stream reads again
//! ([`Change::Resync`]); a stream that falls behind the broadcast does the same.

use std::sync::Arc;

use crossdock_broker::{Tapped, tap};
use crossdock_model::StoreId;
use serde::Deserialize;
use tokio::sync::{broadcast, watch};

use crate::app::Shared;

/// The routing-key patterns the tap binds.
pub const PATTERNS: [&str; 4] = ["order.#", "store.#", "sync.#", "parking.#"];

/// How many changes a slow stream may fall behind before it reads everything again.
const BACKLOG: usize = 4096;

/// What may have changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// One store's orders or live state (pause, unavailable items).
    Store(StoreId),
    /// Something of the chain as a whole: an order arrived or is re-routed, a status is to
    /// be synced or was parked.
    Chain,
    /// Changes may have been missed: read everything again.
    Resync,
}

impl Change {
    /// Whether a view of `store` must be read again.
    pub fn concerns(&self, store: &StoreId) -> bool {
        match self {
            Change::Store(changed) => changed == store,
            Change::Chain => false,
            Change::Resync => true,
        }
    }
}

/// This process's broadcast of changes to its streams.
pub struct Feed {
    sender: broadcast::Sender<Change>,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Feed {
    /// A receiver of every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.sender.subscribe()
    }

    /// Tells this process's streams (no receivers is fine).
    pub fn note(&self, change: Change) {
        let _ = self.sender.send(change);
    }
}

#[derive(Deserialize)]
struct StoreMessage {
    store_id: StoreId,
}

/// What a tapped message means for the streams.
fn change_of(tapped: Tapped) -> Change {
    match tapped {
        Tapped::Connected => Change::Resync,
        Tapped::Message(message) if message.routing_key.starts_with("store.") => {
            match serde_json::from_slice::<StoreMessage>(&message.body) {
                Ok(parsed) => Change::Store(parsed.store_id),
                // A store message the tap cannot read: every view reads again.
                Err(_) => Change::Resync,
            }
        }
        Tapped::Message(_) => Change::Chain,
    }
}

/// Taps the broker for this process's streams until `stop`.
pub async fn run(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let patterns = PATTERNS.iter().map(|p| (*p).to_owned()).collect();
    let feed = shared.clone();
    let result = tap(
        shared.settings.broker.clone(),
        patterns,
        stop,
        move |tapped| {
            feed.feed.note(change_of(tapped));
        },
    )
    .await;
    if let Err(error) = result {
        tracing::error!(%error, "The live feed's tap stopped.");
    }
}

#[cfg(test)]
mod tests {
    use crossdock_broker::Incoming;

    use super::*;

    fn message(routing_key: &str, body: &str) -> Tapped {
        Tapped::Message(Incoming {
            routing_key: routing_key.to_owned(),
            message_id: None,
            kind: None,
            body: body.as_bytes().to_vec(),
            redelivered: false,
        })
    }

    #[test]
    fn a_store_message_concerns_its_store_only_and_a_reconnect_every_view() {
        let nyc1 = StoreId::parse("NYC-001").expect("id");
        let nyc2 = StoreId::parse("NYC-002").expect("id");
        let change = change_of(message(
            "store.3.NYC-001",
            r#"{"order_id":"x","store_id":"NYC-001","kind":"order.routed"}"#,
        ));
        assert_eq!(change, Change::Store(nyc1.clone()));
        assert!(change.concerns(&nyc1) && !change.concerns(&nyc2));
        assert_eq!(change_of(message("order.received", "{}")), Change::Chain);
        assert!(!Change::Chain.concerns(&nyc1));
        assert_eq!(change_of(Tapped::Connected), Change::Resync);
        assert!(Change::Resync.concerns(&nyc2));
        assert_eq!(
            change_of(message("store.3.NYC-001", "not json")),
            Change::Resync,
            "an unreadable store message makes every view read again"
        );
    }
}
