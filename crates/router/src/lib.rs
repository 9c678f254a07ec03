//! Store assignment.
//!
//! # Layout
//!
//! - [`Registry`]: every store in memory — profile, delivery zone as a polygon, compiled
//!   opening hours — with an R-tree over the zones' bounding boxes and a map of channel
//!   store ids, so routing reads no database and costs O(log n) in the number of stores.
//!   Each store also carries its [`StoreLive`] state (pause, items it cannot make, active
//!   orders), which the hub keeps current in place without rebuilding the registry.
//!   The registry may also carry the chain's menu: the PLUs of its items and modifier
//!   options ([`Registry::with_menu`]).
//! - [`route`]: the decision for one order, with every candidate considered and why it
//!   was chosen or dropped. Pure given the registry: the caller records it and acts on it.
//!
//! Rules: an order naming a PLU that is not on the chain's menu is refused before any
//! store is looked at ([`Unroutable::UnknownItem`]; without a menu, items are not checked).
//! A channel that names the store gets that store (through the channel's store
//! mapping); an order routed by address gets the nearest store whose delivery zone
//! contains the drop-off point. In both cases the store must serve the order's brand, be
//! open by its own hours (at the due time for a scheduled order), not be paused, have
//! room under its capacity, be able to make every item, and not have declined the order
//! already ([`unfit`]). A sale a store already made ([`route_sale`]) goes to that store,
//! whatever its state and whatever it sold.

mod hours;

pub use hours::OpeningHours;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Utc};
use crossdock_model::{FulfillmentKind, NewOrder, StoreId, StoreProfile, Timing, Unroutable};
use geo::{Contains, Distance, Haversine, LineString, Point, Polygon};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};
use serde::{Deserialize, Serialize};

/// Why a store cannot enter the registry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegistryError {
    #[error("store {store}: delivery zone needs at least 4 points forming a closed ring")]
    BadZone { store: StoreId },
    #[error("store {store}: opening hours: {message}")]
    BadHours { store: StoreId, message: String },
    #[error("channel {channel} store id {channel_store_id} is mapped to both {first} and {second}")]
    DuplicateChannelId {
        channel: String,
        channel_store_id: String,
        first: StoreId,
        second: StoreId,
    },
}

/// What changes about a store from minute to minute, as HQ, the store and the order flow
/// set it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreLive {
    /// Paused (by HQ or the store) until this time; a time in the past is no pause.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_until: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause_reason: Option<String>,
    /// Item codes (PLUs) the store cannot make now ("86").
    #[serde(default)]
    pub unavailable: BTreeSet<String>,
    /// Orders the kitchen is working: assigned and not yet ready (see
    /// `Status::occupies_kitchen`).
    #[serde(default)]
    pub active: u32,
}

impl StoreLive {
    /// Whether the store is paused at `now`.
    pub fn paused_at(&self, now: DateTime<Utc>) -> bool {
        self.paused_until.is_some_and(|until| until > now)
    }
}

/// A store's live state and the version of the database row it came from.
#[derive(Default)]
struct Versioned {
    live: StoreLive,
    version: i64,
}

struct Entry {
    profile: StoreProfile,
    hours: OpeningHours,
    zone: Polygon<f64>,
    live: RwLock<Versioned>,
}

