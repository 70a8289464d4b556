//! Native integration tests: one binary, shared harness (see README "Tests").

mod config;
mod harness;
mod image;
mod minify;
mod origin;
mod tree;
