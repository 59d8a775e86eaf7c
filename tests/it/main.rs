//! Integration tests: one binary (links once). They start what they need
//! themselves: an S3-compatible server (s3s + s3s-fs) on loopback, temp lakes.

mod logs;
mod pipeline;
mod s3;
mod schema;
