//! Native integration tests: one binary, shared harness (see README "Tests").
#![allow(clippy::unwrap_used)] // test and bench code: a failed unwrap is a failed run

mod config;
mod harness;
mod image;
mod minify;
mod origin;
mod tree;
