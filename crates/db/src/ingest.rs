//! Recording what a platform sent: inbox row (raw bytes, dedupe key) plus its effect, in
//! one transaction, before the hub answers the platform.

use chrono::{DateTime, Utc};
use crossdock_model::{EventKind, EventSource, Flag, NewOrder, OrderId, Status, StatusAction};

use std::collections::{HashMap, HashSet};

use crate::orders::{
    Actor, ChangeError, NewEvent, apply_action, lock_order, prepare_events, send_events,
    skip_unpushed,
};
use crate::outbox::Tx;
use crate::pipeline::{Sent, params};
use crate::{Db, DbError, outbox};
use tokio_postgres::types::ToSql;

/// A platform's request as received, for the inbox and the quarantine.
#[derive(Debug, Clone)]
pub struct RawRecord<'a> {
    pub channel: &'a str,
    pub dedupe_key: &'a str,
    pub received_at: DateTime<Utc>,
    /// The request headers worth keeping (never credentials).
    pub headers: serde_json::Value,
    pub body: &'a [u8],
}

/// What recording did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New {
        order_id: Option<OrderId>,
    },
    /// A replay of a request already recorded, or a second request for an order already
    /// stored: nothing changed.
    Duplicate {
        order_id: Option<OrderId>,
    },
}

impl Recorded {
    pub fn order_id(&self) -> Option<OrderId> {
        match self {
            Recorded::New { order_id } | Recorded::Duplicate { order_id } => *order_id,
        }
    }

    pub fn is_duplicate(&self) -> bool {
        matches!(self, Recorded::Duplicate { .. })
    }
}

/// Inserts the inbox row; `None` if the key was already recorded (then its order id).
async fn insert_inbox(
    tx: &Tx<'_>,
    raw: &RawRecord<'_>,
    kind: &str,
) -> Result<Option<Option<OrderId>>, tokio_postgres::Error> {
    let inserted = tx
        .execute(
            &tx.prepare_cached(INSERT_INBOX).await?,
            &inbox_params(raw, &kind),
        )
        .await?;
    if inserted == 1 {
        return Ok(None);
    }
    Ok(Some(inbox_order(tx, raw).await?))
}

/// [`INSERT_INBOX`]'s parameters: the request `raw`, recorded as a `kind`.
fn inbox_params<'r>(raw: &'r RawRecord<'_>, kind: &'r &str) -> [&'r (dyn ToSql + Sync); 6] {
    [
        &raw.channel,
        &raw.dedupe_key,
        &raw.received_at,
        kind,
        &raw.headers,
        &raw.body,
    ]
}

/// [`insert_inbox`]'s statement: nothing when the key is recorded already.
const INSERT_INBOX: &str =
    "INSERT INTO inbox (channel, dedupe_key, received_at, kind, headers, body)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (channel, dedupe_key) DO NOTHING";

/// The order the inbox row of `raw`'s key is linked to.
async fn inbox_order(
    tx: &Tx<'_>,
    raw: &RawRecord<'_>,
) -> Result<Option<OrderId>, tokio_postgres::Error> {
    let row = tx
        .query_one(
            &tx.prepare_cached("SELECT order_id FROM inbox WHERE channel = $1 AND dedupe_key = $2")
                .await?,
            &[&raw.channel, &raw.dedupe_key],
        )
        .await?;
    let order_id: Option<uuid::Uuid> = row.get(0);
    Ok(order_id.map(OrderId::from_uuid))
}

/// Serializes, until the transaction ends, every recording about one platform order: its
/// insertion and its cancellation (or progress). Without it a cancellation racing the
/// order's first delivery could look for the order before the order's transaction
/// committed, while that transaction looked for a tombstone before the cancellation's
/// committed: the order would go live and the tombstone would never be read.
async fn lock_external(
    tx: &Tx<'_>,
    channel: &str,
    external_order_id: &str,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        &tx.prepare_cached(LOCK_EXTERNAL).await?,
        &[&EXTERNAL_ORDER_LOCK, &channel, &external_order_id],
    )
    .await?;
    Ok(())
}

