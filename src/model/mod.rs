//! Domain types and pure functions. *Invariant:* nothing in this module does IO.

pub mod entities;
pub mod import_format;
pub mod label_config;
pub mod storage;
pub mod task_item;
pub mod timestamp;
