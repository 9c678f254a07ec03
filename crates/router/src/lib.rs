//! Store assignment: the in-memory store registry with a spatial index, and the routing decision.
