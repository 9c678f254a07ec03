-- Crossdock schema, version 7: a status sync that answers a platform's offer (the change
-- out of `received`) carries the platform's acceptance deadline, past which the platform
-- drops the order. The sync sweeper pushes such answers ahead of every other due sync of
-- their channel, soonest deadline first, from their own small index
-- (crates/db/src/sync.rs, `due_syncs`).
ALTER TABLE status_syncs ADD COLUMN due_by timestamptz;
UPDATE status_syncs s SET due_by = o.accept_by
    FROM orders o
    WHERE o.id = s.order_id AND s.from_status = 'received' AND o.accept_by IS NOT NULL;
CREATE INDEX status_syncs_due_answers ON status_syncs (channel, due_by)
    WHERE state = 'pending' AND due_by IS NOT NULL;
-- The sweeper's first index, on next_attempt_at alone, is no longer read by any query, but
-- the planner preferred it for the per-channel read once thousands of syncs were pending
-- (seen in a long fault run: 230 ms a read, four reads a second, against 13 ms without
-- it), and every write of a sync paid for it.
DROP INDEX status_syncs_due;
