//! usagenorm's core: plain Rust, no Python. It reads providers' usage exports into the
//! canonical table (`normalize`), splits usage into time buckets (`aggregate`) and prices it
//! with rate cards (`pricing`). `py` (behind the `python` feature) is the only binding layer.

mod aggregate;
mod cancel;
mod dedupe;
mod error;
mod hash;
mod json;
mod money;
mod normalize;
mod pricing;
pub mod providers;
mod schema;
pub mod spec;
mod time;

// The library's API: normalize, aggregate, price, the canonical batch they exchange, and the
// registry of formats (Rust ones and format files). Everything else is private to the crate.
pub use aggregate::{
    aggregate, AggregateSpec, Aggregated, Aggregator, ExactSum, GroupColumn, KeyColumn, Nullable, UsageColumns,
};
pub use cancel::{run as run_cancellable, Phase, Snapshot, Token as CancelToken};
pub use dedupe::{record_digests, Conflict, Digest};
pub use error::{Error, Result};
#[cfg(feature = "fuzzing")]
pub use json::assert_checked_agrees_with_serde;
pub use json::{ErrorKind, FieldError, FieldResult, RawObject};
pub use money::Decimal;
pub use normalize::{normalize, ErrorMode, Input, NormalizeOptions, NormalizeOutput, Rejection, SourceStats};
pub use pricing::{price, Outcome, Priced, PricingInput, PricingOptions, RateCard, MATCH_COLUMNS, OUTCOMES};
pub use schema::{CanonicalBatch, ColumnType, Kept, Row, Tags, COLUMNS};
pub use time::Every;

#[cfg(feature = "python")]
mod py;
