//! labelport: a Label Studio-compatible labeling server. See ARCHITECTURE.md for the map.
//!
//! Layers, each depending only on those below it:
//! `server` (wiring, CLI) -> `api` (HTTP, Label Studio JSON) -> `importer` -> `db` (SQL) -> `model`
//! (domain types and pure functions).

pub mod api;
pub mod bench;
pub mod config;
pub mod db;
pub mod importer;
pub mod model;
pub mod server;
