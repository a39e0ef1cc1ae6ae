//! Transition hooks (`--execute`, `--up-execute`, ...): commands run through `sh -c` when the
//! state changes, with `STATE` in their environment, one after another in transition order, each
//! under `--hook-timeout`, on a task of their own so they never stall the check loop.
//!
//! They run like the exec check (see [`crate::kit::subprocess`]): output read as it comes (the tail is
//! logged), and when a hook ends or times out, everything it started is killed and reaped.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::settings::HookCommands;
use crate::engine::health::State;
use crate::kit::subprocess::{Finished, Program, TAIL_BYTES, describe_status, run_captured};

/// Queue of hook runs, executed in order by a background task.
pub(crate) struct Hooks {
    queue: mpsc::UnboundedSender<(String, &'static str)>,
}

impl Hooks {
    /// Start the background task; hooks run with `timeout` each.
    pub(crate) fn start(timeout: Duration) -> Self {
        let (queue, mut jobs) = mpsc::unbounded_channel::<(String, &'static str)>();
        tokio::spawn(async move {
            while let Some((command, state)) = jobs.recv().await {
                run_one(&command, state, timeout).await;
            }
        });
        Hooks { queue }
    }

    /// Queue the hooks for a transition into `state`.
    pub(crate) fn transition(&self, commands: &HookCommands, state: State) {
        let specific: &[String] = match state {
            State::Up => &commands.up,
            State::Down => &commands.down,
            State::Disabled => &commands.disabled,
            _ => &[],
        };
        for command in commands.any.iter().chain(specific) {
            let _ = self.queue.send((command.clone(), state.name()));
        }
    }
}

async fn run_one(command: &str, state: &'static str, timeout: Duration) {
    let program = match Program::shell(command).and_then(|program| program.env("STATE", state)) {
        Ok(program) => program,
        Err(error) => {
            tracing::warn!(hook = command, state, %error, "hook could not start");
            return;
        }
    };
    match tokio::time::timeout(timeout, run_captured(&program, TAIL_BYTES)).await {
        Ok(Ok(Finished {
            status,
            output_tail,
        })) if status.success() => {
            tracing::debug!(hook = command, state, output = output_tail, "hook done")
        }
        Ok(Ok(Finished {
            status,
            output_tail,
        })) => tracing::warn!(
            hook = command,
            state,
            result = %describe_status(&status),
            output = output_tail,
            "hook failed"
        ),
        Ok(Err(error)) => tracing::warn!(hook = command, state, %error, "hook could not start"),
        Err(_) => tracing::warn!(hook = command, state, ?timeout, "hook timed out; killed"),
    }
}
