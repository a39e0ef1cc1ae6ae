//! From what came back to a verdict, as a pure function: per target, the loss and the median
//! round-trip time against their limits; over all targets, how many are reachable against
//! `--min-reachable`.

use std::time::Duration;

use exaprobe_core::Outcome;
use exaprobe_core::kit::parse::{Level, Limits};

/// What one target's echo requests of one check came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tally {
    /// The target as the operator reads it (`192.0.2.1`, `gw.example (192.0.2.1)`).
    pub(crate) name: String,
    /// Requests sent (or tried: a request the kernel refused is sent and lost).
    pub(crate) sent: usize,
    /// Round-trip times of the matching echo replies received in time.
    pub(crate) rtts: Vec<Duration>,
    /// What the network said instead of a reply (an ICMP error, a send error), the last one.
    pub(crate) error: Option<String>,
}

/// Where a target stands after a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Answered within every limit.
    Reachable,
    /// Answered, past a degraded limit (why).
    Degraded(String),
    /// Not reachable (why).
    Unreachable(String),
}

/// The operator's limits on one target's answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Thresholds {
    /// `--loss-degraded` and `--loss-down`, percent.
    pub(crate) loss: Limits<f64>,
    /// `--rtt-degraded` and `--rtt-down`, on the median, in seconds.
    pub(crate) rtt: Limits<f64>,
}

impl Tally {
    /// The percentage of requests without a reply.
    pub(crate) fn loss(&self) -> f64 {
        if self.sent == 0 {
            return 100.0;
        }
        let lost = self.sent.saturating_sub(self.rtts.len());
        lost as f64 * 100.0 / self.sent as f64
    }

    /// The median round-trip time (the lower middle one of an even count), if any reply came.
    pub(crate) fn median(&self) -> Option<Duration> {
        let mut sorted = self.rtts.clone();
        sorted.sort_unstable();
        sorted.get(sorted.len().saturating_sub(1) / 2).copied()
    }
}

/// One target's standing.
pub(crate) fn judge_target(tally: &Tally, limits: &Thresholds) -> Reach {
    let name = &tally.name;
    let lost = tally.sent.saturating_sub(tally.rtts.len());
    let Some(median) = tally.median() else {
        let why = tally
            .error
            .as_deref()
            .map(|error| format!(" ({error})"))
            .unwrap_or_default();
        return Reach::Unreachable(format!(
            "{name}: no reply to {} echo request{}{why}",
            tally.sent,
            if tally.sent == 1 { "" } else { "s" }
        ));
    };
    let loss = tally.loss();
    let loss_text = |limit: f64, option: &str| {
        format!(
            "{name}: {loss:.0}% loss ({lost} of {} lost) above {option} {}%",
            tally.sent,
            show_percent(limit)
        )
    };
    let rtt_text = |limit: Duration, option: &str| {
        format!(
            "{name}: median RTT {} above {option} {}",
            show_duration(median),
            show_duration(limit)
        )
    };
    let mut degraded = Vec::new();
    match limits.loss.level(loss) {
        Level::Over => {
            return Reach::Unreachable(loss_text(limits.loss.hard().unwrap_or(0.0), "--loss-down"));
        }
        Level::Degraded => degraded.push(loss_text(
            limits.loss.degraded().unwrap_or(0.0),
            "--loss-degraded",
        )),
        Level::Within => {}
    }
    match limits.rtt.level(median.as_secs_f64()) {
        Level::Over => {
            return Reach::Unreachable(rtt_text(
                Duration::from_secs_f64(limits.rtt.hard().unwrap_or(0.0)),
                "--rtt-down",
            ));
        }
        Level::Degraded => degraded.push(rtt_text(
            Duration::from_secs_f64(limits.rtt.degraded().unwrap_or(0.0)),
            "--rtt-degraded",
        )),
        Level::Within => {}
    }
    if degraded.is_empty() {
        Reach::Reachable
    } else {
        Reach::Degraded(degraded.join("; "))
    }
}

