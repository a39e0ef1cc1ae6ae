//! What to announce in each state, rendered as ExaBGP text API commands.
//!
//! [`RoutePolicy`] holds the validated route options; [`RoutePolicy::plan`] turns a target state
//! into one [`RouteCommand`] per prefix, with the exact lines to write for the chosen dialect.
//! Pure: the runner diffs plans to decide what to send.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::engine::dialect::ApiDialect;
use crate::engine::route::{AsPath, NeighborSelector, NextHop, PathId, Prefix};

/// What the routes should express, derived from the health state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// Serving: announce with the up metric plus a degradation penalty (0 when healthy).
    Up {
        /// MED added to the up metric.
        penalty: u32,
    },
    /// Serving, about to stop for a reason that is not a failure (maintenance, shutdown, a
    /// reload removing the prefix): announced as UP plus the drain community (RFC 8326
    /// GRACEFUL_SHUTDOWN), so routers move traffic away first.
    Draining {
        /// MED added to the up metric, as while UP.
        penalty: u32,
    },
    /// Not serving: worse MED, or withdrawn with `--withdraw-on-down`.
    Down,
    /// Maintenance: disabled MED/community, or withdrawn with `--withdraw-on-down`.
    Disabled,
    /// Shutting down: withdraw everything.
    Gone,
}

/// What one prefix should be in one target state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouteAction {
    /// Announced with this MED.
    Announce {
        /// The MED, after the penalty and the per-prefix increase.
        med: u32,
    },
    /// Withdrawn.
    Withdraw,
}

/// The command for one prefix in one target state: the action and the exact lines to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteCommand {
    /// What the lines do.
    pub action: RouteAction,
    /// The lines to write: exactly one, every dialect naming all the neighbors in one command.
    pub lines: Vec<String>,
}

impl RouteCommand {
    /// True for an announce, false for a withdraw.
    pub(crate) fn announces(&self) -> bool {
        matches!(self.action, RouteAction::Announce { .. })
    }
}

/// Every route option, validated, ready to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoutePolicy {
    /// Prefixes in the operator's order (the MED grows by `increase` along it).
    pub prefixes: Vec<Prefix>,
    /// Next hop for IPv4 prefixes.
    pub next_hop: NextHop,
    /// Next hop for IPv6 prefixes.
    pub next_hop6: NextHop,
    /// MED of the first prefix when UP.
    pub up_metric: u32,
    /// MED of the first prefix when DOWN.
    pub down_metric: u32,
    /// MED of the first prefix when DISABLED.
    pub disabled_metric: u32,
    /// MED added per further prefix.
    pub increase: u32,
    /// Withdraw instead of announcing a worse MED when DOWN or DISABLED.
    pub withdraw_on_down: bool,
    /// LOCAL_PREF, if any.
    pub local_preference: Option<u32>,
    /// Standard communities when UP.
    pub communities: Vec<String>,
    /// Extended communities (every state).
    pub extended_communities: Vec<String>,
    /// Large communities (every state).
    pub large_communities: Vec<String>,
    /// Standard communities replacing `communities` when DOWN or DISABLED (if not empty).
    pub disabled_communities: Vec<String>,
    /// Community added while draining (`--drain-community`, RFC 8326's 65535:0 by default).
    pub drain_community: String,
    /// AS path in every state without its own.
    pub as_path: Option<AsPath>,
    /// AS path when UP.
    pub up_as_path: Option<AsPath>,
    /// AS path when DOWN.
    pub down_as_path: Option<AsPath>,
    /// AS path when DISABLED.
    pub disabled_as_path: Option<AsPath>,
    /// ADD-PATH identifier.
    pub path_id: Option<PathId>,
    /// Neighbor selectors; empty means every neighbor that lists this process.
    pub neighbors: Vec<NeighborSelector>,
    /// Command syntax.
    pub dialect: ApiDialect,
}

impl RoutePolicy {
    /// The action for every prefix in `target`, keyed by prefix.
    pub(crate) fn plan(&self, target: Target) -> BTreeMap<Prefix, RouteCommand> {
        self.prefixes
            .iter()
            .enumerate()
            .map(|(index, prefix)| (*prefix, self.command(target, index, prefix)))
            .collect()
    }

