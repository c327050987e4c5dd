//! Stopping on SIGINT (Ctrl-C) and SIGTERM.
//!
//! A signal sets the cancel flag every driver sees through `ctx.is_cancelled()`. Drivers that check it stop
//! on their own; a driver call that does not return within [`GRACE`] (blocked in a socket read, a lock, a
//! library call) is not waited for: the command records what it knows and ends, with exit 130, while the call
//! stays where it is on its own thread (plugins are never unloaded; the process exit ends it). A second signal
//! stops waiting at once.
//!
//! Invariant: once [`Signals`] exists, nothing in the process waits for a driver call without also waiting for
//! a signal; otherwise Ctrl-C would do nothing (the handler replaced the default action).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a cancelled driver call may take to return before it is abandoned.
pub const GRACE: Duration = Duration::from_millis(1000);

/// The signal that asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// How people call it in messages: `Ctrl-C` or `SIGTERM`.
    pub fn label(self) -> &'static str {
        match self {
            Signal::Interrupt => "Ctrl-C",
            Signal::Terminate => "SIGTERM",
        }
    }
}

/// SIGINT and SIGTERM, watched from creation on (until the process ends: the handlers stay installed).
/// Must be created inside a tokio runtime with its I/O driver enabled.
pub struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// The next signal.
    pub async fn recv(&mut self) -> Signal {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => Signal::Interrupt,
                _ = self.term.recv() => Signal::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Interrupt
        }
    }
}

/// The next signal of `signals`, or never when there is none to watch.
pub async fn next(signals: &mut Option<Signals>) -> Signal {
    match signals {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// Runs one driver call (`doctor`, `discover`) on a thread of its own and waits for it or for a signal.
/// On SIGINT/SIGTERM `cancel` is set, the call gets [`GRACE`] to return, and the result is `Err(signal)`
/// whether it returned or not (an abandoned call keeps its thread until the process ends).
pub fn interruptible<T: Send + 'static>(
    cancel: Arc<AtomicBool>,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Signal> {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        // No runtime, no signal handling: the default action of the signals still ends the process.
        Err(_) => return Ok(f()),
    };
    let result = rt.block_on(async {
        let mut signals = Signals::new().ok();
        let mut task = tokio::task::spawn_blocking(f);
        tokio::select! {
            r = &mut task => Ok(r),
            sig = next(&mut signals) => {
                cancel.store(true, Ordering::Relaxed);
                tokio::select! {
                    _ = &mut task => {}
                    _ = tokio::time::sleep(GRACE) => {}
                    _ = next(&mut signals) => {}
                }
                Err(sig)
            }
        }
    });
    // Never wait for an abandoned call.
    rt.shutdown_background();
    match result {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(join)) => match join.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(e) => panic!("a driver call ended abnormally: {e}"),
        },
        Err(sig) => Err(sig),
    }
}