/// [`lock_external`]'s statement. The two-key form keeps these apart from the sync runs'
/// one-key advisory locks.
const LOCK_EXTERNAL: &str = "SELECT pg_advisory_xact_lock($1, hashtext($2 || '/' || $3))";

/// The first key of [`lock_external`]'s advisory locks.
const EXTERNAL_ORDER_LOCK: i32 = 0x4344_0001;

/// [`link_inbox`]'s statement.
const LINK_INBOX: &str = "UPDATE inbox SET order_id = $3 WHERE channel = $1 AND dedupe_key = $2";

async fn link_inbox(
    tx: &Tx<'_>,
    raw_channel: &str,
    dedupe_key: &str,
    order_id: OrderId,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        &tx.prepare_cached(LINK_INBOX).await?,
        &[&raw_channel, &dedupe_key, &order_id.as_uuid()],
    )
    .await?;
    Ok(())
}

/// A platform's request carrying an order, to record: the request as received, the
/// order and the flags its check raised.
#[derive(Debug, Clone, Copy)]
pub struct OrderRequest<'a> {
    pub raw: &'a RawRecord<'a>,
    pub order: &'a NewOrder,
    pub flags: &'a [Flag],
}

/// [`Db::record_orders`]' locks: [`LOCK_EXTERNAL`]'s, each platform order once, in the
/// order of their keys, so that two batches never wait on each other in a circle.
const LOCK_EXTERNALS: &str = "SELECT pg_advisory_xact_lock($1, k)
       FROM (SELECT DISTINCT hashtext(w.channel || '/' || w.external_order_id) AS k
               FROM unnest($2::text[], $3::text[]) AS w (channel, external_order_id)
              ORDER BY k) AS keys";

/// [`Db::record_orders`]' recording, in one statement once the locks are held:
/// - `fresh`: the requests' inbox rows (a replay's is there already: nothing), each
///   linked to its order: the one stored already, or the batch's new one (`w.id`; the
///   requests of one platform order share it);
/// - `inserted`: the orders of the fresh requests that are not stored yet, once each;
/// - `tombstones`: cancellations the platform sent before the orders just inserted
///   (only ever left for an order not stored yet, so an order already known has none);
///
/// and, for each fresh request: its order, whether the batch inserted it, and the
/// tombstone's reason if it had one. Rows are inserted in key order (inbox) and id order
/// (orders); rows already there are found by key (`LATERAL … OFFSET 0`, so no plan can
/// make a scan of them: tests/plans.rs).
const RECORD_ORDERS: &str = "WITH w AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::jsonb[],
                              $5::bytea[], $6::uuid[], $7::text[], $8::text[], $9::jsonb[],
                              $10::jsonb[], $11::timestamptz[])
                  WITH ORDINALITY AS w (inbox_channel, dedupe_key, received_at, headers, body,
                                        id, channel, external_order_id, doc, flags,
                                        accept_by, n)
     ), fresh AS (
         INSERT INTO inbox (channel, dedupe_key, received_at, kind, order_id, headers, body)
         SELECT w.inbox_channel, w.dedupe_key, w.received_at, 'order', coalesce(known.id, w.id),
                w.headers, w.body
           FROM w LEFT JOIN LATERAL (
                    SELECT id FROM orders
                     WHERE orders.channel = w.channel
                       AND orders.external_order_id = w.external_order_id OFFSET 0) AS known
                ON true
          ORDER BY w.inbox_channel, w.dedupe_key, w.n
         ON CONFLICT (channel, dedupe_key) DO NOTHING
         RETURNING channel, dedupe_key, order_id
     ), inserted AS (
         INSERT INTO orders (id, channel, external_order_id, status, doc, flags, received_at,
                             updated_at, accept_by)
         SELECT DISTINCT ON (w.id) w.id, w.channel, w.external_order_id, 'received', w.doc,
                w.flags, w.received_at, w.received_at, w.accept_by
           FROM w JOIN fresh f
                ON f.channel = w.inbox_channel AND f.dedupe_key = w.dedupe_key AND f.order_id = w.id
          ORDER BY w.id, w.n
         ON CONFLICT (channel, external_order_id) DO NOTHING
         RETURNING id, channel, external_order_id
     ), tombstones AS (
         DELETE FROM cancellations c
          USING (SELECT i.id, found.ctid AS row FROM inserted i
                  CROSS JOIN LATERAL (
                      SELECT ctid FROM cancellations
                       WHERE cancellations.channel = i.channel
                         AND cancellations.external_order_id = i.external_order_id
                      OFFSET 0) AS found) AS t
          WHERE c.ctid = t.row
         RETURNING t.id, c.reason
     )
     SELECT f.channel, f.dedupe_key, f.order_id, i.id IS NOT NULL, t.id IS NOT NULL, t.reason
       FROM fresh f
       LEFT JOIN inserted i ON i.id = f.order_id
       LEFT JOIN tombstones t ON t.id = f.order_id";

