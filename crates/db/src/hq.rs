//! What HQ's dashboard reads and does: the summary of recent orders (by status, channel
//! and store) and of what waits for HQ; the attention list with every kind of order that
//! needs a person (a store declined it or let it time out, no store could take it, its
//! status push is parked); search by display code, channel order id or order id; status
//! pushes parked for HQ and outbox messages the broker refused; and replaying both.
//!
//! Every list reads through an index (migration V3): the attention list and the counts
//! never walk all orders or every status push ever made.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use crossdock_model::{EventKind, EventSource, Order, OrderId, Status, StatusAction, StoreId};
use serde::Serialize;
use serde_json::json;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::orders::{NewEvent, ORDER_COLUMNS, insert_event, order_from_row};
use crate::{Db, DbError, outbox, sync};

/// Why an order is on HQ's attention list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttentionKind {
    /// The store the channel named rejected it; it waits for HQ to assign or reject it.
    Declined,
    /// The store the channel named did not accept it in time; it waits like `Declined`.
    TimedOut,
    /// The router found no store for it and rejected it back to its channel.
    NoStore,
    /// A status push to its channel is parked (refused for good, or failed too often).
    SyncParked,
}

impl AttentionKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            AttentionKind::Declined => "declined",
            AttentionKind::TimedOut => "timed_out",
            AttentionKind::NoStore => "no_store",
            AttentionKind::SyncParked => "sync_parked",
        }
    }
}

/// An order on HQ's attention list.
#[derive(Debug, Clone, PartialEq)]
pub struct Attention {
    pub kind: AttentionKind,
    pub order: Order,
    /// Why: the store's refusal, the router's reason, or the parked push's last error.
    pub reason: String,
    /// Since when: the store's decline, the rejection, or the first push parked.
    pub since: DateTime<Utc>,
    /// Stores that declined the order, oldest first.
    pub declined_by: Vec<StoreId>,
}

/// How many orders of a channel the summary counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChannelCounts {
    pub channel: String,
    pub total: i64,
    /// Not in a final status.
    pub open: i64,
    pub rejected: i64,
    pub cancelled: i64,
}

/// How many orders of a store the summary counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoreCounts {
    pub total: i64,
    /// Not in a final status.
    pub open: i64,
    /// Assigned and not yet accepted (`received`).
    pub waiting: i64,
}

/// Orders received since a time, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderCounts {
    /// Every status, in [`Status::ALL`] order, with its count (0 where none).
    pub by_status: Vec<(Status, i64)>,
    /// Channels with orders, most orders first.
    pub by_channel: Vec<ChannelCounts>,
    /// Stores with orders.
    pub by_store: HashMap<StoreId, StoreCounts>,
    /// Open orders with no store (waiting for the router or for HQ).
    pub unassigned: i64,
}

/// What waits for HQ, counted as the attention list and `/parked` list it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AttentionCounts {
    pub declined: i64,
    pub timed_out: i64,
    pub no_store: i64,
    /// Orders with a parked status push.
    pub sync_parked: i64,
    /// Outbox messages the broker refused.
    pub set_aside: i64,
}

/// A status push parked for HQ.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParkedSync {
    pub order_id: OrderId,
    pub channel: String,
    pub display_code: Option<String>,
    pub store_id: Option<StoreId>,
    /// The status change's event in the order's history.
    pub event_id: i64,
    pub action: StatusAction,
    pub attempts: i32,
    pub error: Option<String>,
    pub parked_at: DateTime<Utc>,
}

/// An outbox message the broker refused (unroutable, or not carriable), set aside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetAside {
    pub id: i64,
    pub routing_key: String,
    pub kind: String,
    pub message_id: String,
    pub refusal: Option<String>,
    pub refused_at: Option<DateTime<Utc>>,
}

/// One status push of an order and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncState {
    /// The status change's event in the order's history.
    pub event_id: i64,
    pub action: StatusAction,
    /// `pending`, `delivered`, `skipped` or `parked`.
    pub state: String,
    /// Failed attempts so far.
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// What HQ's replay of an order's parked pushes did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replayed {
    pub order_id: OrderId,
    /// How many pushes went back to pending.
    pub replayed: usize,
    /// Their status changes' events, oldest first.
    pub event_ids: Vec<i64>,
}

