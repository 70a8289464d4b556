//! edgelayer: an edge performance layer.
//!
//! The crate has three layers, gated by target so the compiler keeps them apart:
//! - the **pure core** (every public module here): plain Rust that decides things (config,
//!   proxy header policy, conditional requests, metrics text). It reads no clock and does no
//!   I/O, so it is unit-tested natively with `cargo test`;
//! - `edge` (wasm32 only): the Cloudflare Worker glue that moves bytes between the platform and
//!   the core;
//! - [`origin`] (native only): the demo origin server, an axum app.
#![deny(rustdoc::broken_intra_doc_links)]
// Tests unwrap freely; the request path never does (`cargo clippy --lib` checks it without tests).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod admin;
pub mod cache;
pub mod compress;
pub mod conditional;
pub mod error;
pub mod headers;
pub mod html;
pub mod image;
pub mod config;
pub mod metrics;
pub mod pipeline;
pub mod pool;
pub mod proxy;
pub mod qvalue;
pub mod ratelimit;
pub mod rules;
pub mod trace;
pub mod transform;

#[cfg(test)]
mod test_support;

#[cfg(target_arch = "wasm32")]
mod edge;

#[cfg(not(target_arch = "wasm32"))]
pub mod check;
#[cfg(not(target_arch = "wasm32"))]
pub mod origin;
