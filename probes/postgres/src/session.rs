//! One open connection and the task driving it; dropping it stops the task, so no connection
//! outlives a cancelled check.

use std::time::Duration;

use tokio_postgres::Client;

/// The task driving a connection, stopped when dropped so that no connection outlives the
/// probe or a cancelled check.
pub(crate) struct Driver(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An open connection and the task driving it.
pub(crate) struct Session {
    pub(crate) client: Client,
    pub(crate) driver: Driver,
}

impl Session {
    /// Close politely: the driver sends Terminate; give it a moment to do so, then stop it.
    pub(crate) async fn close(self) {
        let Session { client, mut driver } = self;
        drop(client);
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut driver.0).await;
    }

    /// Drop a connection in an unknown state (a check was cancelled mid-query).
    pub(crate) fn abandon(self) {
        drop(self);
    }
}
