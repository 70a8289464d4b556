//! The request lifecycle as pure steps. Each takes `http` types (and `now` where time matters)
//! and returns a value the glue (`src/edge`) matches on; none does I/O.
//!
//! ```text
//! route ─▶ Endpoint (health, purge, admin) | Refuse | Redirect | Serve under a rule:
//!   Pass  ─▶ upstream(Pass) ─▶ origin ─▶ fill::plan(Pass) ─────────────────────────────┐
//!   Range ─▶ the stored identity copy, cut ─▶ lookup::serve_stored | else Pass          │
//!   Cached ─▶ L1 / Cache API ─▶ lookup::phase:                                          │
//!       Hit ─▶ lookup::serve_stored                                                     │
//!       ServeAndRefresh ─▶ serve_stored(UPDATING) + background: upstream(Fill+validators)│
//!       Revalidate ─▶ upstream(Fill+validators) ─▶ lookup::after_revalidation:          │
//!           UseStale | NotModified (refresh_after_304) | Replace (fill::plan) | Fail    │
//!       miss ─▶ collapse ─▶ upstream(Fill) ─▶ origin ─▶ fill::plan(Cache) ──────────────┤
//!   Image ─▶ the same lookup; a miss: source via upstream(Fill), image::process, fill   │
//! finish ◀──────────────────────────────────────────────────────────────────────────────┘
//!   security and rate-limit headers, nonce, Server-Timing, request id, metrics record
//! ```

pub mod fill;
pub mod finish;
pub mod lookup;
pub mod route;
pub mod upstream;
