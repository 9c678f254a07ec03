//! The store registry: stores, their channel ids, their API tokens, and their live state
//! (pause, items they cannot make, the orders they are working); and the chain's menu (the
//! PLUs of its items and modifier options, `menu_items`, V5), which the router checks
//! orders against.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use crossdock_model::{StoreId, StoreProfile};
use tokio_postgres::Row;

use crate::{Db, DbError};

/// Whether a menu entry is an item (an order line) or an option of a modifier group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MenuKind {
    Item,
    ModifierOption,
}

impl MenuKind {
    /// The `menu_items.kind` value: `item` or `option`.
    pub fn as_str(self) -> &'static str {
        match self {
            MenuKind::Item => "item",
            MenuKind::ModifierOption => "option",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "item" => Some(MenuKind::Item),
            "option" => Some(MenuKind::ModifierOption),
            _ => None,
        }
    }
}

/// One PLU of the chain's menu: an item, or an option of a modifier group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuEntry {
    pub plu: String,
    pub name: String,
    pub kind: MenuKind,
    /// The item's category (`pizza`, `side`, …); options have none.
    pub category: Option<String>,
    /// Currency code → price of one unit in integer minor units.
    pub prices: BTreeMap<String, i64>,
}

/// What replacing the menu changed, in PLUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MenuReplaced {
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    pub unchanged: usize,
}

impl MenuReplaced {
    /// The number of PLUs on the menu now.
    pub fn total(&self) -> usize {
        self.added + self.changed + self.unchanged
    }
}

/// Why a menu could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum MenuError {
    #[error("menu PLU {plu:?} is listed more than once; list each item and option once")]
    DuplicatePlu { plu: String },
    #[error("menu entry {name:?} has an empty PLU; every item and option needs its code")]
    EmptyPlu { name: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

fn menu_from_row(row: &Row) -> Result<MenuEntry, DbError> {
    let plu: String = row.get(0);
    let kind: String = row.get(2);
    let prices: serde_json::Value = row.get(4);
    Ok(MenuEntry {
        kind: MenuKind::parse(&kind)
            .ok_or_else(|| DbError::Corrupt(format!("menu item {plu}: kind {kind:?}")))?,
        prices: serde_json::from_value(prices)
            .map_err(|e| DbError::Corrupt(format!("menu item {plu}: prices: {e}")))?,
        name: row.get(1),
        category: row.get(3),
        plu,
    })
}

/// A store's live state as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveRow {
    pub store: StoreId,
    pub paused_until: Option<DateTime<Utc>>,
    pub pause_reason: Option<String>,
    /// Item codes (PLUs) the store cannot make, sorted.
    pub unavailable: Vec<String>,
    /// Orders occupying the store's kitchen.
    pub active: u32,
    /// How many times the row changed: a later version is a later state.
    pub version: i64,
}

/// Where a hub's reading of live state stands: every change by a transaction older than
/// this has been read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct LiveWatermark(u64);

const LIVE_COLUMNS: &str = "store_id, paused_until, pause_reason, unavailable, active, version";

fn live_from_row(row: &Row) -> Result<LiveRow, DbError> {
    let store: String = row.get(0);
    let active: i32 = row.get(4);
    Ok(LiveRow {
        store: StoreId::parse(store).map_err(|e| DbError::Corrupt(e.to_string()))?,
        paused_until: row.get(1),
        pause_reason: row.get(2),
        unavailable: row.get(3),
        active: u32::try_from(active).unwrap_or(0),
        version: row.get(5),
    })
}

