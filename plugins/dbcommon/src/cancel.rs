//! Waiting that ends as soon as the host cancels the step (Ctrl-C, or another step failed), for work that
//! cannot check [`Context::is_cancelled`] itself, such as a connection attempt that may take up to
//! `connect_timeout`.

use osiris_plugin_sdk::{Context, ErrorKind, PluginError};
use std::future::Future;
use std::time::Duration;

/// How often a wait checks for cancellation.
pub const CANCEL_POLL: Duration = Duration::from_millis(50);

/// Resolves once the host has cancelled the step (checked every [`CANCEL_POLL`]).
pub async fn cancelled(ctx: &Context) {
    while !ctx.is_cancelled() {
        tokio::time::sleep(CANCEL_POLL).await;
    }
}

/// `work`'s result, or, once the host cancels first, a `Cancelled` error (code `CANCELLED`) that says
/// "`what` was cancelled"; `work` is then dropped unfinished. Must run inside a tokio runtime with time.
pub async fn unless_cancelled<T>(
    ctx: &Context,
    what: &str,
    work: impl Future<Output = Result<T, PluginError>>,
) -> Result<T, PluginError> {
    tokio::select! {
        r = work => r,
        _ = cancelled(ctx) => Err(PluginError::new(
            ErrorKind::Cancelled,
            "CANCELLED",
            format!("{what} was cancelled"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use osiris_plugin_sdk::testing::TestContext;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn finished_work_is_returned() {
        let ctx = Context::new(TestContext::new());
        let r = rt().block_on(unless_cancelled(&ctx, "connecting to h:1/db", async {
            Ok(7)
        }));
        assert_eq!(r.unwrap(), 7);
    }

    #[test]
    fn a_cancellation_ends_a_wait_that_would_never_end() {
        let backend = TestContext::new();
        let ctx = Context::new(backend.clone());
        let started = std::time::Instant::now();
        let err = rt()
            .block_on(async {
                let never = std::future::pending::<Result<(), PluginError>>();
                let wait = unless_cancelled(&ctx, "connecting to h:1/db", never);
                let cancel = async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    backend.cancel();
                    std::future::pending::<()>().await;
                };
                tokio::select! {
                    r = wait => r,
                    _ = cancel => unreachable!("the cancelling future never ends"),
                }
            })
            .unwrap_err();
        assert_eq!(
            (err.kind, err.code.as_str(), err.message.as_str()),
            (
                ErrorKind::Cancelled,
                "CANCELLED",
                "connecting to h:1/db was cancelled"
            )
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
    }
}
