//! The store registry: stores, their channel ids and their API tokens.

use chrono::{DateTime, Utc};
use crossdock_model::{StoreId, StoreProfile};

use crate::{Db, DbError};

/// A store as the registry holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreState {
    pub profile: StoreProfile,
    pub paused_until: Option<DateTime<Utc>>,
}

impl Db {
    /// Inserts or updates a store and replaces its channel ids.
    pub async fn upsert_store(&self, profile: &StoreProfile) -> Result<(), DbError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let doc = serde_json::to_value(profile).map_err(|e| DbError::Corrupt(e.to_string()))?;
        tx.execute(
            "INSERT INTO stores (id, name, brand, city, timezone, currency, lat, lng, profile)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (id) DO UPDATE SET name = $2, brand = $3, city = $4, timezone = $5,
                 currency = $6, lat = $7, lng = $8, profile = $9, updated_at = now()",
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
            "DELETE FROM channel_stores WHERE store_id = $1",
            &[&profile.id.as_str()],
        )
        .await?;
        for (channel, channel_store_id) in &profile.channels {
            tx.execute(
                "INSERT INTO channel_stores (channel, channel_store_id, store_id) VALUES ($1, $2, $3)
                 ON CONFLICT (channel, channel_store_id) DO UPDATE SET store_id = $3",
                &[channel, channel_store_id, &profile.id.as_str()],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The registry's version: it changes whenever a store or a channel store id does.
    pub async fn registry_version(&self) -> Result<i64, DbError> {
        let client = self.pool.get().await?;
        Ok(client
            .query_one("SELECT version FROM registry_version", &[])
            .await?
            .get(0))
    }

    /// Every store, for the in-memory registry.
    pub async fn load_stores(&self) -> Result<Vec<StoreState>, DbError> {
        let client = self.pool.get().await?;
        let rows = client
            .query("SELECT profile, paused_until FROM stores ORDER BY id", &[])
            .await?;
        rows.into_iter()
            .map(|row| {
                let profile: serde_json::Value = row.get(0);
                let profile = serde_json::from_value(profile)
                    .map_err(|e| DbError::Corrupt(format!("store profile: {e}")))?;
                Ok(StoreState {
                    profile,
                    paused_until: row.get(1),
                })
            })
            .collect()
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
                "UPDATE stores SET token_hash = $2, updated_at = now() WHERE id = $1",
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
                "SELECT id FROM stores WHERE token_hash = $1",
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
