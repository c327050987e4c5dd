//! Work a plugin must do when the process ends, e.g. saying goodbye to pooled database sessions so the server
//! does not log them as aborted. Plugins are never unloaded, so the end of the process is the only "unload".
//!
//! [`on_process_exit`] registers a function once; all registered functions run when the process exits normally
//! (`main` returns or `std::process::exit`), on a thread of their own (never inside the caller's async
//! runtime), each inside `catch_unwind`. They do not run when the process is killed or aborts. Each function
//! must bound its own time (a timeout on any network I/O): the process waits for them.

use std::sync::{Mutex, Once};

static HOOKS: Mutex<Vec<fn()>> = Mutex::new(Vec::new());
static REGISTER: Once = Once::new();

unsafe extern "C" {
    fn atexit(cb: extern "C" fn()) -> std::ffi::c_int;
}

/// Runs `f` when the process exits normally. Registering the same function twice runs it once.
pub fn on_process_exit(f: fn()) {
    {
        let mut hooks = HOOKS.lock().unwrap_or_else(|e| e.into_inner());
        if !hooks.iter().any(|h| std::ptr::fn_addr_eq(*h, f)) {
            hooks.push(f);
        }
    }
    REGISTER.call_once(|| {
        // SAFETY: `run_hooks` is a plain `extern "C" fn` of this library, which is never unloaded.
        unsafe {
            atexit(run_hooks);
        }
    });
}

extern "C" fn run_hooks() {
    let hooks: Vec<fn()> = std::mem::take(&mut *HOOKS.lock().unwrap_or_else(|e| e.into_inner()));
    if hooks.is_empty() {
        return;
    }
    // A thread of its own: the exiting thread may be inside an async runtime, where blocking on another one
    // panics. A panic (or a failed spawn) must not turn a normal exit into an abort.
    let worker = std::thread::Builder::new()
        .name("osiris-plugin-exit".into())
        .spawn(move || {
            for h in hooks {
                let _ = std::panic::catch_unwind(h);
            }
        });
    if let Ok(worker) = worker {
        let _ = worker.join();
    }
}
