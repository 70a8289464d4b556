//! Image resizing requests (issue 5, in progress): the Cloudflare-compatible URL grammar with
//! its abuse guards ([`params`]) and output-format negotiation from `Accept` ([`negotiate`]).
//! Pure: the decode/resize/encode stage and the glue come next.

pub mod negotiate;
pub mod params;
