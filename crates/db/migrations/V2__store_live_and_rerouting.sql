-- Crossdock schema, version 2: what changes about a store from minute to minute (pause,
-- items it cannot make, the orders it is working), and orders that a store declined or
-- let time out, which go back to the router or to HQ's attention.

-- A store's live state. Hubs keep a copy in memory: each reads the rows changed since the
-- oldest transaction that was still running at its previous read (`changed_xid`, the
-- transaction that last wrote the row), so no change is missed and the table is not
-- re-read whole. `version` counts the row's changes: a hub never replaces what it holds
-- with an older version of the row (a read that raced a newer change).
CREATE TABLE store_live (
    store_id     text PRIMARY KEY REFERENCES stores (id),
    paused_until timestamptz,
    pause_reason text,
    -- Item codes (PLUs) the store cannot make now ("86").
    unavailable  text[] NOT NULL DEFAULT '{}',
    -- Orders assigned to the store that its kitchen is working (see `occupies_kitchen`).
    active       integer NOT NULL DEFAULT 0 CHECK (active >= 0),
    version      bigint NOT NULL DEFAULT 0,
    changed_xid  xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX store_live_changed ON store_live (changed_xid);

CREATE FUNCTION store_live_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.changed_xid := pg_current_xact_id();
    NEW.version := OLD.version + 1;
    RETURN NEW;
END
$$;
CREATE TRIGGER store_live_touched BEFORE UPDATE ON store_live
    FOR EACH ROW EXECUTE FUNCTION store_live_touch();

CREATE FUNCTION store_live_create() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO store_live (store_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER stores_live_row AFTER INSERT ON stores
    FOR EACH ROW EXECUTE FUNCTION store_live_create();

-- Whether an order in `status` takes a place in its store's kitchen: from assignment until
-- it is ready. Pinned to `Status::occupies_kitchen` by a test.
CREATE FUNCTION occupies_kitchen(status text) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS $$ SELECT status IN ('received', 'accepted', 'preparing') $$;

-- Keeps `store_live.active` equal to the count of the store's orders that occupy its
-- kitchen, in the transaction that changes an order's store or status.
CREATE FUNCTION count_active() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    before text := NULL;
    after  text := NULL;
BEGIN
    IF TG_OP = 'UPDATE' AND occupies_kitchen(OLD.status) THEN
        before := OLD.store_id;
    END IF;
    IF occupies_kitchen(NEW.status) THEN
        after := NEW.store_id;
    END IF;
    IF before IS DISTINCT FROM after THEN
        IF before IS NOT NULL THEN
            UPDATE store_live SET active = active - 1 WHERE store_id = before;
        END IF;
        IF after IS NOT NULL THEN
            UPDATE store_live SET active = active + 1 WHERE store_id = after;
        END IF;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER orders_count_active_insert AFTER INSERT ON orders
    FOR EACH ROW WHEN (NEW.store_id IS NOT NULL) EXECUTE FUNCTION count_active();
CREATE TRIGGER orders_count_active_update AFTER UPDATE OF status, store_id ON orders
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.store_id IS DISTINCT FROM NEW.store_id)
    EXECUTE FUNCTION count_active();

-- The pause moves from the store's profile row to its live state.
INSERT INTO store_live (store_id, paused_until) SELECT id, paused_until FROM stores;
UPDATE store_live SET active = counted.n
    FROM (SELECT store_id, count(*) AS n FROM orders
          WHERE store_id IS NOT NULL AND occupies_kitchen(status) GROUP BY store_id) AS counted
    WHERE store_live.store_id = counted.store_id;
DROP TRIGGER stores_changed ON stores;
ALTER TABLE stores DROP COLUMN paused_until;
CREATE TRIGGER stores_changed
    AFTER INSERT OR DELETE OR UPDATE OF name, brand, city, timezone, currency, lat, lng, profile
    ON stores FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_version();

-- Orders a store declined or let time out, and those waiting for HQ.
ALTER TABLE orders
    -- Stores that rejected the order or did not accept it in time, in that order.
    ADD COLUMN declined_by     text[] NOT NULL DEFAULT '{}',
    -- Why the order waits for HQ (a store the channel named declined it), and since when.
    ADD COLUMN attention       text,
    ADD COLUMN attention_since timestamptz,
    -- When the assigned store's time to accept runs out.
    ADD COLUMN store_accept_by timestamptz,
    -- The platform's acceptance deadline (the document's `fulfillment.accept_by`).
    ADD COLUMN accept_by       timestamptz;
UPDATE orders SET accept_by = (doc -> 'fulfillment' ->> 'accept_by')::timestamptz
    WHERE status = 'received';
CREATE INDEX orders_store_accept_due ON orders (store_accept_by)
    WHERE status = 'received' AND store_accept_by IS NOT NULL;
CREATE INDEX orders_platform_accept_due ON orders (accept_by)
    WHERE status = 'received' AND accept_by IS NOT NULL;
CREATE INDEX orders_attention ON orders (attention_since) WHERE attention IS NOT NULL;

-- An order may be handed to more than one store when one declines it.
ALTER TABLE store_deliveries DROP CONSTRAINT store_deliveries_pkey;
ALTER TABLE store_deliveries ADD PRIMARY KEY (order_id, store_id);
