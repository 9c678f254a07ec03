//! Recording what a platform sent: inbox row (raw bytes, dedupe key) plus its effect, in
//! one transaction, before the hub answers the platform.

use chrono::{DateTime, Utc};
use crossdock_model::{EventKind, EventSource, Flag, NewOrder, OrderId, Status, StatusAction};

use crate::orders::{
    Actor, ChangeError, NewEvent, apply_action, lock_order, prepare_event, send_event,
    skip_unpushed,
};
use crate::outbox::Tx;
use crate::pipeline::params;
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

/// The inbox row of an order's request.
#[derive(Clone, Copy)]
enum Inbox<'a> {
    /// To insert, with the order: a replay of a request already recorded records nothing.
    Insert(&'a RawRecord<'a>),
    /// Recorded already (a notification whose order was fetched), under this key.
    Recorded(&'a str),
}

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

impl Db {
    /// Records a whole order: inbox, order, its first events and the outbox row for the
    /// router — or nothing new if the request or the order is already known. An order the
    /// platform cancelled before the hub saw it is stored cancelled and not routed.
    pub async fn record_order(
        &self,
        raw: &RawRecord<'_>,
        order: &NewOrder,
        flags: &[Flag],
    ) -> Result<Recorded, DbError> {
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client)?;
        self.insert_order(tx, Inbox::Insert(raw), order, flags, raw.received_at)
            .await
    }

    /// Records a fetched order (notify-then-fetch): the notification is already in the
    /// inbox under `dedupe_key`.
    pub async fn record_fetched_order(
        &self,
        dedupe_key: &str,
        order: &NewOrder,
        flags: &[Flag],
        received_at: DateTime<Utc>,
    ) -> Result<Recorded, DbError> {
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client)?;
        self.insert_order(tx, Inbox::Recorded(dedupe_key), order, flags, received_at)
            .await
    }

    /// Inserts the order (nothing if it is known: its id), its first events, and links the
    /// inbox row to it (inserted first: nothing, if the request is a replay); then commits.
    async fn insert_order(
        &self,
        tx: Tx<'_>,
        inbox: Inbox<'_>,
        order: &NewOrder,
        flags: &[Flag],
        received_at: DateTime<Utc>,
    ) -> Result<Recorded, DbError> {
        let id = OrderId::new();
        let doc = serde_json::to_value(order).map_err(|e| DbError::Corrupt(e.to_string()))?;
        let flags_json =
            serde_json::to_value(flags).map_err(|e| DbError::Corrupt(e.to_string()))?;
        let channel = order.channel.as_str();
        let dedupe_key = match inbox {
            Inbox::Insert(raw) => raw.dedupe_key,
            Inbox::Recorded(key) => key,
        };
        // The inbox row, the lock, the insert and the tombstone's removal are sent
        // together (pipelined), all prepared first so that each is sent as it is first
        // polled: in this order, and the rest runs once the lock is held. A replay (the
        // inbox row was there) rolls all of it back. A tombstone is only ever left for an
        // order not stored yet, so an order already known finds none.
        let insert_inbox = tx.prepare_cached(INSERT_INBOX).await?;
        let lock = tx.prepare_cached(LOCK_EXTERNAL).await?;
        let insert = tx.prepare_cached("INSERT INTO orders (id, channel, external_order_id, status, doc, flags, received_at, updated_at, accept_by)
                 VALUES ($1, $2, $3, 'received', $4, $5, $6, $6, $7)
                 ON CONFLICT (channel, external_order_id) DO NOTHING").await?;
        let tombstone = tx.prepare_cached("DELETE FROM cancellations WHERE channel = $1 AND external_order_id = $2 RETURNING reason").await?;
        let uuid = id.as_uuid();
        let lock_params: [&(dyn ToSql + Sync); 3] =
            [&EXTERNAL_ORDER_LOCK, &channel, &order.external_order_id];
        let insert_params: [&(dyn ToSql + Sync); 7] = [
            &uuid,
            &channel,
            &order.external_order_id,
            &doc,
            &flags_json,
            &received_at,
            &order.fulfillment.accept_by,
        ];
        let tombstone_params: [&(dyn ToSql + Sync); 2] = [&channel, &order.external_order_id];
        let (replay, _, inserted, tombstone) = tokio::try_join!(
            async {
                let Inbox::Insert(raw) = inbox else {
                    return Ok(None);
                };
                let inserted = tx
                    .execute(&insert_inbox, &inbox_params(raw, &"order"))
                    .await?;
                Ok((inserted == 0).then_some(raw))
            },
            tx.execute(&lock, &lock_params),
            tx.execute(&insert, &insert_params),
            tx.query_opt(&tombstone, &tombstone_params),
        )?;
        if let Some(raw) = replay {
            return Ok(Recorded::Duplicate {
                order_id: inbox_order(&tx, raw).await?,
            });
        }
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
        let reason = format!("from {channel}");
        // The order's history reads "received" before its flags.
        let mut events = vec![NewEvent {
            order_id: id,
            at: received_at,
            source: EventSource::Channel,
            kind: EventKind::Received,
            status: Some(Status::Received),
            reason: Some(&reason),
            data: None,
        }];
        let flag_data = flags
            .iter()
            .map(|flag| serde_json::to_value(flag).map_err(|e| DbError::Corrupt(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        events.extend(flags.iter().zip(&flag_data).map(|(flag, data)| NewEvent {
            order_id: id,
            at: received_at,
            source: EventSource::Hub,
            kind: EventKind::Flagged,
            status: None,
            reason: Some(flag.code()),
            data: Some(data),
        }));
        // Prepared first, then sent together with the commit behind them (pipelined): the
        // order's events, the inbox row's link and the router's message in one round trip.
        let insert_event = prepare_event(&tx).await?;
        let link = tx.prepare_cached(LINK_INBOX).await?;
        let insert_outbox = outbox::prepare_insert(&tx).await?;
        let mut sent = tx
            .send_execute(
                &link,
                params![channel.to_owned(), dedupe_key.to_owned(), id.as_uuid()],
            )
            .map(drop);
        for event in events {
            sent = sent.also(send_event(&tx, &insert_event, event));
        }
        let Some(row) = tombstone else {
            let sent = sent.and(outbox::send_insert(
                &tx,
                &insert_outbox,
                self.routes().order_received(id),
            ));
            tx.commit_with(sent).await?;
            return Ok(Recorded::New { order_id: Some(id) });
        };
        sent.await?;
        let reason: Option<String> = row.get(0);
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
        tx.commit().await?;
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
