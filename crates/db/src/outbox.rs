//! The transactional outbox: messages written with the change that causes them, published
//! by the relay after commit, deleted only once the broker confirmed them.

use deadpool_postgres::Transaction;

use crate::{Db, DbError};

/// A message to publish once the surrounding transaction commits.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    pub routing_key: String,
    /// The message type (`order.received`, `sync.requested`, …).
    pub kind: String,
    /// Stable id: a republish after a crash carries the same id.
    pub message_id: String,
    pub body: serde_json::Value,
}

/// A committed, not yet confirmed message.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub message: OutboxMessage,
}

pub(crate) async fn insert(
    tx: &Transaction<'_>,
    message: &OutboxMessage,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO outbox (routing_key, kind, message_id, body) VALUES ($1, $2, $3, $4)",
        &[
            &message.routing_key,
            &message.kind,
            &message.message_id,
            &message.body,
        ],
    )
    .await?;
    Ok(())
}

impl Db {
    /// Claims up to `limit` outbox rows (oldest first, skipping rows another relay holds),
    /// hands them to `publish`, deletes the ids it returns as confirmed, and commits.
    /// Rows not confirmed stay for the next round. Returns the number confirmed.
    pub async fn relay_outbox<F, Fut>(&self, limit: i64, publish: F) -> Result<usize, DbError>
    where
        F: FnOnce(Vec<OutboxRow>) -> Fut,
        Fut: std::future::Future<Output = Vec<i64>>,
    {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                "SELECT id, routing_key, kind, message_id, body FROM outbox
                 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                &[&limit],
            )
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let claimed = rows
            .iter()
            .map(|row| OutboxRow {
                id: row.get(0),
                message: OutboxMessage {
                    routing_key: row.get(1),
                    kind: row.get(2),
                    message_id: row.get(3),
                    body: row.get(4),
                },
            })
            .collect();
        let confirmed = publish(claimed).await;
        if !confirmed.is_empty() {
            tx.execute("DELETE FROM outbox WHERE id = ANY($1)", &[&confirmed])
                .await?;
        }
        tx.commit().await?;
        Ok(confirmed.len())
    }

    /// Rows waiting in the outbox.
    pub async fn outbox_backlog(&self) -> Result<i64, DbError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_one("SELECT count(*) FROM outbox", &[])
            .await?
            .get(0))
    }
}