/// The orders linked to inbox rows, by key: what replays answer.
const INBOX_ORDERS: &str = "SELECT i.channel, i.dedupe_key, i.order_id
       FROM unnest($1::text[], $2::text[]) AS w (channel, dedupe_key)
       JOIN inbox i ON i.channel = w.channel AND i.dedupe_key = w.dedupe_key";

/// An order the transaction inserted, for what follows an insert.
struct NewlyStored<'a> {
    id: OrderId,
    order: &'a NewOrder,
    flags: &'a [Flag],
    received_at: DateTime<Utc>,
    /// The platform cancelled it before it arrived (the reason, if given).
    tombstone: Option<Option<String>>,
}

/// The JSON of a value the hub made (an order, its flags): it always serializes.
fn to_json(value: &impl serde::Serialize) -> Result<serde_json::Value, DbError> {
    serde_json::to_value(value).map_err(|e| DbError::Corrupt(e.to_string()))
}

impl Db {
    /// Records a whole order: [`Db::record_orders`] of one.
    pub async fn record_order(
        &self,
        raw: &RawRecord<'_>,
        order: &NewOrder,
        flags: &[Flag],
    ) -> Result<Recorded, DbError> {
        let request = OrderRequest { raw, order, flags };
        self.record_orders(&[request])
            .await?
            .pop()
            .unwrap_or_else(|| Err(DbError::Corrupt("no answer for the order".into())))
    }

