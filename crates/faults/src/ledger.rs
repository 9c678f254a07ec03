//! What the suite saw from the outside: every order offered and the hub's answer, every
//! message the stores received and what each store did with each order, what HQ did with
//! the orders waiting for it, and what the platforms did out of order (cancellations,
//! courier events); the reconciliation reads it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use crossdock_hub::demo::Offered;

/// How one store's work on an order ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEnd {
    /// Accepted, readied and completed (or found at least that far: the platform's
    /// courier delivered it meanwhile).
    Completed,
    /// Taken back from the store before it acted (timed out, HQ gave it to another store).
    Withdrawn,
    /// The platform cancelled it, or the hub rejected it back: the store found it so
    /// (`status`) when it went to `before`.
    EndedByHub { status: String, before: String },
    /// Working it stopped for another reason.
    GaveUp(String),
}

/// What one store saw and did of one hub order.
#[derive(Debug, Default, Clone)]
pub struct AtStore {
    /// Distinct messages that gave it the order (`order.routed`; more than one is a
    /// duplicate, the same message again a redelivery it recognised by its id).
    pub routed: u32,
    /// It heard the order was taken back (`order.withdrawn`).
    pub withdrawn: bool,
    /// Other changes it heard of (`order.cancelled`, `order.accepted`, …).
    pub told: BTreeSet<String>,
    /// Store actions that answered 200 (or were found done), in order, with when each
    /// request was sent.
    pub worked: Vec<(String, Instant)>,
    /// The order reached it while it was not acting on new orders (a stall).
    pub while_stalled: bool,
    pub end: Option<StoreEnd>,
}

/// What the stores saw of one hub order.
#[derive(Debug, Default, Clone)]
pub struct AtStores {
    pub stores: BTreeMap<String, AtStore>,
}

impl AtStores {
    /// Stores the order reached (`order.routed`).
    pub fn routed(&self) -> impl Iterator<Item = (&String, &AtStore)> {
        self.stores.iter().filter(|(_, at)| at.routed > 0)
    }

    /// Stores that have it and were not told it was taken back.
    pub fn holding(&self) -> Vec<&String> {
        self.routed()
            .filter(|(_, at)| !at.withdrawn)
            .map(|(store, _)| store)
            .collect()
    }

    /// Whether a store worked it to the end.
    pub fn completed(&self) -> bool {
        self.stores
            .values()
            .any(|at| at.end == Some(StoreEnd::Completed))
    }

    /// When a store sent the request that completed it, if one did.
    pub fn completed_at(&self) -> Option<Instant> {
        self.stores
            .values()
            .flat_map(|at| at.worked.iter())
            .find(|(action, _)| action == "complete")
            .map(|(_, at)| *at)
    }
}

/// How the platform cancelled an order (the traffic's plan for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CancelPlan {
    /// The order's first delivery was lost; the cancellation arrived, then the order's
    /// retry.
    BeforeTheOrder,
    /// The cancellation and the order's first delivery in flight at once.
    WithTheOrder,
    /// Cancelled right after the order was taken, and the cancellation delivered twice.
    Twice,
    /// Cancelled once the platform heard the store accepted.
    AfterAccept,
}

impl CancelPlan {
    pub const ALL: [CancelPlan; 4] = [
        CancelPlan::BeforeTheOrder,
        CancelPlan::WithTheOrder,
        CancelPlan::Twice,
        CancelPlan::AfterAccept,
    ];

    /// The fault's name in the report.
    pub fn fault(self) -> &'static str {
        match self {
            CancelPlan::BeforeTheOrder => "platform cancels before the order arrives",
            CancelPlan::WithTheOrder => "platform cancels while the order arrives",
            CancelPlan::Twice => "platform cancels twice",
            CancelPlan::AfterAccept => "platform cancels after the store accepted",
        }
    }
}

/// One planned cancellation and what came of it.
#[derive(Debug, Clone)]
pub struct CancelRecord {
    pub plan: CancelPlan,
    /// When the hub first acknowledged the cancellation (`None`: never).
    pub acked_at: Option<Instant>,
    /// Answers that were not an acknowledgement (`{status} {body}`).
    pub refused: Vec<String>,
    /// The platform already had the order finished when the cancellation was due (the
    /// order was completed before the customer cancelled): none was sent.
    pub not_sent: Option<String>,
}

/// Courier events sent out of order for one order and what came of them.
#[derive(Debug, Clone, Default)]
pub struct CourierRecord {
    /// Events sent (`delivered` first, then `picked up`), each acknowledged or not.
    pub sent: Vec<(String, bool)>,
    /// Why none was sent, if none was.
    pub not_sent: Option<String>,
}

/// What HQ did with an order waiting for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HqAction {
    /// Given to this store.
    Assigned(String),
    /// Rejected back to the platform (no store could take it).
    Rejected,
    /// Left to the deadline guard (its platform deadline was too near).
    LeftToDeadline,
}

#[derive(Default)]
struct Inner {
    offers: Vec<Offered>,
    at_stores: HashMap<String, AtStores>,
    message_ids: HashSet<String>,
    messages: u64,
    same_message_again: u64,
    phones: HashSet<String>,
    cancels: HashMap<(String, String), CancelRecord>,
    couriers: HashMap<(String, String), CourierRecord>,
    hq: HashMap<String, Vec<HqAction>>,
    struck: BTreeMap<String, u32>,
}

