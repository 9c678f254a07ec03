//! Loading the chain file into the store registry, and store tokens.

use std::path::Path;

use anyhow::Context;
use crossdock_db::Db;
use crossdock_model::{ChainFile, StoreId};
use rand::RngCore;

/// Reads and checks a chain file.
pub fn read(path: &Path) -> anyhow::Result<ChainFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let chain: ChainFile =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    // The router refuses a chain it could not route over: check it the same way.
    crossdock_router::Registry::build(chain.stores.iter().cloned())
        .with_context(|| format!("checking {}", path.display()))?;
    Ok(chain)
}

/// Upserts every store of the chain; returns how many.
pub async fn load(db: &Db, chain: &ChainFile) -> anyhow::Result<usize> {
    for store in &chain.stores {
        db.upsert_store(store)
            .await
            .with_context(|| format!("storing store {}", store.id))?;
    }
    Ok(chain.stores.len())
}

/// Issues a new random token for `store` (replacing the old one) and returns it; only its
/// hash is stored.
pub async fn issue_token(db: &Db, store: &StoreId) -> anyhow::Result<String> {
    let mut bytes = [0_u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("st_{}", hex::encode(bytes));
    if !db
        .set_store_token(store, &crate::http::hash_token(&token))
        .await?
    {
        anyhow::bail!("no store {store} in the registry; load the chain first");
    }
    Ok(token)
}
