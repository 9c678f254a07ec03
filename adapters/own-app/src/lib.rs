//! Channel own_app: the chain's own app / mini-program, and its simulator.
