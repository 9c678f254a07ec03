//! Routing as the database records it: assigning an order to a store (the store's load
//! checked under its row lock, so two routers cannot both fill its last place), a store
//! declining an order or letting its time to accept run out (back to the router, or to
//! HQ's attention), HQ re-assigning by hand, the guard that rejects an order back to its
//! platform before the platform's acceptance deadline, and the attention list.
//!
//! Lock order, everywhere: orders' rows (several only in routing, in id order), then
//! `store_live` rows. A transaction that holds several stores' rows (HQ moving an order
//! from one store to another, a routing batch) takes them together in store-id order,
//! and routing lets all of them go (rolling back to a savepoint) before it takes others
//! when one was full, so no two transactions wait on each other.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use crossdock_model::{EventKind, EventSource, Order, OrderId, Status, StatusAction, StoreId};
use serde_json::json;

use crate::orders::{
    Actor, ChangeError, NewEvent, ORDER_COLUMNS, apply_action, insert_event, order_from_row,
};
use crate::outbox::Tx;
use crate::pipeline::{Sent, params};
use crate::{Db, DbError, outbox};

/// How long a store has to accept an order, and how much time before the platform's
/// acceptance deadline the hub keeps for telling the platform no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptTiming {
    pub store_window: Duration,
    pub margin: Duration,
}

impl AcceptTiming {
    /// When the store assigned at `now` must have accepted: its own window, cut short so
    /// that a refusal still reaches the platform before `platform_deadline`. `None` when
    /// that deadline is too near to ask any store.
    pub fn store_accept_by(
        &self,
        now: DateTime<Utc>,
        platform_deadline: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        let own = now + self.store_window;
        match platform_deadline {
            None => Some(own),
            Some(deadline) => {
                let last = deadline - self.margin;
                (last > now).then(|| own.min(last))
            }
        }
    }
}

/// What the router sees of an order it routes.
pub struct RouteInput<'a> {
    pub order: &'a Order,
    /// Stores that declined the order (rejected it or let their time run out), oldest first.
    pub declined: &'a [StoreId],
    /// Stores found full under their row lock during this routing: the router's memory
    /// was behind; it must not choose them again.
    pub full: &'a [FullStore],
}

/// A store found full under its row lock: its load and the version of its live row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullStore {
    pub store: StoreId,
    pub active: u32,
    pub version: i64,
}

/// Where the router sends an order.
#[derive(Debug, Clone, PartialEq)]
pub enum Routing {
    /// To this store, which must have fewer than `capacity` active orders (`None`: a sale
    /// the store already made, whatever its load).
    To {
        store: StoreId,
        capacity: Option<u32>,
    },
    /// No store can take it; `reason` goes back to the channel.
    Nowhere { reason: String },
}

/// What routing came to for an order.
#[derive(Debug, Clone, PartialEq)]
pub enum Assignment {
    /// The order now belongs to this store and went onto its queue; `active` is the
    /// store's load with it.
    Assigned { store: StoreId, active: u32 },
    /// The order already had a store (a redelivery): nothing changed.
    AlreadyAssigned(StoreId),
    /// The order was finished before routing (e.g. cancelled), or is now (rejected back
    /// to its channel).
    Finished(Status),
    /// The order waits for HQ: nothing for the router to do.
    NeedsAttention,
}

/// Who takes an order back from its store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decline {
    /// The store rejected it.
    Rejected(StoreId),
    /// The store did not accept it in time.
    TimedOut(StoreId),
}

impl Decline {
    fn store(&self) -> &StoreId {
        match self {
            Decline::Rejected(store) | Decline::TimedOut(store) => store,
        }
    }
}

/// Where a declined order went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declined {
    /// Back to the router, for the next candidate.
    Rerouted,
    /// To HQ's attention list (the channel named the store).
    NeedsAttention,
    /// Nothing done: the order had moved on (accepted, re-assigned, its time extended).
    Unchanged,
}

