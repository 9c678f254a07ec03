//! A store's board: the orders its console shows, read whole.
//!
//! The console never applies changes one by one; it reads the board again whenever
//! something of the store's may have changed, and the hub sends the page the difference.
//! So a change the page missed (a dropped connection, a lost nudge) is caught up by the
//! next read, and an order is never shown twice: the board is keyed by order id.

use chrono::{DateTime, Duration, Utc};
use crossdock_model::{Order, Status, StoreId};

use crate::orders::{ORDER_COLUMNS, order_from_row};
use crate::{Db, DbError};

/// How long a finished order (completed, cancelled, rejected…) stays on the board.
pub const FINISHED_KEPT: Duration = Duration::hours(2);

/// Finished orders older than this (by reception) are not looked at for the board.
pub const FINISHED_RECEIVED_WITHIN: Duration = Duration::hours(24);

/// The most orders a board holds (newest first).
pub const BOARD_LIMIT: i64 = 200;

/// An order as its store's console shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BoardOrder {
    #[serde(flatten)]
    pub order: Order,
    /// When the store must have accepted it, or lose it to the next store or to HQ (the
    /// hub's limit, kept before the platform's own `accept_by`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_accept_by: Option<DateTime<Utc>>,
}

impl Db {
    /// The store's board at `now`: every order it holds that is not finished, and those
    /// finished within [`FINISHED_KEPT`] (of the ones received within
    /// [`FINISHED_RECEIVED_WITHIN`]), newest first, at most [`BOARD_LIMIT`]. Both halves
    /// read an index (V4), so a store's long history costs nothing.
    pub async fn board(
        &self,
        store: &StoreId,
        now: DateTime<Utc>,
    ) -> Result<Vec<BoardOrder>, DbError> {
        let finished = finished_list();
        let client = self.pool.get().await?;
        // The statuses are written into the text (they are constants) so that the planner
        // can use the partial index of unfinished orders.
        let sql = format!(
            "(SELECT {ORDER_COLUMNS}, store_accept_by FROM orders
              WHERE store_id = $1 AND status NOT IN ({finished}))
             UNION ALL
             (SELECT {ORDER_COLUMNS}, store_accept_by FROM orders
              WHERE store_id = $1 AND received_at > $2 AND status IN ({finished}) AND updated_at > $3)
             ORDER BY received_at DESC LIMIT $4"
        );
        let rows = client
            .query(
                &client.prepare_cached(&sql).await?,
                &[
                    &store.as_str(),
                    &(now - FINISHED_RECEIVED_WITHIN),
                    &(now - FINISHED_KEPT),
                    &BOARD_LIMIT,
                ],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(BoardOrder {
                    order: order_from_row(row)?,
                    store_accept_by: row.get(7),
                })
            })
            .collect()
    }
}

/// `'delivered', 'completed', …`: the final statuses as SQL literals.
fn finished_list() -> String {
    Status::ALL
        .iter()
        .filter(|s| s.is_final())
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// V4's partial index names the same statuses; the board's query must match it.
    #[test]
    fn the_finished_statuses_match_the_partial_index() {
        let migration = include_str!("../migrations/V4__store_board.sql");
        assert!(
            migration.contains(&format!("status NOT IN ({})", finished_list())),
            "V4 must index exactly the unfinished statuses: NOT IN ({})",
            finished_list()
        );
    }
}
