-- Crossdock schema, version 6: status syncs carry their order's channel, so that the sync
-- sweeper can take the longest-due syncs of each channel from an index (a few per
-- channel) instead of ranking every due row: in a backlog of thousands that ranking cost
-- half a second a query, four times a second (crates/db/src/sync.rs, `due_syncs`).
ALTER TABLE status_syncs ADD COLUMN channel text;
UPDATE status_syncs s SET channel = o.channel FROM orders o WHERE o.id = s.order_id;
ALTER TABLE status_syncs ALTER COLUMN channel SET NOT NULL;
CREATE INDEX status_syncs_due_by_channel ON status_syncs (channel, next_attempt_at)
    WHERE state = 'pending';