/// Why HQ's re-assignment was refused.
#[derive(Debug, thiserror::Error)]
pub enum AssignError {
    #[error("order {0} not found")]
    NotFound(OrderId),
    #[error("the order is {0}; only an order no store has accepted yet can be re-assigned")]
    NotAwaiting(Status),
    #[error("the order is already at store {0}")]
    SameStore(StoreId),
    #[error("store {store} is too busy: {active} active orders, its capacity is {capacity}")]
    Full {
        store: StoreId,
        active: u32,
        capacity: u32,
    },
    #[error(
        "too close to the platform's acceptance deadline ({0}) for a store to accept; reject the order instead"
    )]
    TooLate(DateTime<Utc>),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<tokio_postgres::Error> for AssignError {
    fn from(e: tokio_postgres::Error) -> Self {
        AssignError::Db(DbError::Query(e))
    }
}

impl From<deadpool_postgres::PoolError> for AssignError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        AssignError::Db(DbError::Pool(e))
    }
}

/// An order locked for routing, with what routing needs beyond the order.
struct Locked {
    order: Order,
    declined: Vec<StoreId>,
    attention: Option<String>,
    store_accept_by: Option<DateTime<Utc>>,
}

fn store_ids(ids: Vec<String>) -> Result<Vec<StoreId>, DbError> {
    ids.into_iter()
        .map(|id| StoreId::parse(id).map_err(|e| DbError::Corrupt(e.to_string())))
        .collect()
}

async fn lock(tx: &Tx<'_>, id: OrderId) -> Result<Option<Locked>, DbError> {
    Ok(lock_many(tx, &[id]).await?.pop())
}

/// Locks and reads the orders of `ids` that exist, in id order (so transactions that
/// lock several orders never wait on each other in a circle).
async fn lock_many(tx: &Tx<'_>, ids: &[OrderId]) -> Result<Vec<Locked>, DbError> {
    // Each order looked up by its id (`OFFSET 0` keeps the subquery a lookup the plan
    // cannot turn into a scan: tests/plans.rs) and locked as it is found, in the order
    // of the ids given.
    let sql = format!(
        "SELECT o.* FROM unnest($1::uuid[]) AS wanted (id) CROSS JOIN LATERAL (
             SELECT {ORDER_COLUMNS}, declined_by, attention, attention_since, store_accept_by
               FROM orders WHERE orders.id = wanted.id OFFSET 0 FOR NO KEY UPDATE) AS o"
    );
    let mut ids: Vec<uuid::Uuid> = ids.iter().map(OrderId::as_uuid).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows = tx.query(&tx.prepare_cached(&sql).await?, &[&ids]).await?;
    rows.iter()
        .map(|row| {
            Ok(Locked {
                order: order_from_row(row)?,
                declined: store_ids(row.get(7))?,
                attention: row.get(8),
                store_accept_by: row.get(10),
            })
        })
        .collect()
}

/// The stores' loads and live row versions, their `store_live` rows locked in store-id
/// order until the transaction ends.
async fn lock_loads(tx: &Tx<'_>, stores: &[StoreId]) -> Result<Vec<(StoreId, u32, i64)>, DbError> {
    let ids: Vec<&str> = stores.iter().map(StoreId::as_str).collect();
    let rows = tx
        .query(
            &tx.prepare_cached(
                "SELECT store_id, active, version FROM store_live WHERE store_id = ANY($1)
             ORDER BY store_id FOR UPDATE",
            )
            .await?,
            &[&ids],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let store: String = row.get(0);
            let active: i32 = row.get(1);
            Ok((
                StoreId::parse(store).map_err(|e| DbError::Corrupt(e.to_string()))?,
                u32::try_from(active).unwrap_or(0),
                row.get(2),
            ))
        })
        .collect()
}

/// Takes the order from the store it was at: the store's queue hears it at once.
async fn withdraw(db: &Db, tx: &Tx<'_>, id: OrderId, store: &StoreId) -> Result<(), DbError> {
    outbox::insert(tx, db.routes().to_store(store, id, "order.withdrawn")).await?;
    Ok(())
}

/// Orders given to stores in one transaction (a routing batch, or HQ's one), column by
/// column, recorded together: each order's store and time to accept, its `routed` event
/// (from `source`, with why) and its store's message.
struct Assigned {
    source: EventSource,
    ids: Vec<uuid::Uuid>,
    stores: Vec<String>,
    accept_by: Vec<DateTime<Utc>>,
    reasons: Vec<String>,
    decisions: Vec<serde_json::Value>,
    messages: Vec<outbox::OutboxMessage>,
}

