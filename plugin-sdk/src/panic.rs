//! Catching panics at the plugin boundary.
//!
//! Invariant: no panic unwinds across an `extern "C"` function of the ABI (that would abort the host). Every entry
//! point and every stream callback runs its body through [`guard`].
//!
//! While a guarded call runs, the default panic output (which would print the message on stderr, bypassing the
//! host's secret masking) is suppressed for that thread: the message travels in the returned error instead, and
//! the host masks known secret values in it. Panics outside guarded calls go to the previously installed hook.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::sync::Once;

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
            if DEPTH.with(|d| d.get()) > 0 {
                let location = info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
                LOCATION.with(|slot| *slot.borrow_mut() = location);
            } else {
                previous(info);
            }
        }));
    });
}

/// A caught panic: its message and, when known, where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Panicked {
    pub message: String,
    pub location: Option<String>,
}

impl std::fmt::Display for Panicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some(location) => write!(f, "{} (at {location})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

struct DepthGuard;

impl DepthGuard {
    fn enter() -> DepthGuard {
        DEPTH.with(|d| d.set(d.get() + 1));
        DepthGuard
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Runs `f`, turning a panic into `Err(Panicked)`.
pub(crate) fn guard<T>(f: impl FnOnce() -> T) -> Result<T, Panicked> {
    install_hook();
    let depth = DepthGuard::enter();
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    drop(depth);
    result.map_err(|payload| {
        let message = payload_message(payload.as_ref());
        // Dropping a payload can itself panic (a payload type with a panicking `Drop`): never let that escape.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
        let location = LOCATION.with(|slot| slot.borrow_mut().take());
        Panicked { message, location }
    })
}

fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_returns_the_value_when_nothing_panics() {
        assert_eq!(guard(|| 41 + 1), Ok(42));
    }

    #[test]
    fn guard_catches_a_panic_with_its_message_and_location() {
        let err = guard(|| -> u32 { panic!("boom {}", 7) }).unwrap_err();
        assert_eq!(err.message, "boom 7");
        let location = err.location.clone().expect("the hook records the location");
        assert!(location.contains("panic.rs"), "{location}");
        assert!(err.to_string().starts_with("boom 7 (at "), "{err}");
    }

    #[test]
    fn nested_guards_each_catch_their_own_panic() {
        let outer = guard(|| {
            let inner = guard(|| -> () { panic!("inner") });
            assert_eq!(inner.unwrap_err().message, "inner");
            panic!("outer")
        });
        assert_eq!(outer.unwrap_err().message, "outer");
        assert_eq!(DEPTH.with(|d| d.get()), 0);
    }

    #[test]
    fn non_string_payloads_are_described() {
        let err = guard(|| std::panic::panic_any(17_u8)).unwrap_err();
        assert_eq!(err.message, "panic with a non-string payload");
    }
}
