//! Cooperative cancellation: the binding sets the flag when the user presses Ctrl-C, and the
//! long loops (per source, per chunk of records, per block of rows) stop at their next check.
//! Process-wide, like Ctrl-C itself.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

static CANCELLED: AtomicBool = AtomicBool::new(false);

/// Asks every running call to stop.
// The binding asks for cancellation (a Ctrl-C in Python); the core only checks.
#[cfg_attr(not(feature = "python"), allow(dead_code))]
pub fn request() {
    CANCELLED.store(true, Ordering::Relaxed);
}

/// Clears a request (before a new call starts).
#[cfg_attr(not(feature = "python"), allow(dead_code))]
pub fn reset() {
    CANCELLED.store(false, Ordering::Relaxed);
}

/// `Err(Error::Cancelled)` once a stop was requested.
pub fn check() -> Result<()> {
    if CANCELLED.load(Ordering::Relaxed) {
        Err(Error::Cancelled)
    } else {
        Ok(())
    }
}
