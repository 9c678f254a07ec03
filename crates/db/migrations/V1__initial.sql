-- Crossdock schema, version 1.

-- The store registry. `profile` keeps the whole store record (address, hours, zone,
-- capacity) as loaded from the chain file; the columns are what queries filter on.
CREATE TABLE stores (
    id           text PRIMARY KEY,
    name         text NOT NULL,
    brand        text NOT NULL,
    city         text NOT NULL,
    timezone     text NOT NULL,
    currency     text NOT NULL,
    lat          double precision NOT NULL,
    lng          double precision NOT NULL,
    profile      jsonb NOT NULL,
    paused_until timestamptz,
    token_hash   bytea UNIQUE,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Each channel's id of a store.
CREATE TABLE channel_stores (
    channel          text NOT NULL,
    channel_store_id text NOT NULL,
    store_id         text NOT NULL REFERENCES stores (id),
    PRIMARY KEY (channel, channel_store_id)
);

-- Bumped by every change to the registry (stores' profiles, pauses, channel ids), so that
-- hubs rebuild their in-memory registry only when it changed. Token changes do not count.
CREATE TABLE registry_version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version   bigint NOT NULL
);
INSERT INTO registry_version (version) VALUES (0);

CREATE FUNCTION bump_registry_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE registry_version SET version = version + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER stores_changed
    AFTER INSERT OR DELETE OR UPDATE OF name, brand, city, timezone, currency, lat, lng, profile, paused_until
    ON stores FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_version();
CREATE TRIGGER channel_stores_changed
    AFTER INSERT OR DELETE OR UPDATE ON channel_stores
    FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_version();

-- Orders: one row per (channel, channel order id), ever.
CREATE TABLE orders (
    id                uuid PRIMARY KEY,
    channel           text NOT NULL,
    external_order_id text NOT NULL,
    store_id          text REFERENCES stores (id),
    status            text NOT NULL,
    doc               jsonb NOT NULL,
    flags             jsonb NOT NULL DEFAULT '[]',
    received_at       timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    UNIQUE (channel, external_order_id)
);
CREATE INDEX orders_by_store ON orders (store_id, received_at DESC);
CREATE INDEX orders_by_received ON orders (received_at DESC);

-- Every change of an order. `id` orders them: status changes of one order are serialized
-- by the order's row lock, so their ids follow commit order.
CREATE TABLE order_events (
    id       bigserial PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id),
    at       timestamptz NOT NULL,
    source   text NOT NULL,
    kind     text NOT NULL,
    status   text,
    reason   text,
    data     jsonb
);
CREATE INDEX order_events_by_order ON order_events (order_id, id);

-- Every platform request the hub accepted, raw, for audit; the key makes replays no-ops.
CREATE TABLE inbox (
    channel     text NOT NULL,
    dedupe_key  text NOT NULL,
    received_at timestamptz NOT NULL,
    kind        text NOT NULL,
    order_id    uuid,
    headers     jsonb NOT NULL,
    body        bytea NOT NULL,
    PRIMARY KEY (channel, dedupe_key)
);

-- Requests the hub refused, raw, with the reason.
CREATE TABLE quarantine (
    id          bigserial PRIMARY KEY,
    channel     text NOT NULL,
    received_at timestamptz NOT NULL,
    error_kind  text NOT NULL,
    reason      text NOT NULL,
    headers     jsonb NOT NULL,
    body        bytea NOT NULL
);
CREATE INDEX quarantine_by_channel ON quarantine (channel, received_at DESC);

-- Messages committed with their cause and not yet confirmed by the broker. A message the
-- broker refused (unroutable, or not carriable) is set aside with the reason, for HQ, so
-- that it never blocks the messages behind it.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    routing_key text NOT NULL,
    kind        text NOT NULL,
    message_id  text NOT NULL,
    body        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    refused_at  timestamptz,
    refusal     text
);
CREATE INDEX outbox_pending ON outbox (id) WHERE refused_at IS NULL;

-- An order handed to its store's queue consumer: once, however often the queue delivers.
CREATE TABLE store_deliveries (
    order_id     uuid PRIMARY KEY REFERENCES orders (id),
    store_id     text NOT NULL,
    delivered_at timestamptz NOT NULL,
    handovers    integer NOT NULL DEFAULT 1
);

-- Status changes to push to the order's channel, in `event_id` order per order.
CREATE TABLE status_syncs (
    order_id        uuid NOT NULL REFERENCES orders (id),
    event_id        bigint NOT NULL REFERENCES order_events (id),
    action          jsonb NOT NULL,
    from_status     text NOT NULL,
    changed_at      timestamptz NOT NULL,
    state           text NOT NULL CHECK (state IN ('pending', 'delivered', 'skipped', 'parked')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, event_id)
);
CREATE INDEX status_syncs_due ON status_syncs (next_attempt_at) WHERE state = 'pending';

-- A platform's cancellation of an order the hub has not seen: a late create stays cancelled.
CREATE TABLE cancellations (
    channel           text NOT NULL,
    external_order_id text NOT NULL,
    at                timestamptz NOT NULL,
    reason            text,
    PRIMARY KEY (channel, external_order_id)
);