impl Entry {
    fn read(&self) -> RwLockReadGuard<'_, Versioned> {
        self.live
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Versioned> {
        self.live
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The stores as the router sees them, and the chain's menu.
pub struct Registry {
    entries: Vec<Entry>,
    by_id: HashMap<StoreId, usize>,
    by_channel: HashMap<(String, String), usize>,
    zones: RTree<GeomWithData<Rectangle<[f64; 2]>, usize>>,
    /// The PLUs of the chain's items and modifier options; `None`: no menu is loaded and
    /// items are not checked.
    menu: Option<HashSet<String>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("stores", &self.entries.len())
            .field("menu", &self.menu.as_ref().map(HashSet::len))
            .finish()
    }
}

impl Registry {
    /// Builds the registry from every store's profile; every store starts with an empty
    /// [`StoreLive`] until [`Registry::set_live`] says otherwise. It has no menu until
    /// [`Registry::with_menu`] gives it one.
    pub fn build(stores: impl IntoIterator<Item = StoreProfile>) -> Result<Self, RegistryError> {
        let mut entries = Vec::new();
        let mut by_id = HashMap::new();
        let mut by_channel: HashMap<(String, String), usize> = HashMap::new();
        let mut boxes = Vec::new();
        for profile in stores {
            let ring = &profile.delivery_zone;
            if ring.len() < 4 || ring.first() != ring.last() {
                return Err(RegistryError::BadZone {
                    store: profile.id.clone(),
                });
            }
            let zone = Polygon::new(
                LineString::from(ring.iter().map(|[x, y]| (*x, *y)).collect::<Vec<_>>()),
                vec![],
            );
            let (mut min, mut max) = ([f64::MAX; 2], [f64::MIN; 2]);
            for [x, y] in ring {
                min = [min[0].min(*x), min[1].min(*y)];
                max = [max[0].max(*x), max[1].max(*y)];
            }
            let index = entries.len();
            boxes.push(GeomWithData::new(Rectangle::from_corners(min, max), index));
            for (channel, channel_store_id) in &profile.channels {
                let key = (channel.clone(), channel_store_id.clone());
                if let Some(&first) = by_channel.get(&key) {
                    let first: &Entry = &entries[first];
                    return Err(RegistryError::DuplicateChannelId {
                        channel: key.0,
                        channel_store_id: key.1,
                        first: first.profile.id.clone(),
                        second: profile.id.clone(),
                    });
                }
                by_channel.insert(key, index);
            }
            let hours =
                OpeningHours::compile(&profile.timezone, &profile.hours, &profile.closed_on)
                    .map_err(|message| RegistryError::BadHours {
                        store: profile.id.clone(),
                        message,
                    })?;
            by_id.insert(profile.id.clone(), index);
            entries.push(Entry {
                hours,
                profile,
                zone,
                live: RwLock::new(Versioned::default()),
            });
        }
        Ok(Self {
            entries,
            by_id,
            by_channel,
            zones: RTree::bulk_load(boxes),
            menu: None,
        })
    }

    /// The registry with the chain's menu: the PLUs of every item and modifier option the
    /// chain sells. [`route`] refuses an order naming any other PLU. No PLUs at all is no
    /// menu: items are not checked.
    pub fn with_menu(mut self, plus: impl IntoIterator<Item = String>) -> Self {
        let menu: HashSet<String> = plus.into_iter().collect();
        self.menu = (!menu.is_empty()).then_some(menu);
        self
    }

    /// The menu's PLUs; `None` when no menu is loaded.
    pub fn menu(&self) -> Option<&HashSet<String>> {
        self.menu.as_ref()
    }

    /// Whether the chain sells `plu`; `true` for every PLU when no menu is loaded.
    pub fn on_menu(&self, plu: &str) -> bool {
        self.menu.as_ref().is_none_or(|menu| menu.contains(plu))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn store(&self, id: &StoreId) -> Option<&StoreProfile> {
        self.by_id.get(id).map(|&i| &self.entries[i].profile)
    }

    pub fn stores(&self) -> impl Iterator<Item = &StoreProfile> {
        self.entries.iter().map(|e| &e.profile)
    }

    /// The store a channel means by its store id.
    pub fn by_channel(&self, channel: &str, channel_store_id: &str) -> Option<&StoreProfile> {
        self.by_channel
            .get(&(channel.to_owned(), channel_store_id.to_owned()))
            .map(|&i| &self.entries[i].profile)
    }

    /// Whether the store's delivery zone contains the point.
    pub fn delivers_to(&self, id: &StoreId, lat: f64, lng: f64) -> bool {
        self.by_id
            .get(id)
            .is_some_and(|&i| self.entries[i].zone.contains(&Point::new(lng, lat)))
    }

    /// Stores whose delivery zone contains the point, nearest first, with distances (m).
    pub fn covering(&self, lat: f64, lng: f64) -> Vec<(&StoreProfile, f64)> {
        let point = Point::new(lng, lat);
        let mut hits: Vec<(&StoreProfile, f64)> = self
            .zones
            .locate_in_envelope_intersecting(&AABB::from_point([lng, lat]))
            .map(|hit| &self.entries[hit.data])
            .filter(|entry| entry.zone.contains(&point))
            .map(|entry| {
                let store = Point::new(entry.profile.location.lng, entry.profile.location.lat);
                (&entry.profile, Haversine.distance(store, point))
            })
            .collect();
        hits.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.id.cmp(&b.0.id)));
        hits
    }

