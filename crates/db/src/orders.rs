//! Orders: reads, status changes through the state machine, routing and store delivery.

use chrono::{DateTime, Utc};
use crossdock_model::{
    EventKind, EventSource, Flag, NewOrder, Order, OrderEvent, OrderId, Status, StatusAction,
    StoreId, TransitionError,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use crate::outbox::Tx;
use crate::pipeline::{Sent, params};
use crate::{Db, DbError, outbox};

/// Why a status change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// No such order, or not one the caller may see.
    #[error("order {0} not found")]
    NotFound(OrderId),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<tokio_postgres::Error> for ChangeError {
    fn from(e: tokio_postgres::Error) -> Self {
        ChangeError::Db(DbError::Query(e))
    }
}

impl From<deadpool_postgres::PoolError> for ChangeError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ChangeError::Db(DbError::Pool(e))
    }
}

/// Who asks for a change, and what they may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A store: only its own orders.
    Store(StoreId),
    /// HQ: any order.
    Hq,
    /// The router: any order.
    Router,
    /// The order's own channel (the platform): nothing is synced back to it.
    Channel,
}

impl Actor {
    fn source(&self) -> EventSource {
        match self {
            Actor::Store(_) => EventSource::Store,
            Actor::Hq => EventSource::Hq,
            Actor::Router => EventSource::Router,
            Actor::Channel => EventSource::Channel,
        }
    }
}

/// What a store queue's hand-over of an order came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handover {
    /// The first hand-over to this store.
    First,
    /// A redelivery of an order the store already has.
    Again,
    /// The order is no longer this store's (declined, timed out, re-assigned).
    NotTheStore,
}

pub(crate) const ORDER_COLUMNS: &str = "id, status, store_id, flags, received_at, updated_at, doc";

pub(crate) fn order_from_row(row: &Row) -> Result<Order, DbError> {
    let status: String = row.get(1);
    let store: Option<String> = row.get(2);
    let flags: serde_json::Value = row.get(3);
    let doc: serde_json::Value = row.get(6);
    let corrupt = |what: &str, e: String| DbError::Corrupt(format!("order {what}: {e}"));
    Ok(Order {
        id: OrderId::from_uuid(row.get(0)),
        status: Status::parse(&status).ok_or_else(|| corrupt("status", status.clone()))?,
        store_id: store
            .map(StoreId::parse)
            .transpose()
            .map_err(|e| corrupt("store", e.to_string()))?,
        flags: serde_json::from_value::<Vec<Flag>>(flags)
            .map_err(|e| corrupt("flags", e.to_string()))?,
        received_at: row.get(4),
        updated_at: row.get(5),
        order: serde_json::from_value::<NewOrder>(doc)
            .map_err(|e| corrupt("document", e.to_string()))?,
    })
}

fn event_from_row(index: usize, row: &Row) -> Result<OrderEvent, DbError> {
    let source: String = row.get(1);
    let kind: String = row.get(2);
    let status: Option<String> = row.get(3);
    let data: Option<serde_json::Value> = row.get(5);
    Ok(OrderEvent {
        seq: i32::try_from(index + 1).unwrap_or(i32::MAX),
        at: row.get(0),
        source: EventSource::parse(&source)
            .ok_or_else(|| DbError::Corrupt(format!("event source {source}")))?,
        kind: EventKind::parse(&kind)
            .ok_or_else(|| DbError::Corrupt(format!("event kind {kind}")))?,
        status: status.as_deref().and_then(Status::parse),
        reason: row.get(4),
        data: data.unwrap_or(serde_json::Value::Null),
    })
}

/// An event to append to an order's history.
pub(crate) struct NewEvent<'a> {
    pub order_id: OrderId,
    pub at: DateTime<Utc>,
    pub source: EventSource,
    pub kind: EventKind,
    pub status: Option<Status>,
    pub reason: Option<&'a str>,
    pub data: Option<&'a serde_json::Value>,
}

/// Appends an event to an order's history; returns its id.
pub(crate) async fn insert_event(
    tx: &Tx<'_>,
    event: NewEvent<'_>,
) -> Result<i64, tokio_postgres::Error> {
    send_event(tx, &prepare_event(tx).await?, event).await
}