/// The check's verdict: unhealthy when fewer than `min_reachable` targets are reachable
/// (degraded ones count as reachable), degraded when any target is degraded or unreachable,
/// else healthy.
pub(crate) fn judge(reaches: &[Reach], min_reachable: usize) -> Outcome {
    let reachable = reaches
        .iter()
        .filter(|reach| !matches!(reach, Reach::Unreachable(_)))
        .count();
    let reasons: Vec<&str> = reaches
        .iter()
        .filter_map(|reach| match reach {
            Reach::Reachable => None,
            Reach::Degraded(why) | Reach::Unreachable(why) => Some(why.as_str()),
        })
        .collect();
    if reasons.is_empty() {
        return Outcome::Healthy;
    }
    let summary = if reaches.len() == 1 {
        String::new()
    } else {
        format!("{reachable} of {} targets reachable: ", reaches.len())
    };
    let reason = format!("{summary}{}", reasons.join("; "));
    if reachable < min_reachable {
        if reaches.len() > 1 {
            return Outcome::unhealthy(format!(
                "{reachable} of {} targets reachable, --min-reachable {min_reachable}: {}",
                reaches.len(),
                reasons.join("; ")
            ));
        }
        return Outcome::unhealthy(reason);
    }
    Outcome::degraded(reason)
}

