//! Integration tests: the real server, started in-process on 127.0.0.1:0, spoken to over HTTP.
//! Every test runs on a fresh SQLite database and, when `LABELPORT_TEST_POSTGRES` is set, on a
//! fresh PostgreSQL database too.

mod harness;

mod annotations;
mod auth;
mod azure;
mod conformance;
mod export;
mod gcs;
mod import;
mod import_errors;
mod isolation;
mod kill;
mod local_files;
mod projects;
mod redis;
mod s3;
mod storage_helpers;
mod tasks;
mod web;
