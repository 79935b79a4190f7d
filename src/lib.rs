//! labelport: a Label Studio-compatible labeling server. See ARCHITECTURE.md for the map.
//!
//! Layers, each depending only on those below it:
//! `server` (wiring, CLI) -> `web` (pages) and `api` (HTTP) -> `sync` (jobs, export, URL resolution) and `importer`
//! -> `db` (SQL) and `storage` (one trait, every backend) -> `model` (domain types, pure functions).
//! `wire` holds Label Studio's JSON for `api` and the export writer.

pub mod api;
pub mod bench;
pub mod bench_sync;
pub mod config;
pub mod db;
pub mod importer;
pub mod model;
pub mod server;
pub mod storage;
pub mod sync;
pub mod web;
pub mod wire;
