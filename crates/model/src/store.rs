//! A store of the chain, as the chain file (`fixtures/chain/chain.json`) describes it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::StoreId;
use crate::money::Currency;

/// The chain file: the chain's brands and stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainFile {
    pub chain: String,
    pub brands: Vec<Brand>,
    pub stores: Vec<StoreProfile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Brand {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatLng {
    pub lat: f64,
    pub lng: f64,
}

/// One store: where it is, when it is open, where it delivers, and its id on each channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreProfile {
    pub id: StoreId,
    pub name: String,
    pub brand: String,
    pub city: String,
    pub country: String,
    /// IANA time zone of the store's opening hours.
    pub timezone: String,
    pub currency: Currency,
    pub address: String,
    pub location: LatLng,
    /// Day (`mon`…`sun`) → opening intervals `["HH:MM", "HH:MM"]`, local time; a close
    /// earlier than the open means the next day.
    pub hours: BTreeMap<String, Vec<[String; 2]>>,
    /// Local dates the store is closed all day (holidays), whatever `hours` say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub closed_on: Vec<chrono::NaiveDate>,
    /// Active orders the kitchen takes at once.
    pub capacity: u32,
    pub prep_minutes: u32,
    /// Closed ring of `[lng, lat]` points (GeoJSON order).
    pub delivery_zone: Vec<[f64; 2]>,
    /// Channel id → the channel's id of this store.
    pub channels: BTreeMap<String, String>,
}
