//! usagenorm's core: plain Rust, no Python. It reads providers' usage exports into the
//! canonical table (`normalize`), splits usage into time buckets (`aggregate`) and prices it
//! with rate cards (`pricing`). `py` (behind the `python` feature) is the only binding layer.

pub mod aggregate;
pub mod cancel;
pub mod dedupe;
pub mod error;
pub mod hash;
pub mod json;
pub mod money;
pub mod normalize;
pub mod pricing;
pub mod providers;
pub mod schema;
pub mod spec;
pub mod time;

pub use error::{Error, Result};
pub use normalize::{normalize, ErrorMode, Input, NormalizeOptions, NormalizeOutput, Rejection, SourceStats};

#[cfg(feature = "python")]
mod py;
