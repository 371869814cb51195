//! Integration tests: each starts the real server on a loopback port and
//! talks HTTP to it.

mod caching;
mod cli;
mod clients;
mod connections;
mod error_layers;
mod error_text;
mod errors;
mod fitting_limits;
mod fuzz;
mod fuzz_cases;
mod guards;
mod helpers;
mod images;
mod incremental;
mod isolation;
mod lifecycle;
mod memory;
mod payload;
mod reference;
mod reference_client;
mod registry_certificate_changes;
mod registry_certificate_lists;
mod registry_certificates;
mod registry_durability;
mod registry_errors;
mod registry_helpers;
mod registry_images;
mod registry_keys;
mod registry_limits;
mod rendering;
mod shaping;
mod shaping_cases;
mod shaping_fit;
mod templates;
mod wire;
