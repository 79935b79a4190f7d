//! The `labelport` binary.
#![allow(dead_code)]
mod db;
mod model;
fn main() {}