    /// The store's compiled opening hours.
    pub fn hours(&self, id: &StoreId) -> Option<&OpeningHours> {
        self.by_id.get(id).map(|&i| &self.entries[i].hours)
    }

    /// The store's live state.
    pub fn live(&self, id: &StoreId) -> Option<StoreLive> {
        self.entry(id).map(|entry| entry.read().live.clone())
    }

    /// Replaces a store's live state, whatever it held; `false` if the store is not in the
    /// registry.
    pub fn set_live(&self, id: &StoreId, live: StoreLive) -> bool {
        let Some(entry) = self.entry(id) else {
            return false;
        };
        entry.write().live = live;
        true
    }

    /// Replaces a store's live state with `version` of it, unless the registry holds a
    /// later version already (a read that raced a newer change); `true` if it did.
    pub fn update_live(&self, id: &StoreId, live: StoreLive, version: i64) -> bool {
        let Some(entry) = self.entry(id) else {
            return false;
        };
        let mut slot = entry.write();
        if version < slot.version {
            return false;
        }
        *slot = Versioned { live, version };
        true
    }

    /// Sets the number of orders a store is working as `version` of its live state
    /// counted them, unless the registry holds a later version.
    pub fn update_active(&self, id: &StoreId, active: u32, version: i64) {
        if let Some(entry) = self.entry(id) {
            let mut slot = entry.write();
            if version >= slot.version {
                slot.live.active = active;
                slot.version = version;
            }
        }
    }

    fn entry(&self, id: &StoreId) -> Option<&Entry> {
        self.by_id.get(id).map(|&i| &self.entries[i])
    }
}

/// One store the router looked at.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub store: StoreId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_m: Option<u32>,
    /// `chosen`, or why the store was dropped.
    pub verdict: String,
}

/// The router's decision and the reasons for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// `by_channel_store`, `by_delivery_zone`, `store_sale`, or `menu` (an item not on
    /// the chain's menu: no store was looked at).
    pub rule: &'static str,
    pub store: Option<StoreId>,
    /// Why no store was chosen (what the channel is told).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The kind of that refusal, for channels that answer with a code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<Unroutable>,
    pub candidates: Vec<Candidate>,
}

impl Decision {
    fn none(
        rule: &'static str,
        refusal: Unroutable,
        reason: String,
        candidates: Vec<Candidate>,
    ) -> Self {
        Self {
            rule,
            store: None,
            reason: Some(reason),
            refusal: Some(refusal),
            candidates,
        }
    }
}

/// The drop-off point of an order the store says it delivers itself, if the point can be
/// held against the zones (WGS 84; GCJ-02 points are offset by design and are not).
fn store_delivery_point(order: &NewOrder) -> Option<crossdock_model::Coordinates> {
    let fulfillment = &order.fulfillment;
    if fulfillment.kind != FulfillmentKind::Delivery
        || fulfillment.delivered_by != Some(crossdock_model::DeliveredBy::Store)
    {
        return None;
    }
    fulfillment
        .address
        .as_ref()?
        .coordinates
        .filter(|point| point.system == crossdock_model::CoordSystem::Wgs84)
}