impl Assigned {
    fn new(source: EventSource) -> Self {
        Self {
            source,
            ids: Vec::new(),
            stores: Vec::new(),
            accept_by: Vec::new(),
            reasons: Vec::new(),
            decisions: Vec::new(),
            messages: Vec::new(),
        }
    }

    /// Gives the order to `store` until `accept_by`; `reason` and `decision` say why.
    fn push(
        &mut self,
        db: &Db,
        id: OrderId,
        store: &StoreId,
        accept_by: DateTime<Utc>,
        reason: String,
        decision: serde_json::Value,
    ) {
        self.ids.push(id.as_uuid());
        self.stores.push(store.as_str().to_owned());
        self.accept_by.push(accept_by);
        self.reasons.push(reason);
        self.decisions.push(decision);
        self.messages
            .push(db.routes().to_store(store, id, "order.routed"));
    }

    /// Sends the batch's three statements (its orders' stores, their `routed` events,
    /// their store messages), their answers left to read; nothing for an empty batch.
    async fn send<'a>(self, tx: &Tx<'a>, at: DateTime<Utc>) -> Result<Sent<'a, ()>, DbError> {
        if self.ids.is_empty() {
            return Ok(Sent::uncounted(std::future::ready(Ok(()))));
        }
        // Each order found by its id, then its row by its address: no plan can turn
        // either into a scan (tests/plans.rs).
        let update = tx
            .prepare_cached(
                "UPDATE orders SET store_id = a.store_id, store_accept_by = a.accept_by,
                     updated_at = $4, attention = NULL, attention_since = NULL
                 FROM (SELECT b.store_id, b.accept_by, found.ctid AS row
                         FROM unnest($1::uuid[], $2::text[], $3::timestamptz[])
                              AS b (id, store_id, accept_by)
                        CROSS JOIN LATERAL (
                            SELECT ctid FROM orders WHERE orders.id = b.id OFFSET 0) AS found
                      ) AS a
                 WHERE orders.ctid = a.row",
            )
            .await?;
        let events = tx
            .prepare_cached(
                "INSERT INTO order_events (order_id, at, source, kind, reason, data)
                 SELECT e.order_id, $4, $5, $6, e.reason, e.data
                   FROM unnest($1::uuid[], $2::text[], $3::jsonb[]) AS e (order_id, reason, data)",
            )
            .await?;
        let messages = outbox::prepare_inserts(tx).await?;
        let Assigned {
            source,
            ids,
            stores,
            accept_by,
            reasons,
            decisions,
            messages: outgoing,
        } = self;
        Ok(tx
            .send_execute(&update, params![ids.clone(), stores, accept_by, at])
            .also(tx.send_execute(
                &events,
                params![
                    ids,
                    reasons,
                    decisions,
                    at,
                    source.as_str(),
                    EventKind::Routed.as_str(),
                ],
            ))
            .also(outbox::send_inserts(tx, &messages, outgoing)))
    }
}

/// The most stores one routing re-decides over when the router's memory of loads is
/// behind; after that the order is refused rather than chased around a full city.
const MAX_FULL_RETRIES: usize = 32;

/// An order of a routing batch: locked, what its routing found full, and its choice.
struct Routable {
    locked: Locked,
    full: Vec<FullStore>,
    choice: Option<(Routing, serde_json::Value)>,
    /// The chosen store's load with the order, once its place is taken.
    active: u32,
}

