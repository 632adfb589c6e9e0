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
//!
//! The token also carries the call's progress ([`Progress`]): the phase it is in and the
//! sources, bytes and records done, updated by the core as it goes ([`report`]) and read by
//! whoever holds the token (the binding's progress callback), per call.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

/// What a running call is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Starting = 0,
    Reading = 1,
    Dedupe = 2,
    /// Building the output frame.
    Frame = 3,
    Done = 4,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Reading => "reading",
            Phase::Dedupe => "dedupe",
            Phase::Frame => "building the frame",
            Phase::Done => "done",
        }
    }
}

/// A call's progress counters (relaxed atomics: a display reads them while the call runs).
#[derive(Debug, Default)]
pub struct Progress {
    phase: AtomicU8,
    pub sources: AtomicU64,
    pub sources_total: AtomicU64,
    pub bytes: AtomicU64,
    pub bytes_total: AtomicU64,
    pub records: AtomicU64,
}

/// A copy of a call's progress at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub phase: Phase,
    pub sources: u64,
    pub sources_total: u64,
    pub bytes: u64,
    pub bytes_total: u64,
    pub records: u64,
}

impl Progress {
    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let phase = match self.phase.load(Ordering::Relaxed) {
            1 => Phase::Reading,
            2 => Phase::Dedupe,
            3 => Phase::Frame,
            4 => Phase::Done,
            _ => Phase::Starting,
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            phase,
            sources: get(&self.sources),
            sources_total: get(&self.sources_total),
            bytes: get(&self.bytes),
            bytes_total: get(&self.bytes_total),
            records: get(&self.records),
        }
    }
}

#[derive(Default)]
struct State {
    cancelled: AtomicBool,
    progress: Progress,
}

/// A call's cancellation flag and progress.
#[derive(Clone, Default)]
pub struct Token(Arc<State>);

impl Token {
    pub fn new() -> Token {
        Token::default()
    }

    /// Asks the call to stop at its next check.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::Relaxed);
    }

    /// The call's progress so far.
    pub fn progress(&self) -> Snapshot {
        self.0.progress.snapshot()
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<State>>> = const { RefCell::new(None) };
}

/// Runs `work` on a new thread pool (its size: `RAYON_NUM_THREADS`, else the machine's cores)
/// whose threads check `token`; the parallel work inside runs on that pool.
pub fn run<T: Send>(token: &Token, work: impl FnOnce() -> T + Send) -> Result<T> {
    let state = token.0.clone();
    let pool = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("usagenorm-{i}"))
        .start_handler(move |_| CURRENT.with(|c| *c.borrow_mut() = Some(state.clone())))
        .build()
        .map_err(|e| Error::InvalidArgument(format!("could not start worker threads: {e}")))?;
    Ok(pool.install(work))
}

/// `Err(Error::Cancelled)` once the running call's token is cancelled.
pub fn check() -> Result<()> {
    let cancelled = CURRENT.with(|c| c.borrow().as_ref().is_some_and(|s| s.cancelled.load(Ordering::Relaxed)));
    if cancelled {
        Err(Error::Cancelled)
    } else {
        Ok(())
    }
}

/// Updates the running call's progress (nothing outside [`run`]).
pub fn report<R>(update: impl FnOnce(&Progress) -> R) {
    CURRENT.with(|c| {
        if let Some(state) = c.borrow().as_ref() {
            update(&state.progress);
        }
    });
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

    #[test]
    fn progress_is_per_call() {
        let (a, b) = (Token::new(), Token::new());
        run(&a, || {
            rayon::join(
                || report(|p| p.records.fetch_add(3, Ordering::Relaxed)),
                || report(|p| p.set_phase(Phase::Dedupe)),
            )
        })
        .unwrap();
        run(&b, || report(|p| p.records.fetch_add(5, Ordering::Relaxed))).unwrap();
        assert_eq!((a.progress().records, a.progress().phase), (3, Phase::Dedupe));
        assert_eq!((b.progress().records, b.progress().phase), (5, Phase::Starting));
    }
}
