-- Crossdock schema, version 5: the chain's menu (crates/db/src/chain.rs). One row per PLU
-- the chain sells: its items and the options of their modifier groups, nested or not,
-- flattened (an option offered under several items is one row). The router refuses an
-- order naming a PLU that is not here; with no rows, items are not checked.
CREATE TABLE menu_items (
    plu        text PRIMARY KEY CHECK (plu <> ''),
    name       text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('item', 'option')),
    -- The item's category (`pizza`, `side`, …); options have none.
    category   text,
    -- Currency code → price of one unit in integer minor units (`{"USD": 1899}`).
    prices     jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The menu is part of what hubs hold in memory: a change rebuilds their registry, as a
-- change to the stores does.
CREATE TRIGGER menu_items_changed
    AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON menu_items
    FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_version();