/// [`send_event`]'s statement, prepared.
pub(crate) async fn prepare_event(tx: &Tx<'_>) -> Result<Statement, tokio_postgres::Error> {
    tx.prepare_cached(
        "INSERT INTO order_events (order_id, at, source, kind, status, reason, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .await
}

/// [`send_events`]' statement, prepared.
pub(crate) async fn prepare_events(tx: &Tx<'_>) -> Result<Statement, tokio_postgres::Error> {
    tx.prepare_cached(
        "INSERT INTO order_events (order_id, at, source, kind, status, reason, data)
         SELECT e.order_id, e.at, e.source, e.kind, e.status, e.reason, e.data
           FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
                       $6::text[], $7::jsonb[])
                WITH ORDINALITY AS e (order_id, at, source, kind, status, reason, data, n)
          ORDER BY e.n",
    )
    .await
}

/// Sends the insert of `events` ahead, in one statement: their ids are drawn in the order
/// given.
pub(crate) fn send_events<'a>(
    tx: &Tx<'a>,
    statement: &Statement,
    events: &[NewEvent<'_>],
) -> Sent<'a, ()> {
    let column = |field: fn(&NewEvent<'_>) -> Option<String>| -> Vec<Option<String>> {
        events.iter().map(field).collect()
    };
    tx.send_execute(
        statement,
        params![
            events
                .iter()
                .map(|e| e.order_id.as_uuid())
                .collect::<Vec<_>>(),
            events.iter().map(|e| e.at).collect::<Vec<_>>(),
            column(|e| Some(e.source.as_str().to_owned())),
            column(|e| Some(e.kind.as_str().to_owned())),
            column(|e| e.status.map(|s| s.as_str().to_owned())),
            column(|e| e.reason.map(str::to_owned)),
            events.iter().map(|e| e.data.cloned()).collect::<Vec<_>>(),
        ],
    )
    .map(drop)
}

/// Sends the insert of `event` ahead ([`Tx::send_one`]); its answer is the event's id.
pub(crate) fn send_event<'a>(
    tx: &Tx<'a>,
    statement: &Statement,
    event: NewEvent<'_>,
) -> Sent<'a, i64> {
    let NewEvent {
        order_id,
        at,
        source,
        kind,
        status,
        reason,
        data,
    } = event;
    tx.send_one(
        statement,
        params![
            order_id.as_uuid(),
            at,
            source.as_str(),
            kind.as_str(),
            status.map(|s| s.as_str()),
            reason.map(str::to_owned),
            data.cloned(),
        ],
    )
    .map(|row| row.get(0))
}

/// Locks and reads an order inside `tx`.
pub(crate) async fn lock_order(tx: &Tx<'_>, order_id: OrderId) -> Result<Option<Order>, DbError> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 FOR NO KEY UPDATE");
    let row = tx
        .query_opt(&tx.prepare_cached(&sql).await?, &[&order_id.as_uuid()])
        .await?;
    row.as_ref().map(order_from_row).transpose()
}

/// Applies `action` to a locked order: state machine, status, event, and — unless the
/// channel itself asked — a pending sync and its nudge. A cancellation by the channel
/// settles the order's syncs still pending or parked as skipped: the platform cancelled
/// the order, so what it has not heard (or refused to hear: "the order has been
/// cancelled") is moot, and nothing of it is left for HQ to replay. The order's store
/// hears of every change at once, its own included: a store has several clients (a
/// console on each tablet, a POS bound to its store's keys), and each must learn what
/// the others did. Changes go to the store's status key, not its shard queue: the store
/// worker has nothing to do with them.
pub(crate) async fn apply_action(
    db: &Db,
    tx: &Tx<'_>,
    order: Order,
    action: &StatusAction,
    actor: &Actor,
) -> Result<Order, ChangeError> {
    let (order, sent) = send_action(db, tx, order, action, actor).await?;
    sent.await?;
    Ok(order)
}

