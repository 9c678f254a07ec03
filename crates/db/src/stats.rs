//! Figures for monitoring, read at scrape time: the outbox backlog.

use crate::{Db, DbError};

/// The outbox as the relay sees it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct OutboxStats {
    /// Rows committed and not yet confirmed by the broker.
    pub pending: i64,
    /// Rows the broker refused, set aside for HQ.
    pub refused: i64,
    /// Age in seconds of the oldest pending row; 0 when none is pending.
    pub oldest_pending_seconds: f64,
}

impl Db {
    /// The outbox backlog, in one statement.
    pub async fn outbox_stats(&self) -> Result<OutboxStats, DbError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                &client.prepare_cached("SELECT count(*) FILTER (WHERE refused_at IS NULL),
                        count(*) FILTER (WHERE refused_at IS NOT NULL),
                        coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE refused_at IS NULL)), 0)::float8
                 FROM outbox").await?,
                &[],
            )
            .await?;
        Ok(OutboxStats {
            pending: row.get(0),
            refused: row.get(1),
            oldest_pending_seconds: row.get::<_, f64>(2).max(0.0),
        })
    }
}
