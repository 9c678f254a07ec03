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

/// What the relay's publisher did with a claimed batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Relayed {
    /// Row ids the broker confirmed: deleted.
    pub confirmed: Vec<i64>,
    /// Row ids the broker refused, with why: set aside for HQ.
    pub refused: Vec<(i64, String)>,
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
        &tx.prepare_cached(
            "INSERT INTO outbox (routing_key, kind, message_id, body) VALUES ($1, $2, $3, $4)",
        )
        .await?,
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
    /// Claims up to `limit` outbox rows (oldest first, skipping rows another relay holds
    /// and rows set aside), hands them to `publish`, deletes the confirmed ones, sets the
    /// refused ones aside with their reason, and commits. Rows whose outcome is unknown
    /// stay for the next round. Returns the number confirmed.
    pub async fn relay_outbox<F, Fut>(&self, limit: i64, publish: F) -> Result<usize, DbError>
    where
        F: FnOnce(Vec<OutboxRow>) -> Fut,
        Fut: std::future::Future<Output = Relayed>,
    {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let rows = tx
            .query(
                // Oldest first, skipping rows another relay holds and rows set aside, by
                // a plain index scan (V8).
                &tx.prepare_cached(
                    "SELECT id, routing_key, kind, message_id, body FROM claim_outbox($1)",
                )
                .await?,
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
        let Relayed { confirmed, refused } = publish(claimed).await;
        if !confirmed.is_empty() {
            tx.execute(
                &tx.prepare_cached("DELETE FROM outbox WHERE id = ANY($1)")
                    .await?,
                &[&confirmed],
            )
            .await?;
        }
        for (id, reason) in &refused {
            tx.execute(
                &tx.prepare_cached(
                    "UPDATE outbox SET refused_at = now(), refusal = $2 WHERE id = $1",
                )
                .await?,
                &[id, reason],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(confirmed.len())
    }

    /// Messages the broker refused, set aside: (id, routing key, reason).
    pub async fn refused_outbox(&self) -> Result<Vec<(i64, String, String)>, DbError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &client.prepare_cached("SELECT id, routing_key, coalesce(refusal, '') FROM outbox WHERE refused_at IS NOT NULL ORDER BY id").await?,
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// Rows waiting to be published (not counting those set aside).
    pub async fn outbox_backlog(&self) -> Result<i64, DbError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_one(
                &client
                    .prepare_cached("SELECT count(*) FROM outbox WHERE refused_at IS NULL")
                    .await?,
                &[],
            )
            .await?
            .get(0))
    }
}
