//! The outbox relay: publishes committed outbox rows with publisher confirms and deletes
//! them once confirmed. Woken in-process right after commits; polls as a fallback (other
//! processes' commits, and rows left by a crash). Before each round it makes sure the
//! publisher is connected, so while RabbitMQ is away it waits on the publisher's backoff
//! and its link (in `/readyz`) comes back with the broker, not with the next order.

use std::sync::Arc;
use std::time::Duration;

use crossdock_broker::{OutgoingMessage, PublishOutcome};
use crossdock_db::{OutboxRow, Relayed};
use tokio::sync::watch;

use crate::app::Shared;
use crate::failpoint;

pub async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let poll = Duration::from_millis(shared.settings.relay.poll_ms.max(10));
    let batch = shared.settings.relay.batch.max(1);
    let mut failures: u32 = 0;
    loop {
        if *stop.borrow() {
            return;
        }
        if let Some(publisher) = shared.publisher.as_ref() {
            // While the broker is away, wait for it here (the publisher backs off and logs)
            // instead of claiming outbox rows it cannot publish.
            let connected = tokio::select! {
                _ = stop.changed() => return,
                connected = publisher.ensure_connected() => connected.is_ok(),
            };
            if !connected {
                continue;
            }
        }
        match relay_round(&shared, batch).await {
            Ok(published) => {
                failures = 0;
                if published == batch as usize {
                    continue; // more may be waiting
                }
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                tracing::warn!(%error, failures, "Outbox relay round failed; retrying.");
                let backoff = Duration::from_millis(100 * 2_u64.pow(failures.min(6)));
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(backoff) => continue,
                }
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = shared.relay_wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// One claim–publish–delete round; returns how many rows were confirmed.
async fn relay_round(shared: &Shared, batch: i64) -> Result<usize, crossdock_db::DbError> {
    let Some(publisher) = shared.publisher.as_ref() else {
        return Ok(0);
    };
    shared
        .db
        .relay_outbox(batch, |rows: Vec<OutboxRow>| async move {
            failpoint::stall_if("relay_before_publish").await;
            let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
            let messages: Vec<OutgoingMessage> = rows
                .into_iter()
                .map(|row| OutgoingMessage {
                    body: row.message.body.to_string().into_bytes(),
                    routing_key: row.message.routing_key,
                    message_id: row.message.message_id,
                    kind: row.message.kind,
                })
                .collect();
            let outcomes = publisher.publish_batch(&messages).await;
            let mut relayed = Relayed::default();
            for ((id, message), outcome) in ids.into_iter().zip(&messages).zip(outcomes) {
                match outcome {
                    PublishOutcome::Confirmed => relayed.confirmed.push(id),
                    PublishOutcome::Refused { reason } => {
                        tracing::error!(
                            outbox_id = id,
                            routing_key = %message.routing_key,
                            %reason,
                            "Broker refused an outbox message; set aside for HQ."
                        );
                        relayed.refused.push((id, reason));
                    }
                    PublishOutcome::Unknown { reason } => tracing::warn!(
                        outbox_id = id,
                        %reason,
                        "Publish outcome unknown; the message will be published again."
                    ),
                }
            }
            relayed
        })
        .await
}
