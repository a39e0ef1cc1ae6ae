//! SIGTERM/SIGINT: the drain the router decided (within the exit budget, cut short by a second
//! signal), then a withdraw for every prefix ExaBGP may hold, as far as it takes them before
//! the deadline.

use super::*;

impl Deliverer {
    /// SIGTERM/SIGINT: withdraw every prefix, as far as ExaBGP takes it before `deadline`;
    /// with `--drain` while UP, first announce with the drain community for what the budget
    /// allows.
    pub(super) async fn terminate(
        mut self,
        deadline: Instant,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) -> Finish {
        if self.detector.known() != Some(self.desired.borrow().dialect) {
            // Nothing was written in a dialect ExaBGP takes: nothing of ours to withdraw.
            tracing::info!("stopping before ExaBGP's dialect was known: nothing to withdraw");
            return Finish::Terminated;
        }
        let (drain, farewell) = {
            let desired = self.desired.borrow();
            let drain = desired.drain_on_exit.as_ref().map(|(plan, length)| {
                let lines: VecDeque<String> = plan
                    .iter()
                    .filter(|(prefix, _)| self.may_hold(prefix))
                    .flat_map(|(_, action)| action.lines.iter().cloned())
                    .collect();
                (lines, *length)
            });
            // Every configured prefix (a route an earlier instance left is withdrawn too), and
            // the prefixes a reload removed that ExaBGP may still hold.
            let configured = |prefix: &Prefix| !desired.retired.contains_key(prefix);
            let farewell: VecDeque<String> = desired
                .farewell
                .iter()
                .filter(|(prefix, _)| configured(prefix) || self.may_hold(prefix))
                .flat_map(|(_, action)| action.lines.iter().cloned())
                .collect();
            (drain, farewell)
        };
        let drain = drain.and_then(|(lines, length)| {
            let until = crate::engine::routing::exit_drain_until(Instant::now(), length, deadline)?;
            (!lines.is_empty()).then_some((lines, until))
        });
        if let Some((lines, until)) = drain {
            tracing::info!(
                drain = ?until.saturating_duration_since(Instant::now()),
                "terminating: draining (graceful shutdown community) before withdrawing"
            );
            if let Err(finish) = self.send_until(lines, until, Some(&mut control)).await {
                return finish;
            }
        }
        tracing::info!(
            withdraws = farewell.len(),
            "terminating: withdrawing every prefix"
        );
        match self.send_until(farewell, deadline, None).await {
            Ok(()) | Err(_) => Finish::Terminated,
        }
    }

    /// Write `queue` as the pipe takes it and await its ACKs, until `until` at the latest. A
    /// drain passes the `control` channel: it holds until `until` (or a [`Control::Hurry`]),
    /// whatever was answered. `Err` when ExaBGP went away.
    pub(super) async fn send_until(
        &mut self,
        mut queue: VecDeque<String>,
        until: Instant,
        mut control: Option<&mut mpsc::UnboundedReceiver<Control>>,
    ) -> Result<(), Finish> {
        let hold = control.is_some();
        let acks = matches!(self.ack_mode(), AckMode::Wait(_));
        // Answers still due for earlier commands come before ours.
        let mut earlier = self.owed.forget_all() + self.in_flight.len() as u64;
        self.in_flight.clear();
        let mut ours: u64 = 0;
        loop {
            if !hold && queue.is_empty() && (!acks || ours == 0) {
                return Ok(());
            }
            let mut chunk = Vec::new();
            let mut count = 0;
            for line in &queue {
                if !chunk.is_empty() && chunk.len() + line.len() + 1 > PIPE_BUF {
                    break;
                }
                chunk.extend_from_slice(line.as_bytes());
                chunk.push(b'\n');
                count += 1;
            }
            tokio::select! {
                biased;
                Some(Control::Hurry) = async {
                    match control.as_mut() {
                        Some(control) => control.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    tracing::info!("drain cut short by a second signal: withdrawing now");
                    self.owed.count(earlier + if acks { ours } else { 0 });
                    return Ok(());
                }
                _ = sleep_until(until) => {
                    if hold && queue.is_empty() {
                        // The drain's time is up; its unanswered ACKs come before the next ones.
                        self.owed.count(earlier + if acks { ours } else { 0 });
                        return Ok(());
                    }
                    if queue.is_empty() {
                        tracing::warn!(missing = ours, "exiting before every command was acknowledged");
                    } else {
                        tracing::warn!(unsent = queue.len(), "exiting before every command was written: ExaBGP is not reading");
                    }
                    self.owed.count(earlier + ours);
                    return Ok(());
                }
                event = self.events.recv(), if self.stdin_open => match event {
                    Some(PipeEvent::Ack(_)) if earlier > 0 => earlier -= 1,
                    Some(PipeEvent::Ack(_)) => ours = ours.saturating_sub(1),
                    Some(PipeEvent::ErrorDetail(_) | PipeEvent::NeighborUp(_)) => {}
                    Some(PipeEvent::Version(found)) => {
                        if self.detector.answered(&found) != Decided::Nothing {
                            // A late answer names another dialect: everything written so far
                            // was in the fallback dialect, which this ExaBGP rejected, so it
                            // holds nothing of ours. Stop rather than write more of it.
                            tracing::info!("nothing of ours was accepted in the other dialect: nothing to withdraw");
                            return Err(Finish::Terminated);
                        }
                    }
                    Some(PipeEvent::Shutdown | PipeEvent::Eof) | None => return Err(Finish::Terminated),
                },
                written = self.sink.write_chunk(&chunk), if !chunk.is_empty() => match written {
                    Ok(()) => {
                        queue.drain(..count);
                        if acks {
                            ours += count as u64;
                        }
                    }
                    Err(_) => return Err(Finish::Terminated),
                },
            }
        }
    }
}
