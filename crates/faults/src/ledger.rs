//! What the suite saw from the outside: every order offered and the hub's answer, every
//! message the stores received, every store action; the reconciliation reads it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use crossdock_hub::demo::Offered;

/// What the stores saw of one hub order.
#[derive(Debug, Default, Clone)]
pub struct AtStores {
    /// Stores that received it as a new order (`order.routed`), with how many distinct
    /// messages said so (more than one is a duplicate; the same message again is a
    /// redelivery, which a store recognises by its id).
    pub routed: BTreeMap<String, u32>,
    /// Stores it was taken back from (`order.withdrawn`).
    pub withdrawn: BTreeSet<String>,
    /// Store actions that answered 200 (or were found done), in order.
    pub worked: Vec<String>,
    /// Why working it stopped early, if it did.
    pub gave_up: Option<String>,
}

#[derive(Default)]
struct Inner {
    offers: Vec<Offered>,
    at_stores: HashMap<String, AtStores>,
    message_ids: HashSet<String>,
    messages: u64,
    same_message_again: u64,
    phones: HashSet<String>,
}

/// The suite's record, shared by the traffic, the stores and the reconciliation.
#[derive(Default)]
pub struct Ledger {
    inner: Mutex<Inner>,
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
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
        let entry = inner.at_stores.entry(order_id.to_owned()).or_default();
        match kind {
            "order.routed" => {
                let seen = entry.routed.entry(store.to_owned()).or_default();
                if first {
                    *seen += 1;
                }
                first && *seen == 1
            }
            "order.withdrawn" => {
                entry.withdrawn.insert(store.to_owned());
                false
            }
            _ => false,
        }
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

    pub fn worked(&self, order_id: &str, action: &str) {
        self.lock()
            .at_stores
            .entry(order_id.to_owned())
            .or_default()
            .worked
            .push(action.to_owned());
    }

    pub fn gave_up(&self, order_id: &str, why: String) {
        self.lock()
            .at_stores
            .entry(order_id.to_owned())
            .or_default()
            .gave_up = Some(why);
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

    /// (messages received, of which the same message again).
    pub fn message_counts(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.messages, inner.same_message_again)
    }
}