    /// Records platform requests carrying orders, in one transaction: each request's inbox
    /// row, and each order not stored yet with its first events and the outbox row for
    /// the router. A replay of a request already recorded records nothing; a request for
    /// an order already stored (or one an earlier request of the batch carries) only its
    /// inbox row, linked to it. An order the platform cancelled before the hub saw it is
    /// stored cancelled and not routed. One answer per request, in their order: a
    /// request the database refuses gets the refusal (a batch it refuses is recorded
    /// again one request at a time, so that one request cannot fail the others). Only
    /// while PostgreSQL is out of reach is the error the batch's.
    pub async fn record_orders(
        &self,
        requests: &[OrderRequest<'_>],
    ) -> Result<Vec<Result<Recorded, DbError>>, DbError> {
        let error = match self.record_together(requests).await {
            Err(error) if !error.is_unreachable() => error,
            answers => return answers.map(|answers| answers.into_iter().map(Ok).collect()),
        };
        if requests.len() == 1 {
            return Ok(vec![Err(error)]);
        }
        tracing::warn!(requests = requests.len(), %error, "A batch of orders was refused; recording its requests one at a time.");
        let mut answers = Vec::with_capacity(requests.len());
        for request in requests {
            let answer = self
                .record_together(std::slice::from_ref(request))
                .await
                .and_then(|mut one| {
                    one.pop()
                        .ok_or_else(|| DbError::Corrupt("no answer for the order".into()))
                });
            answers.push(answer);
        }
        Ok(answers)
    }

    /// [`Db::record_orders`]' one transaction: two round trips, the locks and
    /// [`RECORD_ORDERS`], then the new orders' events and outbox rows with the commit.
    async fn record_together(
        &self,
        requests: &[OrderRequest<'_>],
    ) -> Result<Vec<Recorded>, DbError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        // One new id per platform order of the batch (`OrderId::default` draws one).
        let mut ids: HashMap<(&str, &str), OrderId> = HashMap::new();
        let order_ids: Vec<OrderId> = requests
            .iter()
            .map(|r| {
                *ids.entry((r.order.channel.as_str(), r.order.external_order_id.as_str()))
                    .or_default()
            })
            .collect();
        let column = |field: fn(&OrderRequest<'_>) -> String| -> Vec<String> {
            requests.iter().map(field).collect()
        };
        let channels = column(|r| r.order.channel.as_str().to_owned());
        let externals = column(|r| r.order.external_order_id.clone());
        let mut docs = Vec::with_capacity(requests.len());
        let mut flags = Vec::with_capacity(requests.len());
        for request in requests {
            docs.push(to_json(request.order)?);
            flags.push(to_json(&request.flags)?);
        }
        let record_params = params![
            column(|r| r.raw.channel.to_owned()),
            column(|r| r.raw.dedupe_key.to_owned()),
            requests
                .iter()
                .map(|r| r.raw.received_at)
                .collect::<Vec<_>>(),
            requests
                .iter()
                .map(|r| r.raw.headers.clone())
                .collect::<Vec<_>>(),
            requests
                .iter()
                .map(|r| r.raw.body.to_vec())
                .collect::<Vec<_>>(),
            order_ids.iter().map(|id| id.as_uuid()).collect::<Vec<_>>(),
            channels.clone(),
            externals.clone(),
            docs,
            flags,
            requests
                .iter()
                .map(|r| r.order.fulfillment.accept_by)
                .collect::<Vec<_>>(),
        ];
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client)?;
        // Prepared first, then sent together: the record runs once the locks are held.
        let lock = tx.prepare_cached(LOCK_EXTERNALS).await?;
        let record = tx.prepare_cached(RECORD_ORDERS).await?;
        let locked = tx.send_query(&lock, params![EXTERNAL_ORDER_LOCK, channels, externals]);
        let (_, rows) = locked.and(tx.send_query(&record, record_params)).await?;
        // Each fresh request's order; the orders inserted, and their tombstones.
        let mut fresh: HashMap<(String, String), OrderId> = HashMap::new();
        let mut inserted: HashSet<OrderId> = HashSet::new();
        let mut tombstones: HashMap<OrderId, Option<String>> = HashMap::new();
        for row in rows {
            let order_id = OrderId::from_uuid(row.get(2));
            fresh.insert((row.get(0), row.get(1)), order_id);
            if row.get(3) {
                inserted.insert(order_id);
            }
            if row.get(4) {
                tombstones.insert(order_id, row.get(5));
            }
        }
        // Each request's answer, as if recorded one after another in the batch's order:
        // the first request of a new order stores it; a later one with the same key is a
        // replay of it, one with another key a request for an order already stored.
        let mut answers: Vec<Option<Recorded>> = Vec::with_capacity(requests.len());
        let mut new = Vec::new();
        let mut replayed = Vec::new();
        for (place, request) in requests.iter().enumerate() {
            let key = (
                request.raw.channel.to_owned(),
                request.raw.dedupe_key.to_owned(),
            );
            let Some(&order_id) = fresh.get(&key) else {
                replayed.push(place);
                answers.push(None);
                continue;
            };
            if !inserted.remove(&order_id) {
                answers.push(Some(Recorded::Duplicate {
                    order_id: Some(order_id),
                }));
                continue;
            }
            new.push(NewlyStored {
                id: order_id,
                order: request.order,
                flags: request.flags,
                received_at: request.raw.received_at,
                tombstone: tombstones.remove(&order_id),
            });
            answers.push(Some(Recorded::New {
                order_id: Some(order_id),
            }));
        }
        let mut sent = self.send_new_orders(&tx, &new).await?;
        if !replayed.is_empty() {
            let inbox_orders = tx.prepare_cached(INBOX_ORDERS).await?;
            let keys = |field: fn(&RawRecord<'_>) -> String| -> Vec<String> {
                replayed
                    .iter()
                    .map(|&place| field(requests[place].raw))
                    .collect()
            };
            let linked = tx
                .send_query(
                    &inbox_orders,
                    params![
                        keys(|raw| raw.channel.to_owned()),
                        keys(|raw| raw.dedupe_key.to_owned())
                    ],
                )
                .map(|rows| {
                    rows.iter()
                        .map(|row| {
                            let order_id: Option<uuid::Uuid> = row.get(2);
                            (
                                (row.get::<_, String>(0), row.get::<_, String>(1)),
                                order_id.map(OrderId::from_uuid),
                            )
                        })
                        .collect::<HashMap<_, _>>()
                });
            let (_, linked) = sent.and(linked).await?;
            for place in replayed {
                let raw = requests[place].raw;
                let order_id = linked
                    .get(&(raw.channel.to_owned(), raw.dedupe_key.to_owned()))
                    .copied()
                    .flatten();
                answers[place] = Some(Recorded::Duplicate { order_id });
            }
            sent = Sent::uncounted(std::future::ready(Ok(())));
        }
        self.commit_new(tx, sent, &new).await?;
        answers
            .into_iter()
            .map(|answer| {
                answer.ok_or_else(|| DbError::Corrupt("a request went unanswered".into()))
            })
            .collect()
    }

