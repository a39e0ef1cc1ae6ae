//! What the checker and the deliverer share, and nothing more:
//!
//! - [`Desired`]: the routes the checker wants, written by the checker only, through a
//!   `watch` channel the deliverer reads.
//! - [`Settled`]: the deliverer's answer the other way (a retired prefix needs nothing more),
//!   through a channel; so neither loop reads the other's state.
//! - [`Report`]: what each loop reports for the SIGUSR1 dump, each field written by one loop
//!   only (the checker: state, reason, penalty, hold, required probes; the deliverer: what
//!   ExaBGP accepted, what is out of sync) and read by no other loop.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::settings::Settings;
use crate::engine::dialect::ApiDialect;
use crate::engine::exabgp::AckMode;
use crate::engine::health::State;
use crate::engine::render::{RouteCommand, Target};
use crate::engine::route::Prefix;

/// The routes ExaBGP should hold, as the checker last decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Desired {
    /// One action per configured prefix; `None` until the first decisive state (INIT and the
    /// first RISING/FALLING announce nothing, as ExaBGP's healthcheck).
    pub(crate) routes: Option<BTreeMap<Prefix, RouteCommand>>,
    /// Withdraws for prefixes a reload removed, sent only if ExaBGP may still hold them.
    pub(crate) retired: BTreeMap<Prefix, RouteCommand>,
    /// What to send on SIGTERM: a withdraw for every configured prefix, and for every prefix a
    /// reload removed that ExaBGP may still hold.
    pub(crate) farewell: BTreeMap<Prefix, RouteCommand>,
    /// With `--drain` while UP: the announcements with the drain community to send on SIGTERM
    /// before the withdraws, and how long to let them work (within the exit budget).
    pub(crate) drain_on_exit: Option<(BTreeMap<Prefix, RouteCommand>, Duration)>,
    /// How ExaBGP acknowledges commands.
    pub(crate) ack: AckMode,
    /// The dialect the commands are written in (for the hint when ExaBGP rejects the first).
    pub(crate) dialect: ApiDialect,
    /// Re-send the accepted state this often (`--refresh-interval`).
    pub(crate) refresh: Option<Duration>,
    /// Which configuration this is (each reload, each dialect change makes a new one), so a
    /// [`Settled`] report about an older one is not taken for this one's.
    pub(crate) generation: u64,
}

/// The deliverer's report that ExaBGP holds nothing of ours for a prefix the checker retired
/// (a reload removed it), so the checker can forget it: the checker never reads what ExaBGP
/// accepted, which is the deliverer's own state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settled {
    /// The retired prefix.
    pub(crate) prefix: Prefix,
    /// The [`Desired::generation`] it was retired in.
    pub(crate) generation: u64,
}

impl Desired {
    /// Nothing decided yet, under `settings`.
    pub(crate) fn undecided(settings: &Settings) -> Self {
        Desired {
            routes: None,
            retired: BTreeMap::new(),
            farewell: settings.routes.plan(Target::Gone),
            drain_on_exit: None,
            ack: settings.ack,
            dialect: settings.routes.dialect,
            refresh: settings.timing.refresh_interval,
            generation: 0,
        }
    }
}

/// What ExaBGP did with the last command for a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Delivered {
    /// The command ExaBGP took.
    pub(crate) action: RouteCommand,
    /// True when ExaBGP answered `done`; false when it was written but no ACK was expected or
    /// none came in time.
    pub(crate) confirmed: bool,
}

/// What the loops report for the state dump: each field has one writer (see the module
/// documentation), and no loop reads a field the other writes.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    /// The hysteresis state.
    pub(crate) state: State,
    /// The last check's reason (none when healthy).
    pub(crate) last_reason: Option<String>,
    /// MED penalty while degraded.
    pub(crate) penalty: u32,
    /// Per prefix, what ExaBGP last accepted.
    pub(crate) accepted: BTreeMap<Prefix, Delivered>,
    /// Prefixes whose desired command ExaBGP has not accepted yet.
    pub(crate) out_of_sync: usize,
    /// Held down by flap damping.
    pub(crate) held: bool,
    /// The required probes (`--require`) and their states, one line.
    pub(crate) required: String,
    /// The same by state name only, to log changes of name.
    pub(crate) required_names: String,
    /// Where both loops report for metrics and the state file.
    pub(crate) observer: crate::observe::Observer,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            state: State::Init,
            last_reason: None,
            penalty: 0,
            accepted: BTreeMap::new(),
            out_of_sync: 0,
            held: false,
            required: String::new(),
            required_names: String::new(),
            observer: crate::observe::Observer::default(),
        }
    }
}

impl Report {
    /// Log the state dump (SIGUSR1) as one line.
    pub(crate) fn log_dump(&self) {
        let announced: Vec<String> = self
            .accepted
            .iter()
            .filter(|(_, delivered)| delivered.action.announces())
            .map(|(prefix, delivered)| {
                if delivered.confirmed {
                    prefix.to_string()
                } else {
                    format!("{prefix}(unconfirmed)")
                }
            })
            .collect();
        tracing::info!(
            state = %self.state,
            last_reason = self.last_reason.as_deref().unwrap_or("none"),
            penalty = self.penalty,
            announced = %announced.join(" "),
            out_of_sync = self.out_of_sync,
            flap_hold = self.held,
            required = if self.required.is_empty() { "none" } else { &self.required },
            "SIGUSR1: state dump"
        );
    }
}