impl Db {
    /// Inserts or updates a store and replaces its channel ids.
    pub async fn upsert_store(&self, profile: &StoreProfile) -> Result<(), DbError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let doc = serde_json::to_value(profile).map_err(|e| DbError::Corrupt(e.to_string()))?;
        tx.execute(
            &tx.prepare_cached(
                "INSERT INTO stores (id, name, brand, city, timezone, currency, lat, lng, profile)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (id) DO UPDATE SET name = $2, brand = $3, city = $4, timezone = $5,
                 currency = $6, lat = $7, lng = $8, profile = $9, updated_at = now()",
            )
            .await?,
            &[
                &profile.id.as_str(),
                &profile.name,
                &profile.brand,
                &profile.city,
                &profile.timezone,
                &profile.currency.code(),
                &profile.location.lat,
                &profile.location.lng,
                &doc,
            ],
        )
        .await?;
        tx.execute(
            &tx.prepare_cached("DELETE FROM channel_stores WHERE store_id = $1")
                .await?,
            &[&profile.id.as_str()],
        )
        .await?;
        for (channel, channel_store_id) in &profile.channels {
            tx.execute(
                &tx.prepare_cached("INSERT INTO channel_stores (channel, channel_store_id, store_id) VALUES ($1, $2, $3)
                 ON CONFLICT (channel, channel_store_id) DO UPDATE SET store_id = $3").await?,
                &[channel, channel_store_id, &profile.id.as_str()],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Replaces the chain's menu with `entries`, in one transaction: PLUs no longer on it
    /// are deleted, new ones inserted, changed ones updated. Statements run only for what
    /// changed, so storing the same menu again leaves the registry version alone.
    pub async fn replace_menu(&self, entries: &[MenuEntry]) -> Result<MenuReplaced, MenuError> {
        let mut wanted: HashMap<&str, &MenuEntry> = HashMap::with_capacity(entries.len());
        for entry in entries {
            if entry.plu.is_empty() {
                return Err(MenuError::EmptyPlu {
                    name: entry.name.clone(),
                });
            }
            if wanted.insert(entry.plu.as_str(), entry).is_some() {
                return Err(MenuError::DuplicatePlu {
                    plu: entry.plu.clone(),
                });
            }
        }
        Ok(self.store_menu(entries, &wanted).await?)
    }

    async fn store_menu(
        &self,
        entries: &[MenuEntry],
        wanted: &HashMap<&str, &MenuEntry>,
    ) -> Result<MenuReplaced, DbError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // One replacement at a time; readers of the menu are not blocked.
        tx.batch_execute("LOCK TABLE menu_items IN SHARE ROW EXCLUSIVE MODE")
            .await?;
        let rows = tx
            .query(
                &tx.prepare_cached("SELECT plu, name, kind, category, prices FROM menu_items")
                    .await?,
                &[],
            )
            .await?;
        let current: HashMap<String, MenuEntry> = rows
            .iter()
            .map(|row| menu_from_row(row).map(|entry| (entry.plu.clone(), entry)))
            .collect::<Result<_, _>>()?;
        let removed: Vec<&str> = current
            .keys()
            .map(String::as_str)
            .filter(|plu| !wanted.contains_key(plu))
            .collect();
        let mut outcome = MenuReplaced {
            removed: removed.len(),
            ..MenuReplaced::default()
        };
        let mut upserts = Vec::new();
        for entry in entries {
            match current.get(&entry.plu) {
                Some(stored) if stored == entry => {
                    outcome.unchanged += 1;
                    continue;
                }
                Some(_) => outcome.changed += 1,
                None => outcome.added += 1,
            }
            upserts.push(serde_json::json!({
                "plu": entry.plu,
                "name": entry.name,
                "kind": entry.kind.as_str(),
                "category": entry.category,
                "prices": entry.prices,
            }));
        }
        if !removed.is_empty() {
            tx.execute(
                &tx.prepare_cached("DELETE FROM menu_items WHERE plu = ANY($1)")
                    .await?,
                &[&removed],
            )
            .await?;
        }
        if !upserts.is_empty() {
            tx.execute(
                &tx.prepare_cached(
                    "INSERT INTO menu_items (plu, name, kind, category, prices)
                 SELECT plu, name, kind, category, prices
                 FROM jsonb_to_recordset($1::jsonb)
                     AS m(plu text, name text, kind text, category text, prices jsonb)
                 ON CONFLICT (plu) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,
                     category = EXCLUDED.category, prices = EXCLUDED.prices,
                     updated_at = now()",
                )
                .await?,
                &[&serde_json::Value::Array(upserts)],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// The chain's menu, by PLU.
    pub async fn menu(&self) -> Result<Vec<MenuEntry>, DbError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &client
                    .prepare_cached(
                        "SELECT plu, name, kind, category, prices FROM menu_items ORDER BY plu",
                    )
                    .await?,
                &[],
            )
            .await?;
        rows.iter().map(menu_from_row).collect()
    }

    /// The PLUs on the chain's menu (none: no menu is loaded), for the in-memory registry.
    pub async fn menu_plus(&self) -> Result<BTreeSet<String>, DbError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &client.prepare_cached("SELECT plu FROM menu_items").await?,
                &[],
            )
            .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// The registry's version: it changes whenever a store, a channel store id or the menu
    /// does.
    pub async fn registry_version(&self) -> Result<i64, DbError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_one(
                &client
                    .prepare_cached("SELECT version FROM registry_version")
                    .await?,
                &[],
            )
            .await?
            .get(0))
    }