    /// Sends the first events of orders just inserted (`received`, then their flags), and
    /// the router's message of each one not cancelled already.
    async fn send_new_orders<'a>(
        &self,
        tx: &Tx<'a>,
        new: &[NewlyStored<'_>],
    ) -> Result<Sent<'a, ()>, DbError> {
        if new.is_empty() {
            return Ok(Sent::uncounted(std::future::ready(Ok(()))));
        }
        let reasons: Vec<String> = new
            .iter()
            .map(|n| format!("from {}", n.order.channel))
            .collect();
        let mut flag_data = Vec::new();
        for n in new {
            for flag in n.flags {
                flag_data.push(to_json(flag)?);
            }
        }
        let mut events = Vec::with_capacity(new.len() + flag_data.len());
        let mut data = flag_data.iter();
        for (n, reason) in new.iter().zip(&reasons) {
            // The order's history reads "received" before its flags.
            events.push(NewEvent {
                order_id: n.id,
                at: n.received_at,
                source: EventSource::Channel,
                kind: EventKind::Received,
                status: Some(Status::Received),
                reason: Some(reason),
                data: None,
            });
            for (flag, data) in n.flags.iter().zip(data.by_ref()) {
                events.push(NewEvent {
                    order_id: n.id,
                    at: n.received_at,
                    source: EventSource::Hub,
                    kind: EventKind::Flagged,
                    status: None,
                    reason: Some(flag.code()),
                    data: Some(data),
                });
            }
        }
        let insert_events = prepare_events(tx).await?;
        let insert_outbox = outbox::prepare_inserts(tx).await?;
        let messages: Vec<_> = new
            .iter()
            .filter(|n| n.tombstone.is_none())
            .map(|n| self.routes().order_received(n.id))
            .collect();
        let mut sent = send_events(tx, &insert_events, &events);
        if !messages.is_empty() {
            sent = sent.also(outbox::send_inserts(tx, &insert_outbox, messages));
        }
        Ok(sent)
    }

    /// Commits behind `sent` (statements sent ahead, their answers unread); the orders
    /// just inserted that the platform had cancelled before they arrived are cancelled
    /// first, through the state machine.
    async fn commit_new<'a>(
        &self,
        tx: Tx<'a>,
        sent: Sent<'a, ()>,
        new: &[NewlyStored<'_>],
    ) -> Result<(), DbError> {
        let tombstoned: Vec<(OrderId, Option<String>)> = new
            .iter()
            .filter_map(|n| n.tombstone.clone().map(|reason| (n.id, reason)))
            .collect();
        if tombstoned.is_empty() {
            return tx.commit_with(sent).await;
        }
        sent.await?;
        for (id, reason) in tombstoned {
            let locked = lock_order(&tx, id)
                .await?
                .ok_or_else(|| DbError::Corrupt("order vanished".into()))?;
            let action = StatusAction::Cancel {
                reason: reason
                    .unwrap_or_else(|| "cancelled by the platform before the order arrived".into()),
            };
            apply_action(self, &tx, locked, &action, &Actor::Channel)
                .await
                .map_err(into_db_error)?;
        }
        tx.commit().await
    }

    /// Records a fetched order (notify-then-fetch): the notification is already in the
    /// inbox under `dedupe_key`, and is linked to the order (nothing else is recorded if
    /// the order is known already).
    pub async fn record_fetched_order(
        &self,
        dedupe_key: &str,
        order: &NewOrder,
        flags: &[Flag],
        received_at: DateTime<Utc>,
    ) -> Result<Recorded, DbError> {
        let id = OrderId::new();
        let doc = to_json(order)?;
        let flags_json = to_json(&flags)?;
        let channel = order.channel.as_str();
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client)?;
        // Sent together (pipelined), all prepared first: the insert and the tombstone's
        // removal run once the lock is held.
        let lock = tx.prepare_cached(LOCK_EXTERNAL).await?;
        let insert = tx.prepare_cached("INSERT INTO orders (id, channel, external_order_id, status, doc, flags, received_at, updated_at, accept_by)
                 VALUES ($1, $2, $3, 'received', $4, $5, $6, $6, $7)
                 ON CONFLICT (channel, external_order_id) DO NOTHING").await?;
        let tombstone = tx.prepare_cached("DELETE FROM cancellations WHERE channel = $1 AND external_order_id = $2 RETURNING reason").await?;
        let external = order.external_order_id.clone();
        let ((_, inserted), tombstone) = tx
            .send_execute(
                &lock,
                params![EXTERNAL_ORDER_LOCK, channel.to_owned(), external.clone()],
            )
            .and(tx.send_execute(
                &insert,
                params![
                    id.as_uuid(),
                    channel.to_owned(),
                    external.clone(),
                    doc,
                    flags_json,
                    received_at,
                    order.fulfillment.accept_by,
                ],
            ))
            .and(tx.send_query(&tombstone, params![channel.to_owned(), external]))
            .await?;
        if inserted == 0 {
            let row = tx
                .query_one(
                    &tx.prepare_cached(
                        "SELECT id FROM orders WHERE channel = $1 AND external_order_id = $2",
                    )
                    .await?,
                    &[&channel, &order.external_order_id],
                )
                .await?;
            let known = OrderId::from_uuid(row.get(0));
            link_inbox(&tx, channel, dedupe_key, known).await?;
            tx.commit().await?;
            return Ok(Recorded::Duplicate {
                order_id: Some(known),
            });
        }
        let new = [NewlyStored {
            id,
            order,
            flags,
            received_at,
            tombstone: tombstone.first().map(|row| row.get(0)),
        }];
        let link = tx.prepare_cached(LINK_INBOX).await?;
        let sent = tx
            .send_execute(
                &link,
                params![channel.to_owned(), dedupe_key.to_owned(), id.as_uuid()],
            )
            .map(drop)
            .also(self.send_new_orders(&tx, &new).await?);
        self.commit_new(tx, sent, &new).await?;
        Ok(Recorded::New { order_id: Some(id) })
    }
    /// Records a notify-then-fetch notification and queues the fetch.
    pub async fn record_fetch(
        &self,
        raw: &RawRecord<'_>,
        fetch: serde_json::Value,
    ) -> Result<Recorded, DbError> {
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client)?;
        if let Some(previous) = insert_inbox(&tx, raw, "fetch").await? {
            return Ok(Recorded::Duplicate { order_id: previous });
        }
        outbox::insert(&tx, self.routes().fetch(raw.channel, raw.dedupe_key, fetch)).await?;
        tx.commit().await?;
        Ok(Recorded::New { order_id: None })
    }

    /// Records a platform's cancellation: the order is cancelled and its store told at
    /// once; an order the hub has not seen gets a tombstone, which the order reads when it
    /// arrives (even when both are recorded at the same moment). An order already finished
    /// stays as it is, but its statuses not yet pushed are skipped: the platform has it
    /// cancelled and would refuse them.
    pub async fn record_cancellation(
        &self,
        raw: &RawRecord<'_>,
        external_order_id: &str,
        reason: Option<&str>,
    ) -> Result<Recorded, DbError> {
        let reason = reason.unwrap_or("cancelled by the platform").to_owned();
        self.record_channel_action(
            raw,
            external_order_id,
            "cancellation",
            StatusAction::Cancel {
                reason: reason.clone(),
            },
            Some(reason),
        )
        .await
    }

    /// Records progress the platform owns (courier picked up, delivered). A report that
    /// would move the order backwards is kept in the inbox and otherwise ignored.
    pub async fn record_progress(
        &self,
        raw: &RawRecord<'_>,
        external_order_id: &str,
        action: StatusAction,
    ) -> Result<Recorded, DbError> {
        self.record_channel_action(raw, external_order_id, "progress", action, None)
            .await
    }

    async fn record_channel_action(
        &self,
        raw: &RawRecord<'_>,
        external_order_id: &str,
        kind: &str,
        action: StatusAction,
        tombstone_reason: Option<String>,
    ) -> Result<Recorded, DbError> {
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client)?;
        if let Some(previous) = insert_inbox(&tx, raw, kind).await? {
            return Ok(Recorded::Duplicate { order_id: previous });
        }
        lock_external(&tx, raw.channel, external_order_id).await?;
        let row = tx
            .query_opt(
                &tx.prepare_cached(
                    "SELECT id FROM orders WHERE channel = $1 AND external_order_id = $2",
                )
                .await?,
                &[&raw.channel, &external_order_id],
            )
            .await?;
        let Some(row) = row else {
            if let Some(reason) = tombstone_reason {
                tx.execute(
                    &tx.prepare_cached("INSERT INTO cancellations (channel, external_order_id, at, reason) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING").await?,
                    &[&raw.channel, &external_order_id, &raw.received_at, &reason],
                )
                .await?;
            }
            tx.commit().await?;
            return Ok(Recorded::New { order_id: None });
        };
        let order_id = OrderId::from_uuid(row.get(0));
        link_inbox(&tx, raw.channel, raw.dedupe_key, order_id).await?;
        let order = lock_order(&tx, order_id)
            .await?
            .ok_or_else(|| DbError::Corrupt("order vanished".into()))?;
        match apply_action(self, &tx, order, &action, &Actor::Channel).await {
            Ok(_) => {}
            Err(ChangeError::Transition(refused)) => {
                tracing::info!(channel = raw.channel, order_id = %order_id, error = %refused, "Platform status report ignored.");
                if matches!(action, StatusAction::Cancel { .. }) {
                    // Finished before the platform cancelled it: the order stays as it
                    // is, but the platform, which has it cancelled, would refuse what it
                    // has not heard yet.
                    let why = format!(
                        "order cancelled by the platform after it was {}",
                        refused.from
                    );
                    skip_unpushed(&tx, order_id, &why).await?;
                }
            }
            Err(other) => return Err(into_db_error(other)),
        }
        tx.commit().await?;
        Ok(Recorded::New {
            order_id: Some(order_id),
        })
    }

    /// Records a request the hub takes note of but does not act on.
    pub async fn record_ignored(
        &self,
        raw: &RawRecord<'_>,
        kind: &str,
    ) -> Result<Recorded, DbError> {
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client)?;
        if let Some(previous) = insert_inbox(&tx, raw, kind).await? {
            return Ok(Recorded::Duplicate { order_id: previous });
        }
        tx.commit().await?;
        Ok(Recorded::New { order_id: None })
    }

    /// Keeps a refused request with the reason, for HQ and for forensics.
    pub async fn quarantine(
        &self,
        channel: &str,
        received_at: DateTime<Utc>,
        error_kind: &str,
        reason: &str,
        headers: &serde_json::Value,
        body: &[u8],
    ) -> Result<i64, DbError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                &client.prepare_cached("INSERT INTO quarantine (channel, received_at, error_kind, reason, headers, body)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id").await?,
                &[&channel, &received_at, &error_kind, &reason, headers, &body],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Quarantined requests of a channel, newest first: (id, error kind, reason).
    pub async fn quarantined(
        &self,
        channel: &str,
        limit: i64,
    ) -> Result<Vec<(i64, String, String)>, DbError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &client.prepare_cached("SELECT id, error_kind, reason FROM quarantine WHERE channel = $1 ORDER BY id DESC LIMIT $2").await?,
                &[&channel, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }
}

fn into_db_error(error: ChangeError) -> DbError {
    match error {
        ChangeError::Db(db) => db,
        other => DbError::Corrupt(other.to_string()),
    }
}
