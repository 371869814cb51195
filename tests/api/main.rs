//! Integration tests: each starts the real server on a loopback port and
//! talks HTTP to it.

mod caching;
mod cli;
mod clients;
mod errors;
mod fitting_limits;
mod guards;
mod helpers;
mod incremental;
mod lifecycle;
mod reference;
mod reference_client;
mod rendering;
mod templates;
