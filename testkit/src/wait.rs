//! Waiting in async tests (feature `tokio`): for a future, or for a condition polled, each under
//! a guard that fails the test with a name when what must come does not (a guard against a
//! hang, never an assertion on speed).

use std::future::Future;
use std::time::Duration;

/// How long a test waits for what must come before calling it a hang.
pub const GUARD: Duration = Duration::from_secs(20);

/// `future`'s output, or a panic naming `what` if nothing came within [`GUARD`].
pub async fn guarded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {GUARD:?}"))
}

/// Poll `condition` (a count a test server keeps) every 10 ms until it holds, under [`GUARD`].
pub async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    guarded(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}
