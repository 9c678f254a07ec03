-- Crossdock schema, version 8: the relay claims outbox rows through a function that reads
-- `outbox_pending` by a plain index scan. Rows are inserted and deleted within
-- milliseconds, so the index holds mostly entries of deleted rows until a vacuum. A plain
-- index scan marks those dead as it passes them, and the next claim skips them; a bitmap
-- scan, which the planner chose whenever the table's statistics said it was nearly empty,
-- marks nothing, so every claim read every dead entry again and sorted the rest (seen in
-- the benchmark: 10,500 index entries read per claim on average, 63 million in a 40 s run,
-- each claim slower than the last until a vacuum). The claim also makes its round's
-- commit asynchronous.
CREATE FUNCTION claim_outbox(batch bigint)
RETURNS TABLE (id bigint, routing_key text, kind text, message_id text, body jsonb)
LANGUAGE sql
SET enable_indexscan = on
SET enable_bitmapscan = off
SET enable_seqscan = off
AS $$
    -- The round's delete commits without waiting for its WAL to reach disk: lost in a
    -- crash, its rows are published again, with the same message ids, to consumers that
    -- are idempotent; the order's own transactions stay synchronous.
    SELECT set_config('synchronous_commit', 'off', true);
    SELECT o.id, o.routing_key, o.kind, o.message_id, o.body
      FROM outbox o
     WHERE o.refused_at IS NULL
     ORDER BY o.id
     LIMIT batch
       FOR UPDATE SKIP LOCKED
$$;
