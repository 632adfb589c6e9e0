//! Cooperative cancellation, per call, and the thread pool each call runs on.
//!
//! A call of the binding runs on a thread pool of its own ([`run`]) whose threads know the
//! call's [`Token`]; the long loops (per source, per chunk of records, per block of rows) stop at
//! their next [`check`] once the token is cancelled. So a Ctrl-C meant for one call never stops,
//! or is cleared by, a call running at the same time in another thread. A pool of its own per
//! call is also what makes the library work in a forked child (Celery prefork, Airflow's
//! LocalExecutor): a process-wide pool's threads do not survive `fork()`, and work handed to
//! them there would wait forever. Its cost is starting the threads, tens of microseconds.
//! Outside [`run`] (plain Rust callers, the tests) nothing is ever cancelled and Rayon's global
//! pool does the parallel work.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

/// A call's cancellation flag.
#[derive(Clone, Default)]
pub struct Token(Arc<AtomicBool>);

impl Token {
    pub fn new() -> Token {
        Token::default()
    }

    /// Asks the call to stop at its next check.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Runs `work` on a new thread pool (its size: `RAYON_NUM_THREADS`, else the machine's cores)
/// whose threads check `token`; the parallel work inside runs on that pool.
pub fn run<T: Send>(token: &Token, work: impl FnOnce() -> T + Send) -> Result<T> {
    let flag = token.0.clone();
    let pool = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("usagenorm-{i}"))
        .start_handler(move |_| CURRENT.with(|c| *c.borrow_mut() = Some(flag.clone())))
        .build()
        .map_err(|e| Error::InvalidArgument(format!("could not start worker threads: {e}")))?;
    Ok(pool.install(work))
}

/// `Err(Error::Cancelled)` once the running call's token is cancelled.
pub fn check() -> Result<()> {
    let cancelled = CURRENT.with(|c| c.borrow().as_ref().is_some_and(|f| f.load(Ordering::Relaxed)));
    if cancelled {
        Err(Error::Cancelled)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_stops_its_own_call_only() {
        let (a, b) = (Token::new(), Token::new());
        a.cancel();
        let seen_a = run(&a, || rayon::join(check, check)).unwrap();
        let seen_b = run(&b, || rayon::join(check, check)).unwrap();
        assert!(seen_a.0.is_err() && seen_a.1.is_err());
        assert!(seen_b.0.is_ok() && seen_b.1.is_ok());
        // Outside a call nothing is cancelled.
        assert!(check().is_ok());
    }
}