/// Why HQ's replay of an order's parked pushes did nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("order {0} not found")]
    NotFound(OrderId),
    #[error("order {0} has no parked status push to replay")]
    NothingParked(OrderId),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<tokio_postgres::Error> for ReplayError {
    fn from(e: tokio_postgres::Error) -> Self {
        ReplayError::Db(DbError::Query(e))
    }
}

impl From<deadpool_postgres::PoolError> for ReplayError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ReplayError::Db(DbError::Pool(e))
    }
}

/// How the last store that declined an order (on `orders`, unaliased) gave it back:
/// `store` (rejected) or `timeout`.
const LAST_DECLINE_BY: &str = "(SELECT e.data ->> 'by' FROM order_events e
     WHERE e.order_id = orders.id AND e.kind = 'declined' ORDER BY e.id DESC LIMIT 1)";

/// Orders the router rejected for want of a store, rejected since `$1`. Routing that finds
/// no store records, in one transaction, its decision (`routed`, by the router, with the
/// reason) and then the rejection with that same reason; so the order's rejection is the
/// router's and the event just before it is a `routed` of the router with the same
/// reason. The deadline guard's rejections (of orders that waited at a store or for HQ)
/// do not look like that: their reason is the guard's, never an assignment's.
/// Yields `o` (the order), `rejected_at` and `rejection` (the router's reason).
const NO_STORE_FROM: &str = "FROM orders o
     CROSS JOIN LATERAL (
         SELECT e.id AS rejection_id, e.at AS rejected_at, e.reason AS rejection,
                e.source AS rejected_by
         FROM order_events e
         WHERE e.order_id = o.id AND e.kind = 'status_changed' AND e.status = 'rejected'
         ORDER BY e.id DESC LIMIT 1) rej
     WHERE o.status = 'rejected' AND o.updated_at >= $1 AND rej.rejected_by = 'router'
       AND (SELECT p.kind = 'routed' AND p.source = 'router'
                   AND p.reason IS NOT DISTINCT FROM rej.rejection
            FROM order_events p
            WHERE p.order_id = o.id AND p.id < rej.rejection_id
            ORDER BY p.id DESC LIMIT 1)";

fn store_ids(ids: Vec<String>) -> Result<Vec<StoreId>, DbError> {
    ids.into_iter()
        .map(|id| StoreId::parse(id).map_err(|e| DbError::Corrupt(format!("store id: {e}"))))
        .collect()
}

/// An attention entry of `kind` from a row of [`ORDER_COLUMNS`] followed by
/// `declined_by`, the reason (none: empty) and since when it waits (none: the epoch).
fn attention_from_row(kind: AttentionKind, row: &Row) -> Result<Attention, DbError> {
    Ok(Attention {
        kind,
        order: order_from_row(row)?,
        declined_by: store_ids(row.get(7))?,
        reason: row.get::<_, Option<String>>(8).unwrap_or_default(),
        since: row.get::<_, Option<DateTime<Utc>>>(9).unwrap_or_default(),
    })
}

fn status_of(value: &str) -> Result<Status, DbError> {
    Status::parse(value).ok_or_else(|| DbError::Corrupt(format!("order status {value}")))
}

fn action_of(value: serde_json::Value) -> Result<StatusAction, DbError> {
    serde_json::from_value(value).map_err(|e| DbError::Corrupt(format!("sync action: {e}")))
}

/// The search: the term (`$1`) against the lowered display code and channel order id,
/// or the order id (`$2`) where the term is one; a store sees only its own orders.
/// Returns the SQL and its parameters (`limit` last).
fn search_query<'a>(
    term: &'a String,
    id: &'a Option<uuid::Uuid>,
    store: &'a Option<String>,
    status: &'a Option<String>,
    limit: &'a i64,
) -> (String, Vec<&'a (dyn ToSql + Sync)>) {
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![term];
    let mut matches =
        "lower(doc ->> 'display_code') = lower($1) OR lower(external_order_id) = lower($1)"
            .to_owned();
    if let Some(id) = id {
        params.push(id);
        matches.push_str(&format!(" OR id = ${}", params.len()));
    }
    let mut sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE ({matches})");
    if let Some(store) = store {
        params.push(store);
        sql.push_str(&format!(" AND store_id = ${}", params.len()));
    }
    if let Some(status) = status {
        params.push(status);
        sql.push_str(&format!(" AND status = ${}", params.len()));
    }
    params.push(limit);
    sql.push_str(&format!(
        " ORDER BY received_at DESC, id DESC LIMIT ${}",
        params.len()
    ));
    (sql, params)
}

