//! Status sync: pushes every status change to its channel, in order per order, rate-limited, retried, parked.
