//! The fetch stage, for notify-then-fetch channels: the notification was stored and
//! acknowledged; this fetches the order from the platform and records it like a pushed one.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crossdock_broker::{Disposition, Incoming};
use crossdock_channel::{ChannelError, FetchRef};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{parse, requeue_after_pause};
use crate::app::Shared;

/// Attempts within one delivery before the message goes back to the queue.
const ATTEMPTS: u32 = 3;

/// The fetch queue's message: which notification to fetch.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct FetchMessage {
    pub channel: String,
    pub dedupe_key: String,
    #[serde(flatten)]
    pub reference: FetchRef,
    pub received_at: DateTime<Utc>,
}

pub async fn run(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let config = shared.settings.broker.clone();
    let queue = shared.topology.fetch_queue();
    let handler_shared = shared.clone();
    let link = shared.links.broker_session(queue.clone());
    let result = crossdock_broker::consume(config, queue, 64, 16, link, stop, move |incoming| {
        let shared = handler_shared.clone();
        async move { handle(&shared, incoming).await }
    })
    .await;
    if let Err(error) = result {
        tracing::error!(%error, "Fetch consumer stopped.");
    }
}

async fn handle(shared: &Shared, incoming: Incoming) -> Disposition {
    let message: FetchMessage = match parse(&incoming) {
        Ok(message) => message,
        Err(disposition) => return disposition,
    };
    let Some(channel) = shared.channels.get(&message.channel) else {
        tracing::error!(channel = %message.channel, "Fetch for a channel this hub does not run.");
        return Disposition::DeadLetter;
    };
    let mut attempt = 0;
    let fetched = loop {
        attempt += 1;
        match channel.fetch(&message.reference).await {
            Ok(order) => break Ok(order),
            Err(error) if error.is_retryable() && attempt < ATTEMPTS => {
                let wait = error
                    .retry_after()
                    .unwrap_or(Duration::from_millis(250 * 2_u64.pow(attempt)));
                tracing::warn!(channel = %message.channel, external_order_id = %message.reference.external_order_id, %error, attempt, "Fetch failed; retrying.");
                tokio::time::sleep(wait.min(Duration::from_secs(10))).await;
            }
            Err(error) => break Err(error),
        }
    };
    let order = match fetched {
        Ok(order) => order,
        Err(error) if error.is_retryable() => {
            tracing::warn!(channel = %message.channel, external_order_id = %message.reference.external_order_id, %error, "Fetch keeps failing; requeueing.");
            return requeue_after_pause(shared).await;
        }
        Err(error) => return quarantine(shared, &message, &error).await,
    };
    let flags = match order.check() {
        Ok(flags) => flags,
        Err(error) => return quarantine(shared, &message, &ChannelError::Order(error)).await,
    };
    match shared
        .db
        .record_fetched_order(&message.dedupe_key, &order, &flags, message.received_at)
        .await
    {
        Ok(recorded) => {
            tracing::info!(channel = %message.channel, order_id = ?recorded.order_id(), duplicate = recorded.is_duplicate(), "Fetched order recorded.");
            if !recorded.is_duplicate() {
                shared.metrics.order_ingested(&message.channel);
            }
            Disposition::Ack
        }
        Err(error) => {
            tracing::warn!(channel = %message.channel, %error, "Fetched order could not be recorded; requeueing.");
            requeue_after_pause(shared).await
        }
    }
}

/// An order the hub cannot take: quarantine what was learned, and refuse it on the
/// platform at once (rather than let it wait for the platform's acceptance deadline).
/// Dead-lettered for HQ if the platform cannot be told.
async fn quarantine(shared: &Shared, message: &FetchMessage, error: &ChannelError) -> Disposition {
    let external_order_id = &message.reference.external_order_id;
    tracing::error!(channel = %message.channel, %external_order_id, %error, "Notified order cannot be taken; quarantined.");
    let headers = serde_json::json!({ "resource": message.reference.resource });
    let reason = format!("fetching order {external_order_id}: {error}");
    let kept = shared
        .db
        .quarantine(
            &message.channel,
            Utc::now(),
            error.kind(),
            &reason,
            &headers,
            &[],
        )
        .await;
    if kept.is_err() {
        return requeue_after_pause(shared).await;
    }
    shared.metrics.quarantined(&message.channel);
    let Some(channel) = shared.channels.get(&message.channel) else {
        return Disposition::DeadLetter;
    };
    let told = format!("the order cannot be processed: {error}");
    let mut attempt = 0;
    loop {
        attempt += 1;
        match channel.refuse_notified(&message.reference, &told).await {
            Ok(_) => return Disposition::Ack,
            Err(refusal) if refusal.is_retryable() && attempt < ATTEMPTS => {
                let wait = refusal
                    .retry_after()
                    .unwrap_or(Duration::from_millis(250 * 2_u64.pow(attempt)));
                tokio::time::sleep(wait.min(Duration::from_secs(10))).await;
            }
            Err(refusal) => {
                tracing::error!(channel = %message.channel, %external_order_id, error = %refusal, "The platform could not be told; dead-lettering for HQ.");
                return Disposition::DeadLetter;
            }
        }
    }
}
