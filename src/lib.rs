//! Signet: a signed-image rendering server. A customer's backend signs a
//! URL naming an SVG template and the text to put into it; Signet checks
//! the signature, renders the PNG, caches it and serves it. An image served
//! from a valid signed URL is authentic.
//!
//! # Layout
//!
//! - [`request`]: the raw path and query turned into typed ids (pure).
//! - [`signing`]: payload, HMAC-SHA256, rotation-aware verification.
//! - [`signer`]: the rules applied before signing, and the signed URL
//!   (`signet sign`, `/v1/sign`).
//! - [`modifications`]: lenient base64, strict JSON, the text rules.
//! - [`options`]: signed rendering options (size, quality, expiry).
//! - [`template`]: template files, their versions, splicing text in.
//! - [`fit`]: fitting text into a box, within a bound on the work.
//! - [`render`]: safe parsing, the pixel bound, rasterising, the PDF.
//! - [`fonts`]: loading fonts, their coverage, the fallback order.
//! - [`images`]: every raster image drawn: read, strictly decoded, digested.
//! - [`budget`]: the one memory budget of renders, builds and decodes.
//! - [`secret`]: signing secrets that never show in debug output.
//! - [`shaping`]: the glyphs a line is drawn with, for checking shaping.
//! - [`encode`]: PNG encoding (RGB for opaque canvases, chosen level).
//! - [`bands`]: PNG written as independently compressed bands of rows.
//! - [`incremental`]: a miss paints and compresses only what it changed.
//! - [`pool`]: bounded render slots on the blocking pool, with a deadline.
//! - [`deadline`]: the running job's deadline, checked by the work it bounds.
//! - [`cache`]: rendered bytes, coalesced misses, remembered failures.
//! - [`http`]: router, handlers, the one error-to-response mapping, serving.
//! - [`record`]: certificates as `/c/` images draw them: the seam to the
//!   registry, status stamps, the social card.
//! - [`registry`]: the certificate registry under `/v1` (accounts, API
//!   keys, audit log), on SQLite or PostgreSQL.
//! - [`config`]: defaults, TOML file, `SIGNET_*` overrides.
//! - [`cli`], [`sign`] and [`explain`]: the `signet` command.
//!
//! See `ARCHITECTURE.md` for the path of a request and the invariants.

pub mod bands;
pub mod budget;
pub mod cache;
pub mod cli;
pub mod config;
pub mod deadline;
pub mod encode;
pub mod explain;
pub mod fit;
pub mod fonts;
pub mod http;
pub mod images;
pub mod incremental;
pub mod modifications;
pub mod options;
pub mod pool;
pub mod record;
pub mod registry;
pub mod render;
pub mod request;
pub mod secret;
pub mod shaping;
pub mod sign;
pub mod signer;
pub mod signing;
pub mod template;