/// Asks `decide` for each order of `batch` and takes their places at the chosen stores,
/// under the stores' `store_live` row locks, taken together in store-id order. Places
/// go in batch order (the orders' id order: oldest first); an order that finds its store
/// full (its load counting the places of the orders before it) is decided again knowing
/// so, after every lock is let go (a savepoint rolled back, so no two transactions wait
/// on each other in a circle), and refused as too busy after [`MAX_FULL_RETRIES`] full
/// stores. Returns the savepoint's
/// release, sent, while the locks are held (nothing is sent when no store was chosen).
async fn take_places<'a, F>(
    tx: &Tx<'a>,
    batch: &mut [Routable],
    decide: &mut F,
) -> Result<Sent<'a, ()>, DbError>
where
    F: FnMut(&RouteInput<'_>) -> (Routing, serde_json::Value),
{
    let mut undecided: Vec<usize> = (0..batch.len()).collect();
    loop {
        for &at in &undecided {
            let routable = &mut batch[at];
            routable.choice = Some(decide(&RouteInput {
                order: &routable.locked.order,
                declined: &routable.locked.declined,
                full: &routable.full,
            }));
        }
        undecided.clear();
        let chosen = |routable: &Routable| match &routable.choice {
            Some((Routing::To { store, capacity }, _)) => Some((store.clone(), *capacity)),
            _ => None,
        };
        let mut stores: Vec<StoreId> = batch.iter().filter_map(&chosen).map(|c| c.0).collect();
        stores.sort();
        stores.dedup();
        if stores.is_empty() {
            return Ok(Sent::uncounted(std::future::ready(Ok(()))));
        }
        let (_, loads) = tokio::try_join!(
            async { Ok(tx.batch_execute("SAVEPOINT take_places").await?) },
            lock_loads(tx, &stores),
        )?;
        // Each store's load as locked, and the places this batch took there since.
        let mut loads: HashMap<StoreId, (u32, i64, u32)> = loads
            .into_iter()
            .map(|(store, active, version)| (store, (active, version, 0)))
            .collect();
        for (at, routable) in batch.iter_mut().enumerate() {
            let Some((store, capacity)) = chosen(routable) else {
                continue;
            };
            let (active, version, taken) = loads.entry(store.clone()).or_default();
            let load = *active + *taken;
            match capacity {
                Some(capacity) if load >= capacity => {
                    routable.full.push(FullStore {
                        store: store.clone(),
                        active: load,
                        version: *version,
                    });
                    if routable.full.len() <= MAX_FULL_RETRIES {
                        undecided.push(at);
                    } else if let Some((routing, _)) = &mut routable.choice {
                        *routing = Routing::Nowhere {
                            reason: format!(
                                "too busy: every store the router chose filled up before it could be assigned (last {store}, {load} of {capacity})"
                            ),
                        };
                    }
                }
                // A sale is not checked against the capacity, but counts in the load.
                _ => {
                    *taken += 1;
                    routable.active = load + 1;
                }
            }
        }
        if undecided.is_empty() {
            return Ok(tx.send_simple("RELEASE SAVEPOINT take_places"));
        }
        tx.batch_execute("ROLLBACK TO SAVEPOINT take_places; RELEASE SAVEPOINT take_places")
            .await?;
    }
}

/// Whether `error` came of PostgreSQL being out of reach, not of what was asked.
fn is_unreachable(error: &ChangeError) -> bool {
    matches!(error, ChangeError::Db(error) if error.is_unreachable())
}

impl Db {
    /// Routes an order once: [`Db::route_orders`] of one.
    pub async fn route_order<F>(
        &self,
        id: OrderId,
        timing: &AcceptTiming,
        decide: F,
    ) -> Result<Assignment, ChangeError>
    where
        F: FnMut(&RouteInput<'_>) -> (Routing, serde_json::Value),
    {
        self.route_orders(&[id], timing, decide)
            .await?
            .pop()
            .unwrap_or(Err(ChangeError::NotFound(id)))
    }

    /// Routes orders once, together, in one transaction: locks them and lets `decide`
    /// choose for each (under the locks, so two routers cannot both route one). A chosen
    /// store with a capacity is checked under its own row lock, counting the places the
    /// older orders of the batch took there; when it is full after all, `decide` is
    /// asked again for that order knowing so. Then each decision is recorded: the store,
    /// its time to accept and its queue message (the batch's in one statement each), or
    /// the rejection back to the channel. An order that has a store, is finished, or
    /// waits for HQ is left as it is. One answer per id, in the order given: an order
    /// named twice is routed once (the second answer is its store's, as for a
    /// redelivery); an unknown one is [`ChangeError::NotFound`]. A batch the database
    /// refuses is recorded not at all and routed again one order at a time, so that an
    /// order it refuses cannot hold up the others: that order's answer is the error. An
    /// error while PostgreSQL cannot be reached is the whole batch's.
    pub async fn route_orders<F>(
        &self,
        ids: &[OrderId],
        timing: &AcceptTiming,
        mut decide: F,
    ) -> Result<Vec<Result<Assignment, ChangeError>>, ChangeError>
    where
        F: FnMut(&RouteInput<'_>) -> (Routing, serde_json::Value),
    {
        let error = match self.route_together(ids, timing, &mut decide).await {
            Err(error) if ids.len() > 1 && !is_unreachable(&error) => error,
            answers => return answers,
        };
        tracing::warn!(orders = ids.len(), %error, "A routing batch was refused; routing its orders one at a time.");
        let mut answers = Vec::with_capacity(ids.len());
        for &id in ids {
            let answer = match self.route_together(&[id], timing, &mut decide).await {
                Ok(mut one) => one.pop().unwrap_or(Err(ChangeError::NotFound(id))),
                Err(error) => Err(error),
            };
            answers.push(answer);
        }
        Ok(answers)
    }

    /// [`Db::route_orders`]'s one transaction.
    async fn route_together<F>(
        &self,
        ids: &[OrderId],
        timing: &AcceptTiming,
        mut decide: F,
    ) -> Result<Vec<Result<Assignment, ChangeError>>, ChangeError>
    where
        F: FnMut(&RouteInput<'_>) -> (Routing, serde_json::Value),
    {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client)?;
        let mut outcomes: HashMap<OrderId, Assignment> = HashMap::new();
        let mut batch = Vec::new();
        for locked in lock_many(&tx, ids).await? {
            let order = &locked.order;
            let left = if let Some(store) = &order.store_id {
                Some(Assignment::AlreadyAssigned(store.clone()))
            } else if order.status.is_final() {
                Some(Assignment::Finished(order.status))
            } else if locked.attention.is_some() {
                Some(Assignment::NeedsAttention)
            } else {
                None
            };
            match left {
                Some(outcome) => {
                    outcomes.insert(order.id, outcome);
                }
                None => batch.push(Routable {
                    locked,
                    full: Vec::new(),
                    choice: None,
                    active: 0,
                }),
            }
        }
        let released = take_places(&tx, &mut batch, &mut decide).await?;
        let now = Utc::now();
        // The assigned orders' ids, stores, times to accept, reasons, decisions, messages.
        let mut assigned = Assigned::new(EventSource::Router);
        for Routable {
            locked,
            choice,
            active,
            ..
        } in batch
        {
            let Some((routing, decision)) = choice else {
                continue;
            };
            let id = locked.order.id;
            let platform_deadline = locked.order.order.fulfillment.accept_by;
            let routing = match routing {
                Routing::To { store, .. } => match timing.store_accept_by(now, platform_deadline) {
                    Some(accept_by) => Ok((store, accept_by)),
                    None => Err(format!(
                        "timed out: too close to the platform's acceptance deadline ({}) to ask store {store}",
                        platform_deadline
                            .map(|d| d.to_rfc3339())
                            .unwrap_or_default()
                    )),
                },
                Routing::Nowhere { reason } => Err(reason),
            };
            match routing {
                Ok((store, accept_by)) => {
                    let reason = format!("assigned to {store}");
                    assigned.push(self, id, &store, accept_by, reason, decision);
                    outcomes.insert(id, Assignment::Assigned { store, active });
                }
                Err(reason) => {
                    // Rare: each on its own, before the assignments are sent.
                    insert_event(
                        &tx,
                        NewEvent {
                            order_id: id,
                            at: now,
                            source: EventSource::Router,
                            kind: EventKind::Routed,
                            status: None,
                            reason: Some(&reason),
                            data: Some(&decision),
                        },
                    )
                    .await?;
                    let action = StatusAction::Reject { reason };
                    let order =
                        apply_action(self, &tx, locked.order, &action, &Actor::Router).await?;
                    outcomes.insert(id, Assignment::Finished(order.status));
                }
            }
        }
        // The assignments' statements and the commit in one round trip.
        let sent = assigned.send(&tx, now).await?;
        tx.commit_with(released.also(sent)).await?;
        let mut answered = HashSet::new();
        Ok(ids
            .iter()
            .map(|id| match outcomes.get(id) {
                None => Err(ChangeError::NotFound(*id)),
                Some(Assignment::Assigned { store, .. }) if !answered.insert(*id) => {
                    Ok(Assignment::AlreadyAssigned(store.clone()))
                }
                Some(outcome) => Ok(outcome.clone()),
            })
            .collect())
    }

    /// Takes an order back from the store that rejected it or did not accept it in time.
    /// Where the hub chose the store, the order goes back to the router for the next
    /// candidate; where the channel named it, to HQ's attention. A store may decline only
    /// its own order while it awaits acceptance ([`ChangeError::NotFound`] otherwise, or
    /// the state machine's refusal); a timeout that no longer holds changes nothing.
    pub async fn decline(
        &self,
        id: OrderId,
        decline: &Decline,
        reason: &str,
    ) -> Result<Declined, ChangeError> {
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client)?;
        let Some(locked) = lock(&tx, id).await? else {
            return Err(ChangeError::NotFound(id));
        };
        let store = decline.store();
        let now = Utc::now();
        let at_store = locked.order.store_id.as_ref() == Some(store);
        match decline {
            Decline::Rejected(_) => {
                if !at_store {
                    return Err(ChangeError::NotFound(id));
                }
                locked
                    .order
                    .status
                    .transition(Status::Rejected, locked.order.order.fulfillment.kind)?;
            }
            Decline::TimedOut(_) => {
                let due = locked.store_accept_by.is_some_and(|by| by <= now);
                if !at_store || locked.order.status != Status::Received || !due {
                    return Ok(Declined::Unchanged);
                }
            }
        }
        let (source, by, what) = match decline {
            Decline::Rejected(_) => (
                EventSource::Store,
                "store",
                format!("declined by {store}: {reason}"),
            ),
            Decline::TimedOut(_) => (
                EventSource::Hub,
                "timeout",
                format!("not accepted in time by {store}: {reason}"),
            ),
        };
        tx.execute(
            &tx.prepare_cached(
                "UPDATE orders SET store_id = NULL, store_accept_by = NULL, updated_at = $2,
                 declined_by = array_append(declined_by, $3)
             WHERE id = $1",
            )
            .await?,
            &[&id.as_uuid(), &now, &store.as_str()],
        )
        .await?;
        let data = json!({ "store": store, "by": by });
        insert_event(
            &tx,
            NewEvent {
                order_id: id,
                at: now,
                source,
                kind: EventKind::Declined,
                status: None,
                reason: Some(&what),
                data: Some(&data),
            },
        )
        .await?;
        withdraw(self, &tx, id, store).await?;
        let outcome = if locked.order.order.hub_chooses_store() {
            let attempt = locked.declined.len() + 1;
            outbox::insert(&tx, self.routes().reroute(id, attempt)).await?;
            Declined::Rerouted
        } else {
            tx.execute(
                &tx.prepare_cached(
                    "UPDATE orders SET attention = $2, attention_since = $3 WHERE id = $1",
                )
                .await?,
                &[&id.as_uuid(), &what, &now],
            )
            .await?;
            insert_event(
                &tx,
                NewEvent {
                    order_id: id,
                    at: now,
                    source: EventSource::Hub,
                    kind: EventKind::NeedsAttention,
                    status: None,
                    reason: Some(&what),
                    data: None,
                },
            )
            .await?;
            Declined::NeedsAttention
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// HQ gives an order no store has accepted yet to `store`, taking it from the store it
    /// was at, if any. `capacity`: the store's, checked under its row lock (`None`: HQ
    /// overrides the store's load). `decision` is recorded with the `routed` event.
    pub async fn assign(
        &self,
        id: OrderId,
        store: &StoreId,
        capacity: Option<u32>,
        timing: &AcceptTiming,
        decision: &serde_json::Value,
    ) -> Result<Assignment, AssignError> {
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client)?;
        let locked = lock(&tx, id).await?.ok_or(AssignError::NotFound(id))?;
        if locked.order.status != Status::Received {
            return Err(AssignError::NotAwaiting(locked.order.status));
        }
        if locked.order.store_id.as_ref() == Some(store) {
            return Err(AssignError::SameStore(store.clone()));
        }
        let now = Utc::now();
        let deadline = locked.order.order.fulfillment.accept_by;
        let accept_by = timing
            .store_accept_by(now, deadline)
            .ok_or(AssignError::TooLate(deadline.unwrap_or(now)))?;
        let mut moving = vec![store.clone()];
        moving.extend(locked.order.store_id.clone());
        let active = lock_loads(&tx, &moving)
            .await?
            .into_iter()
            .find(|(id, _, _)| id == store)
            .map_or(0, |(_, active, _)| active);
        if let Some(capacity) = capacity
            && active >= capacity
        {
            return Err(AssignError::Full {
                store: store.clone(),
                active,
                capacity,
            });
        }
        if let Some(previous) = &locked.order.store_id {
            withdraw(self, &tx, id, previous).await?;
        }
        let mut assigned = Assigned::new(EventSource::Hq);
        let reason = format!("assigned to {store} by HQ");
        assigned.push(self, id, store, accept_by, reason, decision.clone());
        // The assignment's statements and the commit in one round trip.
        let sent = assigned.send(&tx, now).await?;
        tx.commit_with(sent).await?;
        Ok(Assignment::Assigned {
            store: store.clone(),
            active: active + 1,
        })
    }

    /// Orders whose store's time to accept has run out, oldest first. Time is the hub's
    /// clock, as in [`Db::decline`] and where the time to accept was set.
    pub async fn overdue_at_store(&self, limit: i64) -> Result<Vec<(OrderId, StoreId)>, DbError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &client
                    .prepare_cached(
                        "SELECT id, store_id FROM orders
                 WHERE status = 'received' AND store_accept_by <= $2 AND store_id IS NOT NULL
                 ORDER BY store_accept_by LIMIT $1",
                    )
                    .await?,
                &[&limit, &Utc::now()],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let store: String = row.get(1);
                Ok((
                    OrderId::from_uuid(row.get(0)),
                    StoreId::parse(store).map_err(|e| DbError::Corrupt(e.to_string()))?,
                ))
            })
            .collect()
    }

    /// Orders not yet accepted whose platform deadline is less than `margin` away.
    pub async fn near_platform_deadline(
        &self,
        margin: Duration,
        limit: i64,
    ) -> Result<Vec<OrderId>, DbError> {
        let client = self.pool.get().await?;
        let horizon = Utc::now() + margin;
        let rows = client
            .query(
                &client
                    .prepare_cached(
                        "SELECT id FROM orders WHERE status = 'received' AND accept_by <= $1
                 ORDER BY accept_by LIMIT $2",
                    )
                    .await?,
                &[&horizon, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| OrderId::from_uuid(row.get(0)))
            .collect())
    }

    /// Rejects an order back to its platform because no store accepted it and the
    /// platform's deadline is less than `margin` away; the reason is the last store's
    /// refusal where HQ was waiting on one. `false`: the order had moved on.
    pub async fn reject_before_deadline(
        &self,
        id: OrderId,
        margin: Duration,
    ) -> Result<bool, ChangeError> {
        let mut client = self.pool.get().await?;
        let tx = self.begin(&mut client)?;
        let Some(locked) = lock(&tx, id).await? else {
            return Ok(false);
        };
        let near = locked
            .order
            .order
            .fulfillment
            .accept_by
            .is_some_and(|deadline| deadline - margin <= Utc::now());
        if locked.order.status != Status::Received || !near {
            return Ok(false);
        }
        let reason = match &locked.attention {
            Some(why) => why.clone(),
            None => "timed out: not accepted before the platform's acceptance deadline".into(),
        };
        let action = StatusAction::Reject { reason };
        apply_action(self, &tx, locked.order, &action, &Actor::Router).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// When the order's current store must have accepted it by, if it has one.
    pub async fn store_accept_by(&self, id: OrderId) -> Result<Option<DateTime<Utc>>, DbError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &client
                    .prepare_cached("SELECT store_accept_by FROM orders WHERE id = $1")
                    .await?,
                &[&id.as_uuid()],
            )
            .await?;
        Ok(row.and_then(|r| r.get(0)))
    }
}
