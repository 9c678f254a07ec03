-- Crossdock schema, version 3: what HQ's dashboard reads (crates/db/src/hq.rs) — orders
-- found by the code the customer reads out or by the channel's order id, status pushes
-- parked for HQ, and orders the router rejected for want of a store — without scanning
-- the orders or every status push ever made. Indexes only; no data changes.

-- Search (`GET /api/v1/orders?q=`): the order's display code and its channel order id,
-- matched case-insensitively. The queries lower the search term and compare with exactly
-- these expressions, so each lookup is one index probe.
CREATE INDEX orders_by_display_code ON orders (lower(doc ->> 'display_code'));
CREATE INDEX orders_by_external_id_lower ON orders (lower(external_order_id));

-- Status pushes parked for HQ (the attention list, `/parked`, the summary): a handful of
-- rows among every push the hub has made, found without reading the others.
CREATE INDEX status_syncs_parked ON status_syncs (order_id) WHERE state = 'parked';

-- Orders rejected recently: the attention list shows those no store could take over the
-- last day. A rejected order is final, so `updated_at` is the time it was rejected.
CREATE INDEX orders_rejected_by_time ON orders (updated_at) WHERE status = 'rejected';
