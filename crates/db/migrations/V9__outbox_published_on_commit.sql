-- Crossdock schema, version 9: a process that can publish hands its outbox rows to its
-- own publisher right after the commit that wrote them (no relay round in between), and
-- marks them `direct` when it inserts them. The relay claims a direct row only once it is
-- older than the relay's grace: by then its committer has published and deleted it, or
-- died or lost the broker trying. Rows written by a process without a publisher are
-- claimed at once, as before.
ALTER TABLE outbox ADD COLUMN direct boolean NOT NULL DEFAULT false;

DROP FUNCTION claim_outbox(bigint);

CREATE FUNCTION claim_outbox(batch bigint, grace interval)
RETURNS TABLE (id bigint, routing_key text, kind text, message_id text, body jsonb)
LANGUAGE sql
SET enable_indexscan = on
SET enable_bitmapscan = off
SET enable_seqscan = off
AS $$
    -- As in version 8: a plain index scan, and the round's delete committed without
    -- waiting for its WAL to reach disk (lost in a crash, its rows are published again,
    -- with the same message ids, to consumers that are idempotent).
    SELECT set_config('synchronous_commit', 'off', true);
    SELECT o.id, o.routing_key, o.kind, o.message_id, o.body
      FROM outbox o
     WHERE o.refused_at IS NULL
       AND (NOT o.direct OR o.created_at < now() - grace)
     ORDER BY o.id
     LIMIT batch
       FOR UPDATE SKIP LOCKED
$$;

-- Deletes the rows a committer's publisher saw confirmed, in one statement whose commit
-- does not wait for its WAL to reach disk (lost in a crash, the rows are published again
-- by the relay, with the same message ids).
CREATE FUNCTION forget_outbox(ids bigint[])
RETURNS bigint
LANGUAGE sql
AS $$
    SELECT set_config('synchronous_commit', 'off', true);
    WITH gone AS (DELETE FROM outbox WHERE id = ANY(ids) RETURNING 1)
    SELECT count(*) FROM gone;
$$;
