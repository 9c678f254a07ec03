//! Loading the chain file into the store registry and the menu file into the chain's menu,
//! and store tokens.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::Path;

use anyhow::Context;
use crossdock_db::Db;
use crossdock_db::chain::{MenuEntry, MenuKind, MenuReplaced};
use crossdock_model::{ChainFile, Currency, StoreId};
use rand::RngCore;
use serde::Deserialize;

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

/// The chain's menu file (`fixtures/chain/menu.json`, described in
/// `fixtures/chain/README.md`): the items, each with modifier groups whose options may open
/// groups of their own.
#[derive(Debug, Clone, Deserialize)]
pub struct Menu {
    pub items: Vec<MenuItem>,
}

/// An item of the menu: what an order line names.
#[derive(Debug, Clone, Deserialize)]
pub struct MenuItem {
    /// The chain's item code (price look-up).
    pub plu: String,
    pub name: String,
    #[serde(default)]
    pub category: Option<String>,
    /// Currency code → price of one unit without modifiers, in integer minor units.
    pub prices: BTreeMap<String, i64>,
    #[serde(default)]
    pub modifier_groups: Vec<ModifierGroup>,
}

/// A group of options the customer picks between `min` and `max` of.
#[derive(Debug, Clone, Deserialize)]
pub struct ModifierGroup {
    pub id: String,
    pub name: String,
    pub min: u32,
    pub max: u32,
    pub options: Vec<MenuOption>,
}

/// An option of a modifier group: what an order's modifier names. It may open groups of
/// its own ("Half & half" opens the second half's toppings).
#[derive(Debug, Clone, Deserialize)]
pub struct MenuOption {
    pub plu: String,
    pub name: String,
    pub prices: BTreeMap<String, i64>,
    #[serde(default)]
    pub modifier_groups: Vec<ModifierGroup>,
}

impl Menu {
    /// Reads a menu file and checks it (see [`Menu::entries`]).
    pub fn read(path: &Path) -> anyhow::Result<Menu> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let menu: Menu =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        menu.entries()
            .with_context(|| format!("checking {}", path.display()))?;
        Ok(menu)
    }

    /// Every PLU of the menu once, items first, then options in the order they first
    /// appear. An option offered under several items (or groups) is one entry: it must be
    /// the same option (name, prices) everywhere. Refuses an empty PLU, a PLU that is both
    /// an item and an option or two items, a currency that is not an ISO 4217 code and a
    /// negative price, naming the PLU.
    pub fn entries(&self) -> anyhow::Result<Vec<MenuEntry>> {
        let mut entries: Vec<MenuEntry> = Vec::new();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for item in &self.items {
            let entry = entry(
                &item.plu,
                &item.name,
                MenuKind::Item,
                item.category.clone(),
                &item.prices,
            )?;
            if let Some(&first) = index.get(&item.plu) {
                anyhow::bail!(
                    "PLU {} is listed as two items ({:?} and {:?}); each item needs its own PLU",
                    item.plu,
                    entries[first].name,
                    item.name
                );
            }
            index.insert(item.plu.clone(), entries.len());
            entries.push(entry);
        }
        for item in &self.items {
            for group in &item.modifier_groups {
                options(group, &mut entries, &mut index)
                    .with_context(|| format!("item {}, group {}", item.plu, group.id))?;
            }
        }
        Ok(entries)
    }
}

fn entry(
    plu: &str,
    name: &str,
    kind: MenuKind,
    category: Option<String>,
    prices: &BTreeMap<String, i64>,
) -> anyhow::Result<MenuEntry> {
    if plu.trim().is_empty() || plu.trim() != plu {
        anyhow::bail!(
            "{name:?} has the PLU {plu:?}; a PLU must be non-empty, without leading or trailing spaces"
        );
    }
    for (currency, price) in prices {
        let parsed = Currency::parse(currency)
            .with_context(|| format!("PLU {plu}: price currency {currency:?}"))?;
        if parsed.code() != currency {
            anyhow::bail!(
                "PLU {plu}: price currency {currency:?}; write it as the ISO 4217 code {}",
                parsed.code()
            );
        }
        if *price < 0 {
            anyhow::bail!(
                "PLU {plu}: the {currency} price is {price}; prices are whole minor units, 0 or more"
            );
        }
    }
    Ok(MenuEntry {
        plu: plu.to_owned(),
        name: name.to_owned(),
        kind,
        category,
        prices: prices.clone(),
    })
}

/// Adds the options of `group`, and those of the groups they open, to `entries`.
fn options(
    group: &ModifierGroup,
    entries: &mut Vec<MenuEntry>,
    index: &mut BTreeMap<String, usize>,
) -> anyhow::Result<()> {
    for option in &group.options {
        let entry = entry(
            &option.plu,
            &option.name,
            MenuKind::ModifierOption,
            None,
            &option.prices,
        )?;
        match index.entry(option.plu.clone()) {
            Entry::Vacant(slot) => {
                slot.insert(entries.len());
                entries.push(entry);
            }
            Entry::Occupied(slot) => {
                let first = &entries[*slot.get()];
                if first.kind == MenuKind::Item {
                    anyhow::bail!(
                        "PLU {} is both the item {:?} and the option {:?}; give each its own PLU",
                        option.plu,
                        first.name,
                        option.name
                    );
                }
                if *first != entry {
                    anyhow::bail!(
                        "option PLU {} appears with different names or prices ({:?} {:?}, {:?} {:?}); \
                         the same PLU must be the same option wherever it appears",
                        option.plu,
                        first.name,
                        first.prices,
                        entry.name,
                        entry.prices
                    );
                }
            }
        }
        for nested in &option.modifier_groups {
            options(nested, entries, index)
                .with_context(|| format!("option {}, group {}", option.plu, nested.id))?;
        }
    }
    Ok(())
}

