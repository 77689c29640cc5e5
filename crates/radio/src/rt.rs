//! The tokio runtime a CRTP link owns, and the blocking bridge into it.
//!
//! Calls never use `Runtime::block_on` (which panics when the caller already runs inside a
//! runtime, e.g. an actix actor): the future is spawned on the link's own worker thread and the
//! caller waits on a std channel. Each future runs in its own task, so a panic inside
//! crazyflie-lib (it has `assert!`s and slice indexing on received packets) becomes an error
//! here instead of unwinding through the caller.

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

/// Why a bridged call did not produce a value.
#[derive(Debug)]
pub(crate) enum RunError {
    /// The future did not finish within its deadline (it was aborted).
    Timeout,
    /// The future panicked; the panic message.
    Panicked(String),
    /// The runtime is shutting down.
    Gone,
}

pub(crate) struct LinkRuntime {
    rt: Option<tokio::runtime::Runtime>,
}

impl LinkRuntime {
    pub(crate) fn new() -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("depthpilot-radio")
            .enable_all()
            .build()?;
        Ok(Self { rt: Some(rt) })
    }

    fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.rt.as_ref().map(tokio::runtime::Runtime::handle)
    }

    /// Runs `fut` on the link's runtime and waits at most `timeout` for its output.
    pub(crate) fn run<T, F>(&self, timeout: Duration, fut: F) -> Result<T, RunError>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let handle = self.handle().ok_or(RunError::Gone)?;
        let (tx, rx) = mpsc::sync_channel(1);
        handle.spawn(async move {
            let task = tokio::spawn(fut);
            let abort = task.abort_handle();
            let outcome = match tokio::time::timeout(timeout, task).await {
                Err(_) => {
                    abort.abort();
                    Err(RunError::Timeout)
                }
                Ok(Err(join)) if join.is_panic() => Err(RunError::Panicked(
                    crate::usb::panic_message(join.into_panic().as_ref()),
                )),
                Ok(Err(_)) => Err(RunError::Gone),
                Ok(Ok(value)) => Ok(value),
            };
            let _ = tx.send(outcome);
        });
        // The spawned task always answers within `timeout` (plus scheduling); the margin only
        // covers a runtime that is being torn down.
        match rx.recv_timeout(timeout + Duration::from_secs(2)) {
            Ok(outcome) => outcome,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(RunError::Timeout),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(RunError::Gone),
        }
    }

    /// Spawns a background task (log forwarding, disconnect watch).
    pub(crate) fn spawn<F>(&self, fut: F) -> Option<tokio::task::AbortHandle>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.handle().map(|h| h.spawn(fut).abort_handle())
    }
}

impl Drop for LinkRuntime {
    fn drop(&mut self) {
        // Safe in any context, including inside another runtime.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_returns_times_out_and_contains_panics() {
        let rt = LinkRuntime::new().expect("runtime");
        assert_eq!(
            rt.run(Duration::from_secs(1), async { 41 + 1 })
                .expect("ok"),
            42
        );
        let slow = rt.run(Duration::from_millis(50), async {
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        assert!(matches!(slow, Err(RunError::Timeout)));
        let boom: Result<(), _> = rt.run(Duration::from_secs(1), async {
            panic!("crazyflie-lib assert");
        });
        assert!(matches!(boom, Err(RunError::Panicked(m)) if m.contains("crazyflie-lib assert")));
    }

    #[test]
    fn usable_from_inside_another_runtime() {
        let outer = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("outer");
        outer.block_on(async {
            let rt = LinkRuntime::new().expect("runtime");
            assert_eq!(rt.run(Duration::from_secs(1), async { 7 }).expect("ok"), 7);
            drop(rt); // must not panic inside an async context
        });
    }
}