/// The suite's record, shared by the traffic, the stores, HQ and the reconciliation.
#[derive(Default)]
pub struct Ledger {
    inner: Mutex<Inner>,
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn at<'a>(inner: &'a mut Inner, order_id: &str, store: &str) -> &'a mut AtStore {
        inner
            .at_stores
            .entry(order_id.to_owned())
            .or_default()
            .stores
            .entry(store.to_owned())
            .or_default()
    }

    /// Records an offer once it is settled (acknowledged, or given up).
    pub fn offered(&self, offer: Offered) {
        self.lock().offers.push(offer);
    }

    /// Records a store message; returns `true` the first time this message id is seen
    /// for a new order at a store (the store should work it).
    pub fn store_message(
        &self,
        order_id: &str,
        store: &str,
        kind: &str,
        message_id: Option<&str>,
    ) -> bool {
        let mut inner = self.lock();
        inner.messages += 1;
        let first = match message_id {
            Some(id) => inner.message_ids.insert(id.to_owned()),
            None => true,
        };
        if !first {
            inner.same_message_again += 1;
        }
        let at = Self::at(&mut inner, order_id, store);
        match kind {
            "order.routed" => {
                if first {
                    at.routed += 1;
                }
                first && at.routed == 1
            }
            "order.withdrawn" => {
                at.withdrawn = true;
                false
            }
            other => {
                at.told.insert(other.to_owned());
                false
            }
        }
    }

    /// Whether `store` was told the order was taken back from it.
    pub fn withdrawn(&self, order_id: &str, store: &str) -> bool {
        self.lock()
            .at_stores
            .get(order_id)
            .and_then(|s| s.stores.get(store))
            .is_some_and(|at| at.withdrawn)
    }

    /// Notes that the order reached `store` while it was stalled.
    pub fn while_stalled(&self, order_id: &str, store: &str) {
        Self::at(&mut self.lock(), order_id, store).while_stalled = true;
    }

    /// Notes a customer phone number the traffic sent (digits only), for the log check.
    pub fn phone(&self, phone: &str) {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        if digits.len() >= 7 {
            self.lock().phones.insert(digits);
        }
    }

    pub fn phones(&self) -> Vec<String> {
        self.lock().phones.iter().cloned().collect()
    }

    /// A store action that went through; `sent`: when its request went out.
    pub fn worked(&self, order_id: &str, store: &str, action: &str, sent: Instant) {
        Self::at(&mut self.lock(), order_id, store)
            .worked
            .push((action.to_owned(), sent));
    }

    /// How the store's work on the order ended.
    pub fn ended(&self, order_id: &str, store: &str, end: StoreEnd) {
        Self::at(&mut self.lock(), order_id, store).end = Some(end);
    }

    /// A planned cancellation, before anything is sent.
    pub fn cancel_planned(&self, channel: &str, external_order_id: &str, plan: CancelPlan) {
        self.lock().cancels.insert(
            (channel.to_owned(), external_order_id.to_owned()),
            CancelRecord {
                plan,
                acked_at: None,
                refused: Vec::new(),
                not_sent: None,
            },
        );
    }

    /// The hub's answer to a cancellation.
    pub fn cancel_answered(
        &self,
        channel: &str,
        external_order_id: &str,
        acked: bool,
        answer: String,
    ) {
        let mut inner = self.lock();
        let key = (channel.to_owned(), external_order_id.to_owned());
        let Some(record) = inner.cancels.get_mut(&key) else {
            return;
        };
        let plan = record.plan;
        if acked {
            let first = record.acked_at.is_none();
            record.acked_at.get_or_insert_with(Instant::now);
            if first {
                *inner.struck.entry(plan.fault().to_owned()).or_default() += 1;
            }
        } else {
            record.refused.push(answer);
        }
    }

    /// A planned cancellation the platform had no reason to send.
    pub fn cancel_not_sent(&self, channel: &str, external_order_id: &str, why: String) {
        if let Some(record) = self
            .lock()
            .cancels
            .get_mut(&(channel.to_owned(), external_order_id.to_owned()))
        {
            record.not_sent = Some(why);
        }
    }

    /// A courier event sent out of order and whether the hub acknowledged it.
    pub fn courier_sent(&self, channel: &str, external_order_id: &str, event: &str, acked: bool) {
        let mut inner = self.lock();
        let record = inner
            .couriers
            .entry((channel.to_owned(), external_order_id.to_owned()))
            .or_default();
        record.sent.push((event.to_owned(), acked));
        // The fault struck once both events went, the later one first.
        if record.sent.len() == 2 {
            *inner
                .struck
                .entry("courier events out of order".to_owned())
                .or_default() += 1;
        }
    }

    /// Courier events planned for an order that never went.
    pub fn courier_not_sent(&self, channel: &str, external_order_id: &str, why: String) {
        self.lock()
            .couriers
            .entry((channel.to_owned(), external_order_id.to_owned()))
            .or_default()
            .not_sent = Some(why);
    }

    /// What HQ did with an order.
    pub fn hq(&self, order_id: &str, action: HqAction) {
        self.lock()
            .hq
            .entry(order_id.to_owned())
            .or_default()
            .push(action);
    }

    pub fn offers(&self) -> Vec<Offered> {
        self.lock().offers.clone()
    }

    pub fn offer_count(&self) -> usize {
        self.lock().offers.len()
    }

    pub fn at_stores(&self) -> HashMap<String, AtStores> {
        self.lock().at_stores.clone()
    }

    pub fn cancels(&self) -> HashMap<(String, String), CancelRecord> {
        self.lock().cancels.clone()
    }

    pub fn couriers(&self) -> HashMap<(String, String), CourierRecord> {
        self.lock().couriers.clone()
    }

    pub fn hq_actions(&self) -> HashMap<String, Vec<HqAction>> {
        self.lock().hq.clone()
    }

    /// The platforms' out-of-order events that struck, by fault name.
    pub fn struck(&self) -> BTreeMap<String, u32> {
        self.lock().struck.clone()
    }

    /// (messages received, of which the same message again).
    pub fn message_counts(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.messages, inner.same_message_again)
    }
}