/// The item codes an order needs made: every line's and every modifier's PLU, except
/// ingredients the customer took off.
fn needed_items(order: &NewOrder) -> impl Iterator<Item = &str> {
    fn modifiers<'a>(list: &'a [crossdock_model::Modifier], out: &mut Vec<&'a str>) {
        for modifier in list.iter().filter(|m| !m.removed) {
            out.extend(modifier.plu.as_deref());
            modifiers(&modifier.modifiers, out);
        }
    }
    let mut out = Vec::new();
    for line in &order.lines {
        out.extend(line.plu.as_deref());
        modifiers(&line.modifiers, &mut out);
    }
    out.into_iter()
}

/// The PLUs `order` needs made that are not on the chain's menu, sorted; none when the
/// registry has no menu. Lines and modifiers without a PLU (the channel sent only its own
/// item id) are not checked, nor ingredients taken off: the menu lists what the chain
/// sells, and nothing is made of a removed ingredient.
pub fn unknown_items<'a>(registry: &Registry, order: &'a NewOrder) -> BTreeSet<&'a str> {
    if registry.menu.is_none() {
        return BTreeSet::new();
    }
    needed_items(order)
        .filter(|plu| !registry.on_menu(plu))
        .collect()
}

/// The refusal of an order naming PLUs that are not on the menu, worded so that the
/// adapters' reason mapping picks their item-unavailable code.
fn unknown_items_reason(unknown: &BTreeSet<&str>) -> String {
    let list: Vec<&str> = unknown.iter().copied().collect();
    match list.as_slice() {
        [one] => format!("item unavailable: PLU {one} is not on the chain's menu"),
        many => format!(
            "item unavailable: PLUs {} are not on the chain's menu",
            many.join(", ")
        ),
    }
}

/// Why `store` cannot take `order` at `now`, if it cannot; `None` for an unknown store.
///
/// The reasons are worded so that each adapter's mapping of free-text reasons to its
/// platform's codes finds the right one: "closed", "too busy", "unavailable".
pub fn unfit(
    registry: &Registry,
    store: &StoreId,
    order: &NewOrder,
    now: DateTime<Utc>,
) -> Option<String> {
    let entry = registry.entry(store)?;
    if let Some(brand) = &order.brand
        && *brand != entry.profile.brand
    {
        return Some(format!("does not serve brand {brand}"));
    }
    let guard = entry.read();
    let live = &guard.live;
    if let Some(until) = live.paused_until
        && until > now
    {
        return Some(format!(
            "paused until {}: closed for new orders",
            until.to_rfc3339()
        ));
    }
    // A scheduled order is made at its due time: the store must be open then.
    let due = match order.fulfillment.timing {
        Timing::Scheduled { at } => at,
        Timing::Asap => now,
    };
    if !entry.hours.is_open(due) {
        let when = if due == now {
            "now"
        } else {
            "at the order's time"
        };
        return Some(format!("closed {when} ({})", entry.hours.local(due)));
    }
    let capacity = entry.profile.capacity;
    if live.active >= capacity {
        return Some(format!(
            "too busy: {} active orders, its capacity is {capacity}",
            live.active
        ));
    }
    let missing: BTreeSet<&str> = needed_items(order)
        .filter(|plu| live.unavailable.contains(*plu))
        .collect();
    if !missing.is_empty() {
        let list: Vec<&str> = missing.into_iter().collect();
        return Some(format!("item unavailable: {}", list.join(", ")));
    }
    None
}

/// Assigns a sale a store already made (channels whose orders come from the store's own
/// system, a POS) to the store the channel names. Nothing is asked of that store: the sale
/// happened there, paused, closed or busy, and whatever it sold (the menu is not checked).
pub fn route_sale(registry: &Registry, order: &NewOrder) -> Decision {
    let rule = "store_sale";
    let channel = order.channel.as_str();
    let Some(reference) = &order.channel_store_ref else {
        return Decision::none(
            rule,
            Unroutable::UnknownStore,
            format!("a {channel} sale must name the store that made it"),
            vec![],
        );
    };
    match registry.by_channel(channel, reference) {
        Some(store) => Decision {
            rule,
            store: Some(store.id.clone()),
            reason: None,
            refusal: None,
            candidates: vec![Candidate {
                store: store.id.clone(),
                distance_m: None,
                verdict: "made the sale".into(),
            }],
        },
        None => Decision::none(
            rule,
            Unroutable::UnknownStore,
            format!("unknown store: {channel} store id {reference} is not mapped to any store"),
            vec![],
        ),
    }
}

