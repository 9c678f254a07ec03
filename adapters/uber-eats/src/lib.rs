//! Channel uber_eats: Uber Eats Marketplace (notify then fetch), and its simulator.
