//! The next chunk to write: the version query, the rest of a long action, then the commands
//! due from the to-do set, whole lines only, as many as one atomic pipe write takes and the
//! in-flight window allows.

use super::*;

impl Deliverer {
    /// The next chunk to write, if anything is due and the in-flight window has room.
    pub(super) fn next_chunk(&mut self, now: Instant) -> Option<Chunk> {
        if let Some(query) = self.detector.query() {
            return Some(Chunk {
                bytes: format!("{query}\n").into_bytes(),
                lines: Vec::new(),
                rest: None,
                query: true,
            });
        }
        if self.detector.known() != Some(self.desired.borrow().dialect) {
            // Nothing in a dialect ExaBGP may reject: wait for the answer, or for the checker
            // to render the routes in the dialect found.
            return None;
        }
        let acks = matches!(self.ack_mode(), AckMode::Wait(_));
        let room = if acks {
            MAX_IN_FLIGHT.saturating_sub(self.in_flight.len())
        } else {
            usize::MAX
        };
        if room == 0 {
            return None;
        }
        let mut chunk = Chunk {
            bytes: Vec::new(),
            lines: Vec::new(),
            rest: None,
            query: false,
        };
        let mut queue: Vec<(Prefix, RouteCommand, usize)> = Vec::new();
        if let Some((prefix, action, done)) = &self.partial
            && self.still_wanted(prefix, action)
        {
            queue.push((*prefix, action.clone(), *done));
        }
        let settled = self.due_from_todo(now, &mut queue, room.min(CHUNK_CANDIDATES));
        for prefix in settled {
            self.todo.remove(&prefix);
        }
        'actions: for (prefix, action, done) in queue {
            for (index, line) in action.lines.iter().enumerate().skip(done) {
                let full =
                    chunk.bytes.len() + line.len() + 1 > PIPE_BUF || chunk.lines.len() >= room;
                if full && !chunk.lines.is_empty() {
                    if index > done || chunk.lines.iter().any(|(p, ..)| *p == prefix) {
                        chunk.rest = Some((prefix, action.clone(), index));
                    }
                    break 'actions;
                }
                chunk.bytes.extend_from_slice(line.as_bytes());
                chunk.bytes.push(b'\n');
                let last = index + 1 == action.lines.len();
                chunk
                    .lines
                    .push((prefix, action.clone(), line.clone(), last));
            }
        }
        (!chunk.lines.is_empty()).then_some(chunk)
    }

    /// Whether `action` is still what the checker wants for `prefix`.
    pub(super) fn still_wanted(&self, prefix: &Prefix, action: &RouteCommand) -> bool {
        let desired = self.desired.borrow();
        desired
            .routes
            .as_ref()
            .and_then(|routes| routes.get(prefix))
            .or_else(|| desired.retired.get(prefix))
            == Some(action)
    }

    /// Add to `queue` up to `limit` commands due now, from the prefixes that may need one (a
    /// reload's withdraws included, for prefixes ExaBGP may still hold). Returns the prefixes
    /// examined that need nothing, to drop from the to-do set.
    pub(super) fn due_from_todo(
        &self,
        now: Instant,
        queue: &mut Vec<(Prefix, RouteCommand, usize)>,
        limit: usize,
    ) -> Vec<Prefix> {
        let desired = self.desired.borrow();
        let mut settled = Vec::new();
        for prefix in &self.todo {
            if queue.len() >= limit {
                break;
            }
            #[cfg(test)]
            EXAMINED.with(|examined| examined.set(examined.get() + 1));
            if queue.first().is_some_and(|(p, ..)| p == prefix) {
                continue; // the partly written action, already first
            }
            let configured = desired
                .routes
                .as_ref()
                .and_then(|routes| routes.get(prefix));
            let action = match configured {
                Some(action) => Some(action),
                None => desired
                    .retired
                    .get(prefix)
                    .filter(|_| self.may_hold(prefix)),
            };
            match action {
                Some(action) if self.needs(prefix, action, now) => {
                    queue.push((*prefix, action.clone(), 0));
                }
                _ => settled.push(*prefix),
            }
        }
        settled
    }
}
