//! edgemeter: exact per-API-key usage metering from CloudFront access logs.
//!
//! A request line travels `source → format → key → lake → query`:
//! [`source`] lists and fetches log objects (S3 or a directory), [`format`]
//! decodes and parses them into Arrow rows, [`key`] finds, hashes and redacts
//! API keys, [`lake`] merges rows into the lake's Delta tables exactly once,
//! and [`query`] runs DataFusion SQL over it. [`ingest`] drives a run, its CPU
//! work bounded by [`cpu`].

pub mod alerts;
pub mod cli;
pub mod config;
pub mod cpu;
pub mod error;
pub mod export;
pub mod format;
pub mod fuzz;
pub mod ingest;
pub mod key;
pub mod lake;
pub mod metrics;
pub mod query;
pub mod report;
pub mod source;

pub use error::{Error, Result};