/// Decides which store takes `order` at `now`. Stores in `declined` (those that rejected
/// the order or did not accept it in time) are not asked again. An order naming a PLU
/// that is not on the chain's menu is refused first, with no store looked at (rule
/// `menu`).
pub fn route(
    registry: &Registry,
    order: &NewOrder,
    now: DateTime<Utc>,
    declined: &[StoreId],
) -> Decision {
    let unknown = unknown_items(registry, order);
    if !unknown.is_empty() {
        return Decision::none(
            "menu",
            Unroutable::UnknownItem,
            unknown_items_reason(&unknown),
            vec![],
        );
    }
    let why_not = |store: &StoreId| {
        if declined.contains(store) {
            Some("declined the order already".to_owned())
        } else {
            unfit(registry, store, order, now)
        }
    };
    let channel = order.channel.as_str();
    if let Some(reference) = &order.channel_store_ref {
        let rule = "by_channel_store";
        let Some(store) = registry.by_channel(channel, reference) else {
            return Decision::none(
                rule,
                Unroutable::UnknownStore,
                format!("unknown store: {channel} store id {reference} is not mapped to any store"),
                vec![],
            );
        };
        // A store that delivers the order itself delivers only inside its zone.
        if let Some(point) = store_delivery_point(order)
            && !registry.delivers_to(&store.id, point.lat, point.lng)
        {
            return Decision::none(
                rule,
                Unroutable::OutOfArea,
                format!(
                    "store {} does not deliver to the address: it is outside the store's delivery zone",
                    store.id
                ),
                vec![Candidate {
                    store: store.id.clone(),
                    distance_m: None,
                    verdict: "address outside its delivery zone".into(),
                }],
            );
        }
        return match why_not(&store.id) {
            None => Decision {
                rule,
                store: Some(store.id.clone()),
                reason: None,
                refusal: None,
                candidates: vec![Candidate {
                    store: store.id.clone(),
                    distance_m: None,
                    verdict: "chosen".into(),
                }],
            },
            Some(why) => Decision::none(
                rule,
                Unroutable::StoreUnavailable,
                format!("store {} cannot take the order: {why}", store.id),
                vec![Candidate {
                    store: store.id.clone(),
                    distance_m: None,
                    verdict: why,
                }],
            ),
        };
    }
    let rule = "by_delivery_zone";
    let location = match (
        &order.fulfillment.kind,
        order
            .fulfillment
            .address
            .as_ref()
            .and_then(|a| a.coordinates),
    ) {
        (FulfillmentKind::Delivery, Some(coordinates)) => coordinates,
        _ => {
            return Decision::none(
                rule,
                Unroutable::NoLocation,
                "the order names no store and has no delivery location".into(),
                vec![],
            );
        }
    };
    let covering = registry.covering(location.lat, location.lng);
    if covering.is_empty() {
        return Decision::none(
            rule,
            Unroutable::OutOfArea,
            "delivery address is outside every store's delivery zone".into(),
            vec![],
        );
    }
    let mut candidates = Vec::with_capacity(covering.len());
    let mut chosen = None;
    for (store, distance) in covering {
        let distance_m = Some(distance.round().clamp(0.0, f64::from(u32::MAX)) as u32);
        let verdict = if chosen.is_some() {
            "not needed: a nearer store was chosen".to_owned()
        } else if let Some(why) = why_not(&store.id) {
            why
        } else {
            chosen = Some(store.id.clone());
            "chosen".to_owned()
        };
        candidates.push(Candidate {
            store: store.id.clone(),
            distance_m,
            verdict,
        });
    }
    match chosen {
        Some(store) => Decision {
            rule,
            store: Some(store),
            reason: None,
            refusal: None,
            candidates,
        },
        None => Decision::none(
            rule,
            Unroutable::StoreUnavailable,
            "no store whose zone covers the address can take the order".into(),
            candidates,
        ),
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