/// A percentage without a useless `.0`.
fn show_percent(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

/// A round-trip time as ping prints it: milliseconds with up to three decimals.
pub(crate) fn show_duration(value: Duration) -> String {
    let millis = value.as_secs_f64() * 1000.0;
    let text = format!("{millis:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}ms")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn tally(sent: usize, rtts: &[u64]) -> Tally {
        Tally {
            name: "192.0.2.1".into(),
            sent,
            rtts: rtts.iter().copied().map(ms).collect(),
            error: None,
        }
    }

    fn limits(loss: (Option<f64>, Option<f64>), rtt: (Option<u64>, Option<u64>)) -> Thresholds {
        Thresholds {
            loss: Limits::new(loss.0, loss.1, ("a", "b"), |v| v.to_string()).unwrap(),
            rtt: Limits::new(
                rtt.0.map(|n| ms(n).as_secs_f64()),
                rtt.1.map(|n| ms(n).as_secs_f64()),
                ("a", "b"),
                |v| v.to_string(),
            )
            .unwrap(),
        }
    }

    fn none() -> Thresholds {
        limits((None, None), (None, None))
    }

    #[test]
    fn all_answered_is_reachable() {
        assert_eq!(
            judge_target(&tally(3, &[1, 2, 3]), &none()),
            Reach::Reachable
        );
    }

    #[test]
    fn no_reply_is_unreachable_with_the_network_error() {
        assert_eq!(
            judge_target(&tally(3, &[]), &none()),
            Reach::Unreachable("192.0.2.1: no reply to 3 echo requests".into())
        );
        let mut refused = tally(1, &[]);
        refused.error = Some("network unreachable".into());
        assert_eq!(
            judge_target(&refused, &none()),
            Reach::Unreachable(
                "192.0.2.1: no reply to 1 echo request (network unreachable)".into()
            )
        );
    }

    #[test]
    fn loss_against_its_limits() {
        let limits = limits((Some(20.0), Some(50.0)), (None, None));
        assert_eq!(
            judge_target(&tally(3, &[1, 1, 1]), &limits),
            Reach::Reachable
        );
        assert_eq!(
            judge_target(&tally(3, &[1, 1]), &limits),
            Reach::Degraded("192.0.2.1: 33% loss (1 of 3 lost) above --loss-degraded 20%".into())
        );
        assert_eq!(
            judge_target(&tally(3, &[1]), &limits),
            Reach::Unreachable("192.0.2.1: 67% loss (2 of 3 lost) above --loss-down 50%".into())
        );
        // Without --loss-down, some replies keep the target reachable.
        let soft_only = self::limits((Some(12.5), None), (None, None));
        assert_eq!(
            judge_target(&tally(4, &[1]), &soft_only),
            Reach::Degraded("192.0.2.1: 75% loss (3 of 4 lost) above --loss-degraded 12.5%".into())
        );
    }

    #[test]
    fn median_rtt_against_its_limits() {
        let limits = limits((None, None), (Some(100), Some(200)));
        // The median, not the worst: one slow reply of three does not count.
        assert_eq!(
            judge_target(&tally(3, &[5, 500, 6]), &limits),
            Reach::Reachable
        );
        assert_eq!(
            judge_target(&tally(3, &[150, 150, 5]), &limits),
            Reach::Degraded("192.0.2.1: median RTT 150ms above --rtt-degraded 100ms".into())
        );
        assert_eq!(
            judge_target(&tally(3, &[250, 300, 5]), &limits),
            Reach::Unreachable("192.0.2.1: median RTT 250ms above --rtt-down 200ms".into())
        );
        // Both degraded: both said.
        let both = self::limits((Some(10.0), None), (Some(100), None));
        assert_eq!(
            judge_target(&tally(2, &[150]), &both),
            Reach::Degraded(
                "192.0.2.1: 50% loss (1 of 2 lost) above --loss-degraded 10%; 192.0.2.1: median RTT 150ms above --rtt-degraded 100ms"
                    .into()
            )
        );
    }

    #[test]
    fn min_reachable_over_targets() {
        let up = Reach::Reachable;
        let slow = Reach::Degraded("b: slow".into());
        let down = Reach::Unreachable("c: no reply".into());
        assert_eq!(judge(&[up.clone(), up.clone()], 2), Outcome::Healthy);
        assert_eq!(
            judge(&[up.clone(), slow.clone()], 2),
            Outcome::degraded("2 of 2 targets reachable: b: slow")
        );
        assert_eq!(
            judge(&[up.clone(), down.clone()], 2),
            Outcome::unhealthy("1 of 2 targets reachable, --min-reachable 2: c: no reply")
        );
        assert_eq!(
            judge(&[up.clone(), down.clone(), slow], 1),
            Outcome::degraded("2 of 3 targets reachable: c: no reply; b: slow")
        );
        assert_eq!(
            judge(std::slice::from_ref(&down), 1),
            Outcome::unhealthy("c: no reply")
        );
    }

    #[test]
    fn durations_read_like_ping() {
        assert_eq!(show_duration(Duration::from_micros(1234)), "1.234ms");
        assert_eq!(show_duration(ms(200)), "200ms");
        assert_eq!(show_duration(Duration::from_nanos(1_500_000)), "1.5ms");
    }

    proptest! {
        /// Whatever came back: the verdict never says healthy with a target unreachable, an
        /// unhealthy verdict means fewer reachable targets than asked, and losing one more
        /// reply never makes a target better off.
        #[test]
        fn verdicts_are_consistent(
            targets in prop::collection::vec((1usize..6, prop::collection::vec(0u64..400, 0..6)), 1..5),
            min in 1usize..5,
            loss in (prop::option::of(0.0f64..50.0), prop::option::of(50.0f64..100.0)),
            rtt in (prop::option::of(0u64..150), prop::option::of(150u64..300)),
        ) {
            let limits = limits(loss, rtt);
            let tallies: Vec<Tally> = targets
                .iter()
                .map(|(sent, rtts)| {
                    let sent = (*sent).max(rtts.len());
                    tally(sent, rtts)
                })
                .collect();
            let reaches: Vec<Reach> = tallies.iter().map(|t| judge_target(t, &limits)).collect();
            let reachable = reaches.iter().filter(|r| !matches!(r, Reach::Unreachable(_))).count();
            let outcome = judge(&reaches, min);
            match &outcome {
                Outcome::Healthy => prop_assert!(reaches.iter().all(|r| *r == Reach::Reachable)),
                Outcome::Unhealthy { .. } => prop_assert!(reachable < min),
                Outcome::Degraded { .. } => prop_assert!(reachable >= min),
            }
            for t in &tallies {
                prop_assert_eq!(t.rtts.is_empty(), matches!(judge_target(t, &limits), Reach::Unreachable(ref r) if r.contains("no reply")));
                if let Some(&first) = t.rtts.first() {
                    let mut worse = t.clone();
                    worse.rtts.retain(|&r| r != first);
                    let rank = |r: &Reach| match r { Reach::Reachable => 0, Reach::Degraded(_) => 1, Reach::Unreachable(_) => 2 };
                    // Losing replies may move the median either way, so only without RTT limits.
                    if limits.rtt.is_empty() {
                        prop_assert!(rank(&judge_target(&worse, &limits)) >= rank(&judge_target(t, &limits)));
                    }
                }
            }
        }
    }
}