/// [`apply_action`] with its statements sent and their answers left to read (to commit
/// with, [`Tx::commit_with`]). The state machine's refusal comes before anything is sent.
pub(crate) async fn send_action<'a>(
    db: &Db,
    tx: &Tx<'a>,
    mut order: Order,
    action: &StatusAction,
    actor: &Actor,
) -> Result<(Order, Sent<'a, ()>), ChangeError> {
    let from = order.status;
    let target = from.transition(action.target(), order.order.fulfillment.kind)?;
    let now = Utc::now();
    let channel = order.order.channel.as_str();
    let to_store = order.store_id.as_ref().map(|store| {
        let kind = format!("order.{}", target.as_str());
        db.routes().store_status(store, order.id, &kind)
    });
    // Every statement is prepared first, then all are sent together, without waiting for
    // each answer (pipelined): the sync names its event by the sequence's value the
    // event's insert just took, in this session.
    let update = tx
        .prepare_cached(
            "UPDATE orders SET status = $2, updated_at = $3, attention = NULL, attention_since = NULL
             WHERE id = $1",
        )
        .await?;
    let event = prepare_event(tx).await?;
    let outbox = outbox::prepare_insert(tx).await?;
    let then = if *actor != Actor::Channel {
        // Due no sooner than the order's syncs ahead of it (one backing off keeps it
        // waiting), so the due index lists an order's syncs in their order. An answer to
        // the platform's offer carries its deadline (see `due_syncs`). The order's syncs
        // are read by its id alone and the pending ones picked by FILTER: a `state =
        // 'pending'` condition would let a plan read every pending sync through the
        // sweeper's partial index instead (tests/plans.rs).
        Then::Sync(
            tx.prepare_cached(
                "INSERT INTO status_syncs (order_id, event_id, action, from_status, changed_at, state,
                                           channel, next_attempt_at, due_by)
                 VALUES ($1, currval('order_events_id_seq'), $2, $3, $4, 'pending', $5,
                         GREATEST(now(), (SELECT max(next_attempt_at) FILTER (WHERE state = 'pending')
                                            FROM status_syncs WHERE order_id = $1)), $6)",
            )
            .await?,
        )
    } else if target == Status::Cancelled {
        Then::Skip(tx.prepare_cached(SKIP_UNPUSHED).await?)
    } else {
        Then::Nothing
    };
    let action_json = serde_json::to_value(action).map_err(|e| DbError::Corrupt(e.to_string()))?;
    // Whatever an order waited for HQ for, a change of status settles it.
    let mut sent = tx
        .send_execute(&update, params![order.id.as_uuid(), target.as_str(), now])
        .also(send_event(
            tx,
            &event,
            NewEvent {
                order_id: order.id,
                at: now,
                source: actor.source(),
                kind: EventKind::StatusChanged,
                status: Some(target),
                reason: action.reason(),
                data: None,
            },
        ));
    if let Some(message) = to_store {
        sent = sent.also(outbox::send_insert(tx, &outbox, message));
    }
    match then {
        Then::Skip(skip) => {
            sent = sent.also(tx.send_execute(
                &skip,
                params![order.id.as_uuid(), "order cancelled by the platform"],
            ));
        }
        Then::Sync(sync) => {
            let due_by = order.order.fulfillment.answer_due_by(from);
            sent = sent
                .also(tx.send_execute(
                    &sync,
                    params![
                        order.id.as_uuid(),
                        action_json,
                        from.as_str(),
                        now,
                        channel.to_owned(),
                        due_by,
                    ],
                ))
                .also(outbox::send_nudge(
                    tx,
                    &outbox,
                    db.routes().sync(channel, order.id),
                ));
        }
        Then::Nothing => {}
    }
    order.status = target;
    order.updated_at = now;
    Ok((order, sent))
}

/// What a change of status writes beyond the order, its event and its store's message.
enum Then {
    /// A status sync and its nudge: the change is the store's, the router's or HQ's.
    Sync(Statement),
    /// The order's unpushed syncs skipped: the channel cancelled it.
    Skip(Statement),
    /// Nothing: other progress the channel reported.
    Nothing,
}

/// [`skip_unpushed`]'s statement.
const SKIP_UNPUSHED: &str =
    "UPDATE status_syncs SET state = 'skipped', last_error = $2, updated_at = now()
     WHERE order_id = $1 AND state IN ('pending', 'parked')";

