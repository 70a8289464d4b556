//! Native integration tests: one binary, shared harness (see README "Tests").

mod harness;
mod origin;