    /// What the prefix at `index` should be in `target`.
    pub(crate) fn action(&self, target: Target, index: usize) -> RouteAction {
        let base = match target {
            Target::Up { penalty } | Target::Draining { penalty } => {
                self.up_metric.saturating_add(penalty)
            }
            Target::Down if !self.withdraw_on_down => self.down_metric,
            Target::Disabled if !self.withdraw_on_down => self.disabled_metric,
            _ => return RouteAction::Withdraw,
        };
        let step = self
            .increase
            .saturating_mul(u32::try_from(index).unwrap_or(u32::MAX));
        RouteAction::Announce {
            med: base.saturating_add(step),
        }
    }

    fn command(&self, target: Target, index: usize, prefix: &Prefix) -> RouteCommand {
        let next_hop = if prefix.is_ipv6() {
            self.next_hop6
        } else {
            self.next_hop
        };
        let mut body = format!("route {prefix} next-hop {next_hop}");
        let action = self.action(target, index);
        let verb = match action {
            RouteAction::Announce { med } => {
                write!(body, " med {med}").ok();
                self.write_attributes(&mut body, target);
                "announce"
            }
            RouteAction::Withdraw => {
                if let Some(path_id) = self.path_id {
                    write!(body, " path-information {path_id}").ok();
                }
                "withdraw"
            }
        };
        let lines = self
            .selectors()
            .into_iter()
            .map(|selector| format!("{selector}{verb} {body}"))
            .collect();
        RouteCommand { action, lines }
    }

    /// Attributes after the MED, in ExaBGP healthcheck's order.
    fn write_attributes(&self, body: &mut String, target: Target) {
        let serving = matches!(target, Target::Up { .. } | Target::Draining { .. });
        if let Some(local_preference) = self.local_preference {
            write!(body, " local-preference {local_preference}").ok();
        }
        let communities = if !serving && !self.disabled_communities.is_empty() {
            &self.disabled_communities
        } else {
            &self.communities
        };
        if let Target::Draining { .. } = target {
            let mut draining = communities.clone();
            if !draining.contains(&self.drain_community) {
                draining.push(self.drain_community.clone());
            }
            write_list(body, "community", &draining);
        } else {
            write_list(body, "community", communities);
        }
        write_list(body, "extended-community", &self.extended_communities);
        write_list(body, "large-community", &self.large_communities);
        let state_path = match target {
            Target::Up { .. } | Target::Draining { .. } => &self.up_as_path,
            Target::Down => &self.down_as_path,
            Target::Disabled | Target::Gone => &self.disabled_as_path,
        };
        if let Some(path) = state_path.as_ref().or(self.as_path.as_ref()) {
            write!(body, " as-path [ {path} ]").ok();
        }
        if let Some(path_id) = self.path_id {
            write!(body, " path-information {path_id}").ok();
        }
    }

    /// Command prefixes naming the neighbors, one per line to write.
    fn selectors(&self) -> Vec<String> {
        match (self.dialect, self.neighbors.as_slice()) {
            (ApiDialect::V4, []) => vec![String::new()],
            (ApiDialect::V4, neighbors) => {
                let joined: Vec<String> =
                    neighbors.iter().map(|n| format!("neighbor {n}")).collect();
                vec![format!("{} ", joined.join(" , "))]
            }
            (ApiDialect::V6, []) => vec!["peer * ".to_string()],
            (ApiDialect::V6, neighbors) if neighbors.contains(&NeighborSelector::All) => {
                vec!["peer * ".to_string()]
            }
            (ApiDialect::V6, [neighbor]) => vec![format!("peer {neighbor} ")],
            // ExaBGP 6 answers `peer A, peer B announce ...` with `error`, and the bracket form
            // with one ACK for all of them (observed with the 6.0.0 snapshot): one line.
            (ApiDialect::V6, neighbors) => {
                let joined: Vec<String> = neighbors.iter().map(ToString::to_string).collect();
                vec![format!("peer [{}] ", joined.join(", "))]
            }
        }
    }
}

