//! The edge cache's decisions (RFC 9111 shared cache, RFC 5861 stale extensions, RFC 9211
//! Cache-Status). The Workers Cache API only stores bytes; everything it does not do (freshness,
//! validation, stale serving, variants, purge) is decided here and carried out by the glue.

pub mod bans;
pub mod control;
pub mod date;
pub mod key;
pub mod l1;
pub mod meta;
pub mod policy;
pub mod status;
pub mod stored;

pub use control::{CacheControl, EdgeDirectives};
pub use meta::{CacheMeta, Freshness};
pub use policy::{Cacheability, NoCacheReason};
pub use status::CacheOutcome;
