//! SIGTERM and SIGINT that come before the runner listens for them (while addresses are set up
//! on `lo`): recorded instead of killing the probe, so the set-up stops between two batches,
//! what it added is removed, and the probe exits.
//!
//! The handler stays installed: tokio's (installed when the runner starts) chains to it, and it
//! only sets a flag nothing reads once the runner listens.

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

static STOPPED: AtomicBool = AtomicBool::new(false);

extern "C" fn record(_signal: libc::c_int) {
    STOPPED.store(true, Ordering::SeqCst);
}

/// From now on, SIGTERM and SIGINT set [`stopped`] instead of killing the process.
pub(crate) fn record_stops() -> nix::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(record),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        // The handler only stores to an atomic, which is async-signal-safe.
        #[allow(unsafe_code)]
        unsafe {
            sigaction(signal, &action)?;
        }
    }
    Ok(())
}

/// Whether a SIGTERM or SIGINT came since [`record_stops`].
pub(crate) fn stopped() -> bool {
    STOPPED.load(Ordering::SeqCst)
}
