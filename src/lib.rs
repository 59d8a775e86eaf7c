//! edgemeter: exact per-API-key usage metering from CloudFront access logs.
//!
//! A request line travels `source → format → key → lake → query`:
//! `source` lists and fetches log objects (S3 or a directory), [`format`]
//! decodes and parses them into Arrow rows, `key` finds, hashes and redacts
//! API keys, [`lake`] merges rows into the lake's Delta tables exactly once,
//! and [`query`] runs DataFusion SQL over it. [`ingest`] drives a run, its CPU
//! work bounded by [`cpu`].
//!
//! # Layers
//!
//! Modules are stacked in layers; a module imports (`use crate::…` or a
//! `crate::…` path) only modules of its own layer or of the layers below, and
//! the modules of a layer marked *independent* do not import each other.
//! Nothing reaches up, so a change to a lower layer is the only kind that can
//! break a higher one. The test in `layering.rs` holds every file to this
//! map. From the bottom:
//!
//! 1. foundation: `error`, [`cpu`], [`memory`] (the allocator's options).
//! 2. shared model, what several layers need and none of them owns:
//!    [`schema`] (the field catalogue and the lake's Arrow schema), `time`
//!    (instants, UTC hours, ranges, billing periods, zones), `aws` (S3
//!    settings and aws-config), `object_names` (the hour a log object is
//!    named for).
//! 3. `source` and `key`, independent: where log objects come from;
//!    finding, hashing and redacting keys. `key` sits below `format` although
//!    a key is found after a line is split: the parser calls the key finder
//!    while it walks a line, so that the line's fields are read once.
//! 4. [`format`]: what the bytes of a log object mean.
//! 5. [`lake`]: the Delta tables, their layout ([`lake::layout`], every path
//!    below the root) and their commits.
//! 6. [`query`]: DataFusion over the lake.
//! 7. `billing`: plans, prices, per-key usage.
//! 8. commands, independent: [`ingest`], `export`, `alerts` (`check`),
//!    `report`.
//! 9. the top: `config`, [`commands`] (one module per command of the
//!    command line, each with one entry function), `render` (the text
//!    printed for people), [`cli`] (parsing, dispatch, exit status),
//!    `metrics`, [`fuzz`], `serve` (the HTTP server) (and the binary,
//!    `main.rs`).
//!
//! Items are `pub(crate)` unless `main.rs`, `tests/` or `fuzz/` reach them
//! through the library (`unreachable_pub` warns of any other `pub`), so the
//! compiler reports code nothing uses.

#![warn(unreachable_pub)]

pub(crate) mod alerts;
pub(crate) mod aws;
pub(crate) mod billing;
pub mod cli;
pub mod commands;
pub(crate) mod config;
pub mod cpu;
pub(crate) mod error;
pub mod export;
pub mod format;
pub mod fuzz;
pub mod ingest;
pub(crate) mod key;
pub mod lake;
#[cfg(test)]
mod layering;
pub mod memory;
pub(crate) mod metrics;
pub(crate) mod object_names;
pub mod query;
pub(crate) mod render;
pub(crate) mod report;
pub mod schema;
pub(crate) mod serve;
pub(crate) mod source;
pub mod time;

pub use error::{Error, Result};
