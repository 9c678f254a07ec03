//! `GET /api/v1/stream`: server-sent events for the web pages.
//!
//! **A store's token** gets its board, live:
//!
//! | event | data | when |
//! |---|---|---|
//! | `board` | `{"store": {"id", "name", "timezone"}, "live": <as GET /stores/{id}/live>, "orders": [order…], "at"}` | first, on every connection |
//! | `order` | an order as on the board (the unified order, its status, and `store_accept_by`) | an order appeared or changed |
//! | `gone` | `{"id": "…"}` | an order left the store (another store or HQ has it now) or the board (finished long ago) |
//! | `live` | the store's live state | paused, resumed, items marked (un)available |
//!
//! The board holds the store's unfinished orders and those finished within two hours
//! (`crossdock_db::board`). Every connection starts with the whole board, so a page that
//! lost its connection replaces what it shows with it and is caught up: nothing missed,
//! nothing twice (orders are keyed by id). After that the stream sends only differences:
//! whenever the feed says the store's orders may have changed (`feed`), and every
//! [`RESYNC`] in any case, the stream reads the board again and sends what differs from
//! what it has sent on this connection.
//!
//! **The admin token** gets `changed` events (`{"at"}`), at most one per [`HQ_THROTTLE`],
//! whenever something in the chain may have changed; the dashboard reads the summary,
//! attention and parked lists again.
//!
//! Both streams send a comment every 15 s to keep proxies from closing an idle connection,
//! and end when the hub stops.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use chrono::Utc;
use crossdock_model::{OrderId, StoreId};
use futures::Stream;
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use super::ApiError;
use super::api::Caller;
use super::stores::registry_view;
use crate::app::Shared;
use crate::feed::Watching;

/// How often a store's stream reads its board again even when nothing said it changed.
pub const RESYNC: Duration = Duration::from_secs(30);
/// How often a store's stream compares the registry's live state with what it sent (in
/// memory; other processes' pauses arrive there within `router.live_refresh_ms`).
const LIVE_CHECK: Duration = Duration::from_secs(1);
/// The dashboard hears of changes at most this often.
pub const HQ_THROTTLE: Duration = Duration::from_millis(500);

pub fn router() -> Router<Arc<Shared>> {
    Router::new().route("/stream", get(stream))
}

async fn stream(
    State(shared): State<Arc<Shared>>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // Subscribed before the first read, so no change between the two is lost.
    let changes = shared.feed.subscribe();
    let (sender, receiver) = mpsc::channel::<Event>(64);
    match caller {
        Caller::Store(store) => {
            let name = shared
                .registry()
                .store(&store)
                .map(|profile| json!({ "id": profile.id, "name": profile.name, "timezone": profile.timezone }))
                .ok_or_else(|| ApiError::unknown_store(&store))?;
            tokio::spawn(store_stream(shared, store, name, changes, sender));
        }
        Caller::Hq => {
            tokio::spawn(hq_stream(shared, changes, sender));
        }
    }
    let events = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|event| (Ok(event), receiver))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn event(name: &str, data: &serde_json::Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

/// What one wait of a stream came to.
enum Wake {
    Read,
    Idle,
    End,
}

/// Waits for the next change that concerns `store` (`None`: any change), the timer, or
/// the end (hub stopping, page gone).
async fn next_wake(
    changes: &mut Watching,
    store: Option<&StoreId>,
    stopping: &mut tokio::sync::watch::Receiver<bool>,
    sender: &mpsc::Sender<Event>,
    tick: &mut tokio::time::Interval,
) -> Wake {
    if *stopping.borrow() {
        return Wake::End;
    }
    tokio::select! {
        change = changes.recv() => match change {
            Ok(change) if store.is_none_or(|store| change.concerns(store)) => Wake::Read,
            Ok(_) => Wake::Idle,
            // Fell behind: something may have been missed, read again.
            Err(broadcast::error::RecvError::Lagged(_)) => Wake::Read,
            Err(broadcast::error::RecvError::Closed) => Wake::End,
        },
        _ = tick.tick() => Wake::Idle,
        _ = stopping.changed() => Wake::End,
        () = sender.closed() => Wake::End,
    }
}

async fn store_stream(
    shared: Arc<Shared>,
    store: StoreId,
    profile: serde_json::Value,
    mut changes: Watching,
    sender: mpsc::Sender<Event>,
) {
    let mut stopping = shared.stopping.clone();
    let mut shown: HashMap<OrderId, String> = HashMap::new();
    let mut live = registry_view(&shared, &store);
    let mut last_read = tokio::time::Instant::now();
    match shared.db.board(&store, Utc::now()).await {
        Ok(board) => {
            for order in &board {
                shown.insert(order.order.id, json!(order).to_string());
            }
            let first =
                json!({ "store": profile, "live": live, "orders": board, "at": Utc::now() });
            if sender.send(event("board", &first)).await.is_err() {
                return;
            }
        }
        Err(error) => {
            tracing::warn!(%store, %error, "Cannot read the store's board for its stream.");
            return;
        }
    }
    let mut tick = tokio::time::interval(LIVE_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let read = match next_wake(
            &mut changes,
            Some(&store),
            &mut stopping,
            &sender,
            &mut tick,
        )
        .await
        {
            Wake::End => return,
            Wake::Read => true,
            Wake::Idle => last_read.elapsed() >= RESYNC,
        };
        let now_live = registry_view(&shared, &store);
        if now_live != live {
            live = now_live;
            if sender.send(event("live", &json!(live))).await.is_err() {
                return;
            }
        }
        if !read {
            continue;
        }
        last_read = tokio::time::Instant::now();
        let board = match shared.db.board(&store, Utc::now()).await {
            Ok(board) => board,
            Err(error) => {
                // The next change or the resync reads again.
                tracing::warn!(%store, %error, "Cannot read the store's board for its stream.");
                continue;
            }
        };
        let mut now_shown = HashMap::with_capacity(board.len());
        let mut events = Vec::new();
        for order in board.iter().rev() {
            let text = json!(order).to_string();
            if shown.get(&order.order.id) != Some(&text) {
                events.push(Event::default().event("order").data(text.clone()));
            }
            now_shown.insert(order.order.id, text);
        }
        for id in shown.keys().filter(|id| !now_shown.contains_key(id)) {
            events.push(event("gone", &json!({ "id": id })));
        }
        shown = now_shown;
        for event in events {
            if sender.send(event).await.is_err() {
                return;
            }
        }
    }
}

async fn hq_stream(shared: Arc<Shared>, mut changes: Watching, sender: mpsc::Sender<Event>) {
    let mut stopping = shared.stopping.clone();
    if sender
        .send(event("changed", &json!({ "at": Utc::now() })))
        .await
        .is_err()
    {
        return;
    }
    let mut tick = tokio::time::interval(RESYNC);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.reset();
    loop {
        match next_wake(&mut changes, None, &mut stopping, &sender, &mut tick).await {
            Wake::End => return,
            Wake::Read | Wake::Idle => {}
        }
        // Let a burst of changes settle into one event.
        tokio::time::sleep(HQ_THROTTLE).await;
        while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = changes.try_recv() {}
        if sender
            .send(event("changed", &json!({ "at": Utc::now() })))
            .await
            .is_err()
        {
            return;
        }
    }
}