impl Db {
    /// Orders received since `since`, counted by status, by channel and by store (one
    /// query over the orders' received-time index).
    pub async fn order_counts(&self, since: DateTime<Utc>) -> Result<OrderCounts, DbError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &client
                    .prepare_cached(
                        "SELECT GROUPING(channel, store_id), channel, store_id, status, count(*)
                 FROM orders WHERE received_at >= $1
                 GROUP BY GROUPING SETS ((channel, status), (store_id, status))",
                    )
                    .await?,
                &[&since],
            )
            .await?;
        let mut by_status: Vec<(Status, i64)> = Status::ALL.iter().map(|s| (*s, 0)).collect();
        let mut by_channel: HashMap<String, ChannelCounts> = HashMap::new();
        let mut counts = OrderCounts::default();
        for row in &rows {
            let grouping: i32 = row.get(0);
            let status = status_of(row.get(3))?;
            let n: i64 = row.get(4);
            let open = if status.is_final() { 0 } else { n };
            // GROUPING's bit 1 is the channel, bit 0 the store: 1 = the (channel, status)
            // set, 2 = the (store, status) set.
            if grouping == 1 {
                let channel: String = row.get(1);
                if let Some(slot) = by_status.iter_mut().find(|(s, _)| *s == status) {
                    slot.1 += n;
                }
                let entry = by_channel
                    .entry(channel.clone())
                    .or_insert_with(|| ChannelCounts {
                        channel,
                        ..ChannelCounts::default()
                    });
                entry.total += n;
                entry.open += open;
                entry.rejected += if status == Status::Rejected { n } else { 0 };
                entry.cancelled += if status == Status::Cancelled { n } else { 0 };
            } else {
                let store: Option<String> = row.get(2);
                let Some(store) = store else {
                    counts.unassigned += open;
                    continue;
                };
                let store = StoreId::parse(store)
                    .map_err(|e| DbError::Corrupt(format!("order store: {e}")))?;
                let entry = counts.by_store.entry(store).or_default();
                entry.total += n;
                entry.open += open;
                entry.waiting += if status == Status::Received { n } else { 0 };
            }
        }
        let mut by_channel: Vec<ChannelCounts> = by_channel.into_values().collect();
        by_channel.sort_by(|a, b| {
            b.total
                .cmp(&a.total)
                .then_with(|| a.channel.cmp(&b.channel))
        });
        counts.by_status = by_status;
        counts.by_channel = by_channel;
        Ok(counts)
    }

    /// What waits for HQ, counted exactly as [`Db::attention_list`] and the parked lists
    /// list it; orders no store could take count from `no_store_since`.
    pub async fn attention_counts(
        &self,
        no_store_since: DateTime<Utc>,
    ) -> Result<AttentionCounts, DbError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT count(*) FILTER (WHERE waiting.by IS DISTINCT FROM 'timeout'),
                    count(*) FILTER (WHERE waiting.by = 'timeout'),
                    (SELECT count(*) {NO_STORE_FROM}),
                    (SELECT count(DISTINCT order_id) FROM status_syncs WHERE state = 'parked'),
                    (SELECT count(*) FROM outbox WHERE refused_at IS NOT NULL)
             FROM (SELECT {LAST_DECLINE_BY} AS by FROM orders WHERE attention IS NOT NULL) waiting"
        );
        let row = client
            .query_one(&client.prepare_cached(&sql).await?, &[&no_store_since])
            .await?;
        Ok(AttentionCounts {
            declined: row.get(0),
            timed_out: row.get(1),
            no_store: row.get(2),
            sync_parked: row.get(3),
            set_aside: row.get(4),
        })
    }

    /// HQ's attention list: orders waiting for HQ (a store the channel named declined them
    /// or let them time out), then orders with a parked status push, then orders the
    /// router rejected for want of a store since `no_store_since`; longest-waiting first
    /// within each; at most `limit` in all.
    pub async fn attention_list(
        &self,
        limit: i64,
        no_store_since: DateTime<Utc>,
    ) -> Result<Vec<Attention>, DbError> {
        let client = self.pool.get().await?;
        let mut items = Vec::new();

        let sql = format!(
            "SELECT {ORDER_COLUMNS}, declined_by, attention, attention_since, {LAST_DECLINE_BY}
             FROM orders WHERE attention IS NOT NULL ORDER BY attention_since, id LIMIT $1"
        );
        for row in client
            .query(&client.prepare_cached(&sql).await?, &[&limit])
            .await?
        {
            let by: Option<String> = row.get(10);
            let kind = if by.as_deref() == Some("timeout") {
                AttentionKind::TimedOut
            } else {
                AttentionKind::Declined
            };
            items.push(attention_from_row(kind, &row)?);
        }

        let sql = format!(
            "WITH parked AS (
                 SELECT DISTINCT ON (order_id) order_id, last_error, updated_at AS parked_at
                 FROM status_syncs WHERE state = 'parked' ORDER BY order_id, event_id)
             SELECT {ORDER_COLUMNS}, declined_by, last_error, parked_at
             FROM parked JOIN orders ON orders.id = parked.order_id
             ORDER BY parked_at, id LIMIT $1"
        );
        for row in client
            .query(&client.prepare_cached(&sql).await?, &[&limit])
            .await?
        {
            items.push(attention_from_row(AttentionKind::SyncParked, &row)?);
        }

        let sql = format!(
            "SELECT {ORDER_COLUMNS}, declined_by, rejection, rejected_at {NO_STORE_FROM}
             ORDER BY rejected_at, id LIMIT $2"
        );
        for row in client
            .query(
                &client.prepare_cached(&sql).await?,
                &[&no_store_since, &limit],
            )
            .await?
        {
            items.push(attention_from_row(AttentionKind::NoStore, &row)?);
        }
        items.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(items)
    }

    /// Orders whose display code or channel order id is `term` (ignoring case), or whose
    /// id it is; a store's own only (`store`), optionally of one status; newest first.
    pub async fn search_orders(
        &self,
        store: Option<&StoreId>,
        term: &str,
        status: Option<Status>,
        limit: i64,
    ) -> Result<Vec<Order>, DbError> {
        let term = term.trim().to_owned();
        let id = OrderId::parse(&term).ok().map(|id| id.as_uuid());
        let store = store.map(|s| s.as_str().to_owned());
        let status = status.map(|s| s.as_str().to_owned());
        let (sql, params) = search_query(&term, &id, &store, &status, &limit);
        let client = self.pool.get().await?;
        let rows = client
            .query(&client.prepare_cached(&sql).await?, &params)
            .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// The plan PostgreSQL chooses for HQ's search of `term` (`EXPLAIN`, one line a node):
    /// for checking that the search indexes serve it.
    pub async fn explain_search(&self, term: &str) -> Result<String, DbError> {
        let term = term.trim().to_owned();
        let id = OrderId::parse(&term).ok().map(|id| id.as_uuid());
        let limit = 50_i64;
        let (sql, params) = search_query(&term, &id, &None, &None, &limit);
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &client
                    .prepare_cached(&format!("EXPLAIN (COSTS OFF) {sql}"))
                    .await?,
                &params,
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| row.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// Status pushes parked for HQ, oldest first, at most `limit`.
    pub async fn parked_syncs(&self, limit: i64) -> Result<Vec<ParkedSync>, DbError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &client.prepare_cached("SELECT s.order_id, o.channel, o.doc ->> 'display_code', o.store_id, s.event_id,
                        s.action, s.attempts, s.last_error, s.updated_at
                 FROM status_syncs s JOIN orders o ON o.id = s.order_id
                 WHERE s.state = 'parked' ORDER BY s.updated_at, s.order_id, s.event_id LIMIT $1").await?,
                &[&limit],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let store: Option<String> = row.get(3);
                Ok(ParkedSync {
                    order_id: OrderId::from_uuid(row.get(0)),
                    channel: row.get(1),
                    display_code: row.get(2),
                    store_id: store
                        .map(StoreId::parse)
                        .transpose()
                        .map_err(|e| DbError::Corrupt(format!("order store: {e}")))?,
                    event_id: row.get(4),
                    action: action_of(row.get(5))?,
                    attempts: row.get(6),
                    error: row.get(7),
                    parked_at: row.get(8),
                })
            })
            .collect()
    }

    /// Outbox messages the broker refused, set aside, oldest first, at most `limit`.
    pub async fn set_aside(&self, limit: i64) -> Result<Vec<SetAside>, DbError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &client
                    .prepare_cached(
                        "SELECT id, routing_key, kind, message_id, refusal, refused_at FROM outbox
                 WHERE refused_at IS NOT NULL ORDER BY id LIMIT $1",
                    )
                    .await?,
                &[&limit],
            )
            .await?;
        Ok(rows.iter().map(set_aside_from_row).collect())
    }

    /// The status pushes of an order and where each stands, oldest first.
    pub async fn sync_states(&self, order_id: OrderId) -> Result<Vec<SyncState>, DbError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &client
                    .prepare_cached(
                        "SELECT event_id, action, state, attempts, last_error FROM status_syncs
                 WHERE order_id = $1 ORDER BY event_id",
                    )
                    .await?,
                &[&order_id.as_uuid()],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(SyncState {
                    event_id: row.get(0),
                    action: action_of(row.get(1))?,
                    state: row.get(2),
                    attempts: row.get(3),
                    last_error: row.get(4),
                })
            })
            .collect()
    }

    /// HQ replays an order's parked status pushes: in one transaction they go back to
    /// pending (no attempts yet, due now), the order's history records the replay
    /// (`sync_replayed`, by HQ, with the event ids) and a sync nudge goes to the outbox,
    /// so the sync worker pushes them again, oldest first. Taken under the order's sync
    /// lock, so it never lands in the middle of a sync run.
    pub async fn replay_parked(&self, order_id: OrderId) -> Result<Replayed, ReplayError> {
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client)?;
        tx.execute(
            &tx.prepare_cached("SELECT pg_advisory_xact_lock($1)")
                .await?,
            &[&sync::lock_key(order_id)],
        )
        .await?;
        let channel: String = tx
            .query_opt(
                &tx.prepare_cached("SELECT channel FROM orders WHERE id = $1")
                    .await?,
                &[&order_id.as_uuid()],
            )
            .await?
            .ok_or(ReplayError::NotFound(order_id))?
            .get(0);
        let now = Utc::now();
        let rows = tx
            .query(
                &tx.prepare_cached(
                    "UPDATE status_syncs SET state = 'pending', attempts = 0, next_attempt_at = $2,
                     last_error = NULL, updated_at = $2
                 WHERE order_id = $1 AND state = 'parked' RETURNING event_id",
                )
                .await?,
                &[&order_id.as_uuid(), &now],
            )
            .await?;
        let mut event_ids: Vec<i64> = rows.iter().map(|row| row.get(0)).collect();
        if event_ids.is_empty() {
            return Err(ReplayError::NothingParked(order_id));
        }
        event_ids.sort_unstable();
        let reason = match event_ids.len() {
            1 => "HQ replayed 1 parked status push".to_owned(),
            n => format!("HQ replayed {n} parked status pushes"),
        };
        let data = json!({ "event_ids": event_ids });
        insert_event(
            &tx,
            NewEvent {
                order_id,
                at: now,
                source: EventSource::Hq,
                kind: EventKind::SyncReplayed,
                status: None,
                reason: Some(&reason),
                data: Some(&data),
            },
        )
        .await?;
        let insert = outbox::prepare_insert(&tx).await?;
        outbox::send_nudge(&tx, &insert, self.routes().sync(&channel, order_id)).await?;
        tx.commit().await?;
        Ok(Replayed {
            order_id,
            replayed: event_ids.len(),
            event_ids,
        })
    }

    /// Clears the refusal of a set-aside outbox message, so the relay publishes it again;
    /// `None` when there is no set-aside message `id`.
    pub async fn replay_set_aside(&self, id: i64) -> Result<Option<SetAside>, DbError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &client.prepare_cached("UPDATE outbox o SET refused_at = NULL, refusal = NULL
                 FROM outbox before
                 WHERE o.id = $1 AND before.id = o.id AND before.refused_at IS NOT NULL
                 RETURNING o.id, o.routing_key, o.kind, o.message_id, before.refusal, before.refused_at").await?,
                &[&id],
            )
            .await?;
        Ok(row.as_ref().map(set_aside_from_row))
    }
}

fn set_aside_from_row(row: &Row) -> SetAside {
    SetAside {
        id: row.get(0),
        routing_key: row.get(1),
        kind: row.get(2),
        message_id: row.get(3),
        refusal: row.get(4),
        refused_at: row.get(5),
    }
}
