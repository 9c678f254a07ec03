-- The store console's board (crates/db/src/board.rs): a store's unfinished orders, found
-- without walking its history. Finished orders it shows (recent ones) are found through
-- orders_by_store (store_id, received_at). Keep the list equal to `Status::is_final`; a
-- unit test of board.rs compares them.
CREATE INDEX orders_unfinished_by_store ON orders (store_id)
    WHERE status NOT IN ('delivered', 'completed', 'rejected', 'cancelled', 'failed');
