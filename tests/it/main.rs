//! Integration tests: one binary (links once). They start what they need
//! themselves: an S3-compatible server (s3s + s3s-fs) on loopback, temp lakes.

mod analytics;
mod ballista;
mod billing;
mod cli;
mod config_file;
mod delta;
mod exactly_once;
mod first_use;
mod formats;
mod hardening;
mod large_objects;
mod logs;
mod meter_billing;
mod meter_limits;
mod meters;
mod meters_rollup;
mod pipeline;
mod report;
mod rollup;
mod s3;
mod s3_faults;
mod scheduled;
mod schema;
mod secrets;
mod serve;
mod serve_pg;
mod shards;
mod sql;
mod sqs;
mod traps;
mod webhook;