fn write_list(body: &mut String, keyword: &str, values: &[String]) {
    if !values.is_empty() {
        write!(body, " {keyword} [ {} ]", values.join(" ")).ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(prefixes: &[&str]) -> RoutePolicy {
        RoutePolicy {
            prefixes: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
            next_hop: NextHop::Local,
            next_hop6: NextHop::Local,
            up_metric: 100,
            down_metric: 1000,
            disabled_metric: 500,
            increase: 1,
            withdraw_on_down: false,
            local_preference: None,
            communities: vec![],
            extended_communities: vec![],
            large_communities: vec![],
            disabled_communities: vec![],
            drain_community: "65535:0".into(),
            as_path: None,
            up_as_path: None,
            down_as_path: None,
            disabled_as_path: None,
            path_id: None,
            neighbors: vec![],
            dialect: ApiDialect::V4,
        }
    }

    fn lines(policy: &RoutePolicy, target: Target) -> Vec<String> {
        policy
            .plan(target)
            .into_values()
            .flat_map(|a| a.lines)
            .collect()
    }

    #[test]
    fn exabgp_healthcheck_compatible_lines() {
        let mut p = policy(&["192.0.2.10/32", "192.0.2.11/32"]);
        p.communities = vec!["65000:1".into()];
        p.large_communities = vec!["65000:1:1".into()];
        p.as_path = Some("65000 65001".parse().unwrap());
        p.local_preference = Some(200);
        p.path_id = Some(PathId::Number(7));
        p.neighbors = vec![NeighborSelector::All];
        assert_eq!(
            lines(&p, Target::Up { penalty: 0 }),
            [
                "neighbor * announce route 192.0.2.10/32 next-hop self med 100 local-preference 200 community [ 65000:1 ] large-community [ 65000:1:1 ] as-path [ 65000 65001 ] path-information 7",
                "neighbor * announce route 192.0.2.11/32 next-hop self med 101 local-preference 200 community [ 65000:1 ] large-community [ 65000:1:1 ] as-path [ 65000 65001 ] path-information 7",
            ]
        );
        assert_eq!(
            lines(&p, Target::Gone),
            [
                "neighbor * withdraw route 192.0.2.10/32 next-hop self path-information 7",
                "neighbor * withdraw route 192.0.2.11/32 next-hop self path-information 7",
            ]
        );
        p.disabled_communities = vec!["65000:666".into()];
        p.down_as_path = Some("65000 65000 65000".parse().unwrap());
        assert_eq!(
            lines(&p, Target::Down)[0],
            "neighbor * announce route 192.0.2.10/32 next-hop self med 1000 local-preference 200 community [ 65000:666 ] large-community [ 65000:1:1 ] as-path [ 65000 65000 65000 ] path-information 7"
        );
        assert!(lines(&p, Target::Disabled)[1].contains(" med 501 "));
    }

    #[test]
    fn draining_adds_the_graceful_shutdown_community_to_the_up_announcement() {
        let mut p = policy(&["192.0.2.10/32"]);
        p.withdraw_on_down = true;
        assert_eq!(
            lines(&p, Target::Draining { penalty: 20 }),
            ["announce route 192.0.2.10/32 next-hop self med 120 community [ 65535:0 ]"]
        );
        p.communities = vec!["65000:1".into()];
        p.disabled_communities = vec!["65000:666".into()];
        p.drain_community = "65000:999".into();
        assert_eq!(
            lines(&p, Target::Draining { penalty: 0 }),
            ["announce route 192.0.2.10/32 next-hop self med 100 community [ 65000:1 65000:999 ]"]
        );
    }

    #[test]
    fn plain_form_without_neighbors_and_withdraw_on_down() {
        let mut p = policy(&["192.0.2.10/32"]);
        assert_eq!(
            lines(&p, Target::Down),
            ["announce route 192.0.2.10/32 next-hop self med 1000"]
        );
        p.withdraw_on_down = true;
        p.next_hop = "10.0.0.1".parse().unwrap();
        assert_eq!(
            lines(&p, Target::Down),
            ["withdraw route 192.0.2.10/32 next-hop 10.0.0.1"]
        );
        assert_eq!(
            lines(&p, Target::Disabled),
            ["withdraw route 192.0.2.10/32 next-hop 10.0.0.1"]
        );
        assert_eq!(
            lines(&p, Target::Up { penalty: 200 }),
            ["announce route 192.0.2.10/32 next-hop 10.0.0.1 med 300"]
        );
    }

    #[test]
    fn several_neighbors_and_ipv6_next_hop() {
        let mut p = policy(&["192.0.2.10/32", "2001:db8::10/128"]);
        p.neighbors = vec!["127.0.0.1".parse().unwrap(), "10.1.1.1".parse().unwrap()];
        p.next_hop6 = "2001:db8::1".parse().unwrap();
        p.extended_communities = vec!["target:65000:5".into()];
        assert_eq!(
            lines(&p, Target::Up { penalty: 0 }),
            [
                "neighbor 127.0.0.1 , neighbor 10.1.1.1 announce route 192.0.2.10/32 next-hop self med 100 extended-community [ target:65000:5 ]",
                "neighbor 127.0.0.1 , neighbor 10.1.1.1 announce route 2001:db8::10/128 next-hop 2001:db8::1 med 101 extended-community [ target:65000:5 ]",
            ]
        );
    }

    #[test]
    fn dialect_6() {
        let mut p = policy(&["192.0.2.10/32"]);
        p.dialect = ApiDialect::V6;
        assert_eq!(
            lines(&p, Target::Up { penalty: 0 }),
            ["peer * announce route 192.0.2.10/32 next-hop self med 100"]
        );
        assert_eq!(
            lines(&p, Target::Gone),
            ["peer * withdraw route 192.0.2.10/32 next-hop self"]
        );
        p.neighbors = vec!["127.0.0.1".parse().unwrap()];
        assert_eq!(
            lines(&p, Target::Down),
            ["peer 127.0.0.1 announce route 192.0.2.10/32 next-hop self med 1000"]
        );
    }

    #[test]
    fn dialect_6_several_neighbors_is_one_bracket_command() {
        let mut p = policy(&["192.0.2.10/32", "2001:db8::10/128"]);
        p.dialect = ApiDialect::V6;
        p.withdraw_on_down = true;
        p.neighbors = vec![
            "127.0.0.1".parse().unwrap(),
            "127.0.0.3".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        ];
        assert_eq!(
            lines(&p, Target::Up { penalty: 0 }),
            [
                "peer [127.0.0.1, 127.0.0.3, 2001:db8::2] announce route 192.0.2.10/32 next-hop self med 100",
                "peer [127.0.0.1, 127.0.0.3, 2001:db8::2] announce route 2001:db8::10/128 next-hop self med 101",
            ]
        );
        assert_eq!(
            lines(&p, Target::Down),
            [
                "peer [127.0.0.1, 127.0.0.3, 2001:db8::2] withdraw route 192.0.2.10/32 next-hop self",
                "peer [127.0.0.1, 127.0.0.3, 2001:db8::2] withdraw route 2001:db8::10/128 next-hop self",
            ]
        );
        // `*` among them means every peer anyway.
        p.neighbors.push(NeighborSelector::All);
        assert_eq!(
            lines(&p, Target::Gone)[0],
            "peer * withdraw route 192.0.2.10/32 next-hop self"
        );
        // Every plan has exactly one line per prefix, whatever the dialect and neighbors.
        for dialect in [ApiDialect::V4, ApiDialect::V6] {
            p.dialect = dialect;
            for action in p.plan(Target::Down).values() {
                assert_eq!(action.lines.len(), 1, "{action:?}");
            }
        }
    }

    proptest::proptest! {
        /// Every rendered command is exactly one printable ASCII line, whatever the numbers.
        #[test]
        fn commands_are_single_printable_lines(
            up in proptest::num::u32::ANY, down in proptest::num::u32::ANY,
            increase in proptest::num::u32::ANY, penalty in proptest::num::u32::ANY,
            count in 1usize..20, withdraw in proptest::bool::ANY,
        ) {
            let prefixes: Vec<String> = (0..count).map(|i| format!("192.0.2.{i}/32")).collect();
            let refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
            let mut p = policy(&refs);
            p.up_metric = up; p.down_metric = down; p.increase = increase; p.withdraw_on_down = withdraw;
            for target in [Target::Up { penalty }, Target::Down, Target::Disabled, Target::Gone] {
                let plan = p.plan(target);
                proptest::prop_assert_eq!(plan.len(), count);
                for line in plan.values().flat_map(|a| &a.lines) {
                    proptest::prop_assert!(line.bytes().all(|b| (0x20..0x7f).contains(&b)), "{:?}", line);
                }
            }
        }
    }
}
