//! Live changes for the web pages: which store's orders (or which part of the chain) may
//! have changed, for the streams of the store console and the HQ dashboard to read again.
//!
//! Every process that serves the API taps the events exchange (`crossdock_broker::tap`)
//! while someone watches one of its streams: the messages to the stores (an order routed
//! or withdrawn, and any status change, the store's own included),
//! new and re-routed orders, sync nudges and parked syncs. A message only says *what* to
//! read again; the database says what it now is. When the tap (re)connects it may have
//! missed messages, so every stream reads again ([`Change::Resync`]); a stream that falls
//! behind the broadcast does the same. With no one watching for [`LINGER`], the tap
//! closes: the broker no longer copies every message to this process for nobody.

use std::sync::Arc;
use std::time::Duration;

use crossdock_broker::{Tapped, Topology, tap};
use crossdock_model::StoreId;
use serde::Deserialize;
use tokio::sync::{broadcast, watch};

use crate::app::Shared;

/// The routing-key patterns the tap binds: every store's, and the chain's.
fn patterns() -> Vec<String> {
    Topology::ALL_STORES_PATTERNS
        .into_iter()
        .chain(["order.#", "sync.#", "parking.#"])
        .map(str::to_owned)
        .collect()
}

/// How many changes a slow stream may fall behind before it reads everything again.
const BACKLOG: usize = 4096;

/// How long the tap stays after the last stream ended (a page reloading keeps it).
pub const LINGER: Duration = Duration::from_secs(30);

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
    /// How many streams watch.
    watchers: Arc<watch::Sender<usize>>,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(BACKLOG).0,
            watchers: Arc::new(watch::Sender::new(0)),
        }
    }
}

/// A stream's subscription: every change from when it was made, for as long as it lives.
pub struct Watching {
    changes: broadcast::Receiver<Change>,
    watchers: Arc<watch::Sender<usize>>,
}

impl std::ops::Deref for Watching {
    type Target = broadcast::Receiver<Change>;

    fn deref(&self) -> &Self::Target {
        &self.changes
    }
}

impl std::ops::DerefMut for Watching {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.changes
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.watchers.send_modify(|watching| *watching -= 1);
    }
}

impl Feed {
    /// A subscription to every change from now on; the tap runs while one lives (the
    /// first changes from other processes may come only with the tap's
    /// [`Change::Resync`], once it has connected).
    pub fn subscribe(&self) -> Watching {
        let changes = self.sender.subscribe();
        self.watchers.send_modify(|watching| *watching += 1);
        Watching {
            changes,
            watchers: self.watchers.clone(),
        }
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
        Tapped::Message(message) if Topology::is_store_key(&message.routing_key) => {
            match serde_json::from_slice::<StoreMessage>(&message.body) {
                Ok(parsed) => Change::Store(parsed.store_id),
                // A store message the tap cannot read: every view reads again.
                Err(_) => Change::Resync,
            }
        }
        Tapped::Message(_) => Change::Chain,
    }
}

/// Taps the broker for this process's streams while any watch, until `stop`.
pub async fn run(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let watchers = shared.feed.watchers.subscribe();
    while_watched(watchers, stop, LINGER, |until| {
        let shared = shared.clone();
        async move {
            let patterns = patterns();
            let feed = shared.clone();
            let result = tap(
                shared.settings.broker.clone(),
                patterns,
                until,
                move |tapped| {
                    feed.feed.note(change_of(tapped));
                },
            )
            .await;
            if let Err(error) = result {
                tracing::error!(%error, "The live feed's tap stopped.");
            }
        }
    })
    .await;
}

/// Runs `work` while `watchers` counts any, and on until none has been for `linger`. `work`
/// is handed a receiver that turns `true` when it is to end, and is awaited then. Ends when
/// `stop` turns `true`, or when `work` ends of itself.
async fn while_watched<W, F>(
    mut watchers: watch::Receiver<usize>,
    mut stop: watch::Receiver<bool>,
    linger: Duration,
    work: W,
) where
    W: Fn(watch::Receiver<bool>) -> F,
    F: Future<Output = ()>,
{
    enum Next {
        Ended,
        Unwatched,
        Stop,
    }
    loop {
        tokio::select! {
            watched = watchers.wait_for(|watching| *watching > 0) => if watched.is_err() { return },
            _ = stop.wait_for(|stop| *stop) => return,
        }
        let (end, until) = watch::channel(false);
        let running = work(until);
        tokio::pin!(running);
        let next = loop {
            tokio::select! {
                () = &mut running => break Next::Ended,
                unwatched = watchers.wait_for(|watching| *watching == 0) => if unwatched.is_err() { break Next::Stop },
                _ = stop.wait_for(|stop| *stop) => break Next::Stop,
            }
            tokio::select! {
                () = &mut running => break Next::Ended,
                () = tokio::time::sleep(linger) => break Next::Unwatched,
                watched = watchers.wait_for(|watching| *watching > 0) => if watched.is_err() { break Next::Stop },
                _ = stop.wait_for(|stop| *stop) => break Next::Stop,
            }
        };
        if matches!(next, Next::Ended) {
            return;
        }
        end.send_replace(true);
        running.await;
        if matches!(next, Next::Stop) {
            return;
        }
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

    /// The tap runs from the first stream on, stays across a page reloading (a stream
    /// gone and another come within the linger), closes once none has watched for the
    /// linger, comes back with the next stream, and ends with the hub.
    #[tokio::test(start_paused = true)]
    async fn the_tap_runs_while_a_stream_watches_and_for_a_while_after() {
        let feed = Feed::default();
        let (stop, stopping) = watch::channel(false);
        // (taps started, taps ended)
        let (counts, mut seen) = watch::channel((0, 0));
        let counts = Arc::new(counts);
        let tapping = {
            let counts = counts.clone();
            tokio::spawn(while_watched(
                feed.watchers.subscribe(),
                stopping,
                LINGER,
                move |mut until| {
                    let counts = counts.clone();
                    async move {
                        counts.send_modify(|(started, _)| *started += 1);
                        let _ = until.wait_for(|end| *end).await;
                        counts.send_modify(|(_, ended)| *ended += 1);
                    }
                },
            ))
        };
        let a_while = LINGER * 3;
        tokio::time::sleep(a_while).await;
        assert_eq!(*seen.borrow(), (0, 0), "no tap while no one watches");

        let first = feed.subscribe();
        seen.wait_for(|c| *c == (1, 0)).await.expect("tap");
        drop(first);
        tokio::time::sleep(LINGER / 2).await;
        let reloaded = feed.subscribe();
        tokio::time::sleep(a_while).await;
        assert_eq!(*seen.borrow(), (1, 0), "the same tap across a reload");

        drop(reloaded);
        seen.wait_for(|c| *c == (1, 1)).await.expect("closed");
        let second = feed.subscribe();
        seen.wait_for(|c| *c == (2, 1)).await.expect("tap again");
        drop(second);

        stop.send_replace(true);
        tapping.await.expect("ends with the hub");
        assert_eq!(*seen.borrow(), (2, 2));
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
        assert_eq!(
            change_of(message(
                "status.NYC-002",
                r#"{"order_id":"x","store_id":"NYC-002","kind":"order.accepted"}"#,
            )),
            Change::Store(nyc2.clone()),
            "a change of status concerns its store"
        );
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