    /// Every store's profile, for the in-memory registry.
    pub async fn load_stores(&self) -> Result<Vec<StoreProfile>, DbError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &client
                    .prepare_cached("SELECT profile FROM stores ORDER BY id")
                    .await?,
                &[],
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                let profile: serde_json::Value = row.get(0);
                serde_json::from_value(profile)
                    .map_err(|e| DbError::Corrupt(format!("store profile: {e}")))
            })
            .collect()
    }

    /// The live state of stores changed since `since` (all of them from the default
    /// watermark), and the watermark to pass next time. Reads in one snapshot: every
    /// transaction older than the snapshot's oldest running one is visible in it, and
    /// rows written by those still running are read again next time.
    pub async fn live_changes(
        &self,
        since: LiveWatermark,
    ) -> Result<(Vec<LiveRow>, LiveWatermark), DbError> {
        let mut client = self.pool.get().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let xmin: String = tx
            .query_one(
                &tx.prepare_cached("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
                    .await?,
                &[],
            )
            .await?
            .get(0);
        let next = xmin
            .parse::<u64>()
            .map(LiveWatermark)
            .map_err(|e| DbError::Corrupt(format!("snapshot xmin {xmin}: {e}")))?;
        let sql =
            format!("SELECT {LIVE_COLUMNS} FROM store_live WHERE changed_xid >= $1::text::xid8");
        let rows = tx
            .query(&tx.prepare_cached(&sql).await?, &[&since.0.to_string()])
            .await?;
        tx.commit().await?;
        let rows = rows.iter().map(live_from_row).collect::<Result<_, _>>()?;
        Ok((rows, next))
    }

    /// One store's live state.
    pub async fn live(&self, store: &StoreId) -> Result<Option<LiveRow>, DbError> {
        let client = self.pool.get().await?;
        let sql = format!("SELECT {LIVE_COLUMNS} FROM store_live WHERE store_id = $1");
        let row = client
            .query_opt(&client.prepare_cached(&sql).await?, &[&store.as_str()])
            .await?;
        row.as_ref().map(live_from_row).transpose()
    }

    /// Pauses a store until `until` (`None`: resumes it); `None` for an unknown store.
    pub async fn set_pause(
        &self,
        store: &StoreId,
        until: Option<DateTime<Utc>>,
        reason: Option<&str>,
    ) -> Result<Option<LiveRow>, DbError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "UPDATE store_live SET paused_until = $2, pause_reason = $3 WHERE store_id = $1
             RETURNING {LIVE_COLUMNS}"
        );
        let reason = until.and(reason);
        let row = client
            .query_opt(
                &client.prepare_cached(&sql).await?,
                &[&store.as_str(), &until, &reason],
            )
            .await?;
        row.as_ref().map(live_from_row).transpose()
    }

    /// Marks items unavailable ("86") and available again at a store; `None` for an
    /// unknown store.
    pub async fn set_availability(
        &self,
        store: &StoreId,
        unavailable: &[String],
        available: &[String],
    ) -> Result<Option<LiveRow>, DbError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "UPDATE store_live SET unavailable = ARRAY(
                 SELECT DISTINCT item FROM unnest(unavailable || $2::text[]) AS item
                 WHERE NOT item = ANY($3::text[]) ORDER BY item)
             WHERE store_id = $1
             RETURNING {LIVE_COLUMNS}"
        );
        let row = client
            .query_opt(
                &client.prepare_cached(&sql).await?,
                &[&store.as_str(), &unavailable, &available],
            )
            .await?;
        row.as_ref().map(live_from_row).transpose()
    }

    /// Stores the hash of a store's API token (replacing the previous one).
    pub async fn set_store_token(
        &self,
        store: &StoreId,
        token_hash: &[u8],
    ) -> Result<bool, DbError> {
        let client = self.pool.get().await?;
        let updated = client
            .execute(
                &client
                    .prepare_cached(
                        "UPDATE stores SET token_hash = $2, updated_at = now() WHERE id = $1",
                    )
                    .await?,
                &[&store.as_str(), &token_hash],
            )
            .await?;
        Ok(updated == 1)
    }

    /// The store whose token hashes to `token_hash`.
    pub async fn store_for_token(&self, token_hash: &[u8]) -> Result<Option<StoreId>, DbError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &client
                    .prepare_cached("SELECT id FROM stores WHERE token_hash = $1")
                    .await?,
                &[&token_hash],
            )
            .await?;
        row.map(|r| {
            let id: String = r.get(0);
            StoreId::parse(id).map_err(|e| DbError::Corrupt(e.to_string()))
        })
        .transpose()
    }
}