/// Settles the order's syncs still pending or parked as skipped, for `why`: the platform
/// cancelled the order, so what it has not heard (or refused to hear) is moot.
pub(crate) async fn skip_unpushed(
    tx: &Tx<'_>,
    order_id: OrderId,
    why: &str,
) -> Result<u64, DbError> {
    Ok(tx
        .execute(
            &tx.prepare_cached(SKIP_UNPUSHED).await?,
            &[&order_id.as_uuid(), &why],
        )
        .await?)
}

impl Db {
    /// An order, if `scope` (a store) may see it; HQ passes `None`.
    pub async fn order(
        &self,
        id: OrderId,
        scope: Option<&StoreId>,
    ) -> Result<Option<Order>, DbError> {
        let client = self.pool.get().await?;
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1");
        let Some(row) = client
            .query_opt(&client.prepare_cached(&sql).await?, &[&id.as_uuid()])
            .await?
        else {
            return Ok(None);
        };
        let order = order_from_row(&row)?;
        match scope {
            Some(store) if order.store_id.as_ref() != Some(store) => Ok(None),
            _ => Ok(Some(order)),
        }
    }

    /// The order with this channel id, if any.
    pub async fn order_by_external(
        &self,
        channel: &str,
        external_order_id: &str,
    ) -> Result<Option<Order>, DbError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE channel = $1 AND external_order_id = $2"
        );
        let row = client
            .query_opt(
                &client.prepare_cached(&sql).await?,
                &[&channel, &external_order_id],
            )
            .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    /// An order's full history, oldest first.
    pub async fn events(&self, id: OrderId) -> Result<Vec<OrderEvent>, DbError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &client.prepare_cached("SELECT at, source, kind, status, reason, data FROM order_events WHERE order_id = $1 ORDER BY id").await?,
                &[&id.as_uuid()],
            )
            .await?;
        rows.iter()
            .enumerate()
            .map(|(i, row)| event_from_row(i, row))
            .collect()
    }

    /// Orders, newest first: a store's own (`store`), or all (HQ), optionally by status.
    pub async fn list_orders(
        &self,
        store: Option<&StoreId>,
        status: Option<Status>,
        limit: i64,
    ) -> Result<Vec<Order>, DbError> {
        let client = self.pool.get().await?;
        let mut sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE true");
        let store_param = store.map(|s| s.as_str().to_owned());
        let status_param = status.map(|s| s.as_str().to_owned());
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
        if let Some(store) = &store_param {
            params.push(store);
            sql.push_str(&format!(" AND store_id = ${}", params.len()));
        }
        if let Some(status) = &status_param {
            params.push(status);
            sql.push_str(&format!(" AND status = ${}", params.len()));
        }
        params.push(&limit);
        sql.push_str(&format!(
            " ORDER BY received_at DESC, id DESC LIMIT ${}",
            params.len()
        ));
        let rows = client
            .query(&client.prepare_cached(&sql).await?, &params)
            .await?;
        rows.iter().map(order_from_row).collect()
    }

    /// Changes an order's status for `actor`. A store may only change its own orders.
    pub async fn change_status(
        &self,
        id: OrderId,
        action: &StatusAction,
        actor: &Actor,
    ) -> Result<Order, ChangeError> {
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client)?;
        let order = lock_order(&tx, id)
            .await?
            .ok_or(ChangeError::NotFound(id))?;
        if let Actor::Store(store) = actor
            && order.store_id.as_ref() != Some(store)
        {
            return Err(ChangeError::NotFound(id));
        }
        // The change's statements and the commit in one round trip.
        let (order, sent) = send_action(self, &tx, order, action, actor).await?;
        tx.commit_with(sent).await?;
        Ok(order)
    }

    /// Records that a store queue handed each order to its store, what a store worker
    /// found waiting on its queue, in one statement: each the first time only, and only
    /// while the order is still that store's (a store that declined it, or lost it to a
    /// timeout, does not get it late). Every hand-over counts, an order named twice
    /// (a redelivery) twice. One answer per hand-over, in the same order.
    pub async fn record_store_deliveries(
        &self,
        handovers: &[(OrderId, StoreId)],
    ) -> Result<Vec<Handover>, DbError> {
        // Each (order, store) once, with how many times the batch names it: one row may
        // not be changed twice by one statement.
        let mut pairs: Vec<(&OrderId, &StoreId, i32)> = Vec::with_capacity(handovers.len());
        // Each hand-over's pair.
        let mut slots = Vec::with_capacity(handovers.len());
        for (id, store) in handovers {
            let slot = match pairs.iter().position(|(i, s, _)| *i == id && *s == store) {
                Some(slot) => {
                    pairs[slot].2 += 1;
                    slot
                }
                None => {
                    pairs.push((id, store, 1));
                    pairs.len() - 1
                }
            };
            slots.push(slot);
        }
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<uuid::Uuid> = pairs.iter().map(|(id, _, _)| id.as_uuid()).collect();
        let stores: Vec<&str> = pairs.iter().map(|(_, store, _)| store.as_str()).collect();
        let times: Vec<i32> = pairs.iter().map(|(_, _, times)| *times).collect();
        let client = self.pool.get().await?;
        // One statement, one round trip, one commit: the hand-overs counted, and the
        // event of each written the first time only (a data-modifying CTE runs whether or
        // not it is read). Each order is found by its id alone, one lookup per hand-over
        // (`OFFSET 0` keeps the subquery a lookup, not a join the plan may turn into a
        // scan of the orders; `IS NOT DISTINCT FROM` is no index condition, so no plan can
        // look it up among its store's orders instead: tests/plans.rs).
        let rows = client
            .query(
                &client
                    .prepare_cached(
                        "WITH batch AS (
                             SELECT * FROM unnest($1::uuid[], $2::text[], $3::integer[])
                                 WITH ORDINALITY AS b (order_id, store_id, times, pair)),
                         handed AS (
                             INSERT INTO store_deliveries (order_id, store_id, delivered_at, handovers)
                             SELECT b.order_id, b.store_id, $4, b.times
                               FROM batch b CROSS JOIN LATERAL (
                                   SELECT 1 FROM orders
                                    WHERE id = b.order_id AND store_id IS NOT DISTINCT FROM b.store_id
                                   OFFSET 0) AS its_store
                             ON CONFLICT (order_id, store_id)
                                 DO UPDATE SET handovers = store_deliveries.handovers + EXCLUDED.handovers
                             RETURNING order_id, store_id, handovers),
                         counted AS (
                             SELECT h.order_id, h.store_id, b.pair, h.handovers - b.times AS before
                               FROM handed h JOIN batch b USING (order_id, store_id)),
                         event AS (
                             INSERT INTO order_events (order_id, at, source, kind, reason)
                             SELECT order_id, $4, $5, $6, 'on the queue of ' || store_id
                               FROM counted WHERE before = 0)
                         SELECT pair, before FROM counted",
                    )
                    .await?,
                &[
                    &ids,
                    &stores,
                    &times,
                    &Utc::now(),
                    &EventSource::Hub.as_str(),
                    &EventKind::DeliveredToStore.as_str(),
                ],
            )
            .await?;
        // Each pair's hand-overs before this batch (none: the order is not the store's),
        // by the pair's place in the batch (counted from 1).
        let mut before: Vec<Option<i32>> = vec![None; pairs.len()];
        for row in &rows {
            let pair = usize::try_from(row.get::<_, i64>(0)).unwrap_or_default();
            if let Some(slot) = pair.checked_sub(1).and_then(|at| before.get_mut(at)) {
                *slot = Some(row.get(1));
            }
        }
        // Each hand-over in turn: the first of a pair is first if the store had none
        // before; any later one in the batch is a redelivery.
        let mut counted = vec![false; pairs.len()];
        Ok(slots
            .into_iter()
            .map(|slot| match before[slot] {
                None => Handover::NotTheStore,
                Some(0) if !std::mem::replace(&mut counted[slot], true) => Handover::First,
                Some(_) => Handover::Again,
            })
            .collect())
    }

    /// How often store queues handed an order over, over every store it went to (0: never).
    pub async fn store_handovers(&self, id: OrderId) -> Result<i32, DbError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                &client.prepare_cached("SELECT COALESCE(sum(handovers), 0)::integer FROM store_deliveries WHERE order_id = $1").await?,
                &[&id.as_uuid()],
            )
            .await?;
        Ok(row.get(0))
    }
}
