//! The chain's menu as the database keeps it (`menu_items`, V5), against a real PostgreSQL
//! (a fresh database per test): replacing the menu in one transaction (new PLUs inserted,
//! changed ones updated, those no longer on it deleted), reading it and its PLUs back,
//! menus refused for a duplicate or empty PLU, and the registry version bumped by every
//! change to the menu, by statement trigger, as changes to stores bump it — and left alone
//! when the same menu is stored again.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::TestDb;
use crossdock_db::Db;
use crossdock_db::chain::{MenuEntry, MenuError, MenuKind, MenuReplaced};

fn entry(plu: &str, kind: MenuKind, usd: i64) -> MenuEntry {
    MenuEntry {
        plu: plu.into(),
        name: format!("{plu} name"),
        kind,
        category: (kind == MenuKind::Item).then(|| "pizza".to_owned()),
        prices: BTreeMap::from([("USD".to_owned(), usd), ("GBP".to_owned(), usd - 100)]),
    }
}

fn sample() -> Vec<MenuEntry> {
    vec![
        entry("PZ-MARG-L", MenuKind::Item, 1899),
        entry("DR-COLA-500", MenuKind::Item, 299),
        entry("MOD-TOP-XCHS", MenuKind::ModifierOption, 200),
    ]
}

async fn version(db: &Db) -> i64 {
    db.registry_version().await.expect("registry version")
}

async fn plus(db: &Db) -> BTreeSet<String> {
    db.menu_plus().await.expect("menu PLUs")
}

fn set(plus: &[&str]) -> BTreeSet<String> {
    plus.iter().map(|plu| plu.to_string()).collect()
}

#[tokio::test]
async fn a_menu_is_replaced_in_one_go_and_read_back() {
    let test = TestDb::new().await;
    let db = &test.db;
    assert_eq!(
        plus(db).await,
        BTreeSet::new(),
        "no menu before one is loaded"
    );

    let replaced = db.replace_menu(&sample()).await.expect("store the menu");
    assert_eq!(
        replaced,
        MenuReplaced {
            added: 3,
            ..MenuReplaced::default()
        }
    );
    assert_eq!(replaced.total(), 3);
    assert_eq!(
        plus(db).await,
        set(&["DR-COLA-500", "MOD-TOP-XCHS", "PZ-MARG-L"])
    );
    let mut expected = sample();
    expected.sort_by(|a, b| a.plu.cmp(&b.plu));
    assert_eq!(db.menu().await.expect("menu"), expected);

    // One price changed, one PLU gone, one new.
    let mut next = sample();
    next[0].prices.insert("USD".into(), 1999);
    next.remove(1);
    next.push(entry("MOD-CRUST-THIN", MenuKind::ModifierOption, 0));
    let replaced = db.replace_menu(&next).await.expect("replace the menu");
    assert_eq!(
        replaced,
        MenuReplaced {
            added: 1,
            changed: 1,
            removed: 1,
            unchanged: 1,
        }
    );
    assert_eq!(
        plus(db).await,
        set(&["MOD-CRUST-THIN", "MOD-TOP-XCHS", "PZ-MARG-L"])
    );
    let menu = db.menu().await.expect("menu");
    let pizza = menu
        .iter()
        .find(|e| e.plu == "PZ-MARG-L")
        .expect("the pizza");
    assert_eq!(pizza.prices["USD"], 1999);
    assert_eq!(pizza.category.as_deref(), Some("pizza"));
    let crust = menu
        .iter()
        .find(|e| e.plu == "MOD-CRUST-THIN")
        .expect("the crust");
    assert_eq!(
        (crust.kind, crust.category.as_deref()),
        (MenuKind::ModifierOption, None)
    );

    // An empty menu is no menu.
    let replaced = db.replace_menu(&[]).await.expect("clear the menu");
    assert_eq!(replaced.removed, 3);
    assert_eq!(replaced.total(), 0);
    assert_eq!(plus(db).await, BTreeSet::new());
    test.drop().await;
}

#[tokio::test]
async fn a_menu_with_a_duplicate_or_empty_plu_is_refused_and_changes_nothing() {
    let test = TestDb::new().await;
    let db = &test.db;
    db.replace_menu(&sample()).await.expect("store the menu");
    let before = version(db).await;

    let mut twice = sample();
    twice.push(entry("PZ-MARG-L", MenuKind::ModifierOption, 100));
    let error = db.replace_menu(&twice).await.expect_err("a duplicate");
    assert!(
        matches!(&error, MenuError::DuplicatePlu { plu } if plu == "PZ-MARG-L"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "menu PLU \"PZ-MARG-L\" is listed more than once; list each item and option once"
    );

    let mut blank = vec![entry("", MenuKind::Item, 100)];
    blank[0].name = "Mystery".into();
    let error = db.replace_menu(&blank).await.expect_err("an empty PLU");
    assert!(matches!(error, MenuError::EmptyPlu { .. }), "{error:?}");
    assert!(error.to_string().contains("\"Mystery\""), "{error}");

    assert_eq!(
        plus(db).await,
        set(&["DR-COLA-500", "MOD-TOP-XCHS", "PZ-MARG-L"])
    );
    assert_eq!(version(db).await, before, "nothing was written");
    test.drop().await;
}

#[tokio::test]
async fn a_change_to_the_menu_bumps_the_registry_version_and_the_same_menu_again_does_not() {
    let test = TestDb::new().await;
    let db = &test.db;
    let start = version(db).await;

    db.replace_menu(&sample()).await.expect("store the menu");
    let loaded = version(db).await;
    assert!(loaded > start, "a new menu rebuilds the registry");

    let replaced = db.replace_menu(&sample()).await.expect("store it again");
    assert_eq!(
        replaced,
        MenuReplaced {
            unchanged: 3,
            ..MenuReplaced::default()
        }
    );
    assert_eq!(version(db).await, loaded, "the same menu changes nothing");

    let mut renamed = sample();
    renamed[2].name = "Extra mozzarella".into();
    db.replace_menu(&renamed).await.expect("rename an option");
    let after_rename = version(db).await;
    assert!(after_rename > loaded, "a changed name counts");

    // Any statement on the table counts, as on `stores`: the trigger is the table's, not
    // the function's.
    let client = db.pool().get().await.expect("client");
    client
        .execute(
            "UPDATE menu_items SET prices = '{\"USD\": 1}' WHERE plu = 'DR-COLA-500'",
            &[],
        )
        .await
        .expect("update");
    let after_update = version(db).await;
    assert!(after_update > after_rename);
    client
        .batch_execute("TRUNCATE menu_items")
        .await
        .expect("truncate");
    assert!(version(db).await > after_update);
    assert_eq!(plus(db).await, BTreeSet::new());

    // The table refuses what the router could not use.
    for bad in [
        "INSERT INTO menu_items (plu, name, kind) VALUES ('X-1', 'x', 'combo')",
        "INSERT INTO menu_items (plu, name, kind) VALUES ('', 'x', 'item')",
    ] {
        assert!(client.execute(bad, &[]).await.is_err(), "{bad}");
    }
    drop(client);
    test.drop().await;
}