/// Replaces the chain's menu in the database with `menu`; returns what changed.
pub async fn load_menu(db: &Db, menu: &Menu) -> anyhow::Result<MenuReplaced> {
    let entries = menu.entries()?;
    db.replace_menu(&entries).await.context("storing the menu")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn menu(json: serde_json::Value) -> Menu {
        serde_json::from_value(json).expect("a menu")
    }

    fn option(plu: &str, usd: i64, groups: serde_json::Value) -> serde_json::Value {
        serde_json::json!({ "plu": plu, "name": plu, "prices": { "USD": usd }, "modifier_groups": groups })
    }

    fn group(id: &str, options: Vec<serde_json::Value>) -> serde_json::Value {
        serde_json::json!({ "id": id, "name": id, "min": 0, "max": 1, "options": options })
    }

    #[test]
    fn the_sample_menu_flattens_to_each_plu_once() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/chain/menu.json");
        let menu = Menu::read(&path).expect("the sample menu");
        let entries = menu.entries().expect("entries");
        let items = entries.iter().filter(|e| e.kind == MenuKind::Item).count();
        assert_eq!(items, menu.items.len());
        let mut plus: Vec<&str> = entries.iter().map(|e| e.plu.as_str()).collect();
        plus.sort_unstable();
        plus.dedup();
        assert_eq!(plus.len(), entries.len(), "each PLU once");
        // Options nested under an option ("Half & half" opens the second half) count.
        assert!(plus.contains(&"MOD-HALF-HALF") && plus.contains(&"MOD-HALF-PEPP"));
        let pizza = entries
            .iter()
            .find(|e| e.plu == "PZ-MARG-L")
            .expect("pizza");
        assert_eq!(pizza.category.as_deref(), Some("pizza"));
        assert_eq!(pizza.prices.get("USD"), Some(&1899));
    }

    #[test]
    fn an_option_repeated_the_same_is_one_entry_and_one_that_differs_is_refused() {
        let same = menu(serde_json::json!({ "items": [
            { "plu": "A", "name": "A", "prices": { "USD": 100 }, "modifier_groups": [
                group("g", vec![option("O", 10, serde_json::json!([
                    group("inner", vec![option("P", 5, serde_json::json!([]))])
                ]))])
            ]},
            { "plu": "B", "name": "B", "prices": { "USD": 100 }, "modifier_groups": [
                group("g", vec![option("O", 10, serde_json::json!([]))])
            ]},
        ]}));
        let plus: Vec<(String, MenuKind)> = same
            .entries()
            .expect("entries")
            .into_iter()
            .map(|e| (e.plu, e.kind))
            .collect();
        assert_eq!(
            plus,
            vec![
                ("A".to_owned(), MenuKind::Item),
                ("B".to_owned(), MenuKind::Item),
                ("O".to_owned(), MenuKind::ModifierOption),
                ("P".to_owned(), MenuKind::ModifierOption),
            ]
        );

        let differs = menu(serde_json::json!({ "items": [
            { "plu": "A", "name": "A", "prices": { "USD": 100 }, "modifier_groups": [
                group("g", vec![option("O", 10, serde_json::json!([]))])
            ]},
            { "plu": "B", "name": "B", "prices": { "USD": 100 }, "modifier_groups": [
                group("g", vec![option("O", 20, serde_json::json!([]))])
            ]},
        ]}));
        let error = format!("{:#}", differs.entries().expect_err("refused"));
        assert!(
            error.contains("item B, group g") && error.contains("option PLU O"),
            "{error}"
        );
    }

    #[test]
    fn bad_plus_and_prices_are_refused_naming_the_plu() {
        let cases = [
            (
                serde_json::json!({ "items": [
                    { "plu": "A", "name": "A", "prices": {} },
                    { "plu": "A", "name": "Again", "prices": {} },
                ]}),
                "PLU A is listed as two items",
            ),
            (
                serde_json::json!({ "items": [
                    { "plu": "A", "name": "A", "prices": {}, "modifier_groups": [
                        group("g", vec![option("A", 0, serde_json::json!([]))])
                    ]},
                ]}),
                "PLU A is both the item",
            ),
            (
                serde_json::json!({ "items": [ { "plu": " ", "name": "Blank", "prices": {} } ]}),
                "\"Blank\" has the PLU",
            ),
            (
                serde_json::json!({ "items": [ { "plu": "A", "name": "A", "prices": { "USD": -1 } } ]}),
                "PLU A: the USD price is -1",
            ),
            (
                serde_json::json!({ "items": [ { "plu": "A", "name": "A", "prices": { "dollars": 1 } } ]}),
                "PLU A: price currency \"dollars\"",
            ),
        ];
        for (json, expected) in cases {
            let error = format!("{:#}", menu(json).entries().expect_err(expected));
            assert!(
                error.contains(expected),
                "{error} does not say {expected:?}"
            );
        }
    }
}
