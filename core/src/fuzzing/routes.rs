//! Route and attribute parsers (`core/src/engine/route.rs`) and the renderer (`core/src/engine/render.rs`).
//!
//! Input: byte 0 holds switches (dialect, withdraw-on-down, local preference, path id), the rest
//! is text split on NUL into the values of a route policy (prefixes, next hops, community lists,
//! AS paths, path id, neighbors); values that do not parse are left out, as the option parser
//! would refuse them. Properties:
//! - a value any parser accepts displays as printable ASCII without spaces (AS paths: single
//!   spaces between numbers), and displays the same after a second parse (stable);
//! - every line the policy renders, in every state and both dialects, is one printable line
//!   that parses as exactly one ExaBGP route command with well-formed values
//!   (`check_routes`).
//!
//! Checks shared by the fuzz targets.
//!
//! [`check_routes`] is the renderer's safety property: every line a `RoutePolicy` renders, in
//! every state, is one printable ASCII line that parses as exactly one ExaBGP route command with
//! well-formed values (so no option or config value can inject a second command).

use std::fmt::Display;
use std::str::FromStr;

use crate::engine::dialect::ApiDialect;
use crate::engine::render::{RoutePolicy, Target};
use crate::engine::route::{
    AsPath, CommunityList, ExtendedCommunityList, LargeCommunityList, NeighborSelector, NextHop,
    PathId, Prefix, Values,
};

fn safe_word(word: &str) -> bool {
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ":./-*".contains(c))
}

/// Parse, check the display, and check that displaying is stable under a second parse.
fn parsed<T: FromStr + Display>(text: &str) -> Option<T> {
    let value = text.parse::<T>().ok()?;
    let shown = value.to_string();
    assert!(
        shown.split(' ').all(safe_word),
        "unsafe display {shown:?} of {text:?}"
    );
    let again = shown
        .parse::<T>()
        .unwrap_or_else(|_| panic!("{shown:?} (from {text:?}) does not parse back"));
    assert_eq!(again.to_string(), shown, "unstable display of {text:?}");
    Some(value)
}

fn list(text: &str, parse: impl Fn(&str) -> Option<Vec<String>>) -> Vec<String> {
    let words = parse(text).unwrap_or_default();
    for word in &words {
        assert!(safe_word(word), "unsafe list value {word:?} from {text:?}");
    }
    words
}

/// One route_render input (see the module documentation).
pub fn route_render(data: &[u8]) {
    let [switches, rest @ ..] = data else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let fields: Vec<&str> = text.split('\0').collect();
    let field = |index: usize| fields.get(index).copied().unwrap_or("");

    // Every parser on every field.
    for value in &fields {
        parsed::<Prefix>(value);
        parsed::<NextHop>(value);
        parsed::<AsPath>(value);
        parsed::<PathId>(value);
        parsed::<NeighborSelector>(value);
        list(value, |t| {
            t.parse::<CommunityList>().ok().map(|l| l.values().to_vec())
        });
        list(value, |t| {
            t.parse::<ExtendedCommunityList>()
                .ok()
                .map(|l| l.values().to_vec())
        });
        list(value, |t| {
            t.parse::<LargeCommunityList>()
                .ok()
                .map(|l| l.values().to_vec())
        });
    }

    let mut prefixes: Vec<Prefix> = Vec::new();
    for value in field(0).split('|') {
        if let Some(prefix) = parsed::<Prefix>(value)
            && !prefixes.contains(&prefix)
        {
            prefixes.push(prefix);
        }
    }
    if prefixes.is_empty() {
        return;
    }
    let communities = |index| {
        list(field(index), |t| {
            t.parse::<CommunityList>().ok().map(|l| l.values().to_vec())
        })
    };
    let policy = RoutePolicy {
        prefixes,
        next_hop: parsed(field(1)).unwrap_or(NextHop::Local),
        next_hop6: parsed(field(2)).unwrap_or(NextHop::Local),
        up_metric: 100,
        down_metric: 1000,
        disabled_metric: 500,
        increase: 1,
        withdraw_on_down: switches & 2 != 0,
        local_preference: (switches & 4 != 0).then_some(200),
        communities: communities(3),
        extended_communities: list(field(4), |t| {
            t.parse::<ExtendedCommunityList>()
                .ok()
                .map(|l| l.values().to_vec())
        }),
        large_communities: list(field(5), |t| {
            t.parse::<LargeCommunityList>()
                .ok()
                .map(|l| l.values().to_vec())
        }),
        disabled_communities: communities(6),
        drain_community: communities(12)
            .into_iter()
            .next()
            .unwrap_or_else(|| "65535:0".into()),
        as_path: parsed(field(7)),
        up_as_path: parsed(field(8)),
        down_as_path: parsed(field(9)),
        disabled_as_path: None,
        path_id: if switches & 8 != 0 {
            parsed(field(10))
        } else {
            None
        },
        neighbors: field(11).split('|').filter_map(parsed).collect(),
        dialect: if switches & 1 != 0 {
            ApiDialect::V6
        } else {
            ApiDialect::V4
        },
    };
    check_routes(&policy);
}

use std::net::{IpAddr, Ipv4Addr};

/// Render `policy` in every state and check each line (panics, for libFuzzer, on a bad one).
pub(crate) fn check_routes(policy: &RoutePolicy) {
    for target in [
        Target::Up { penalty: 0 },
        Target::Up { penalty: 7 },
        Target::Draining { penalty: 3 },
        Target::Down,
        Target::Disabled,
        Target::Gone,
    ] {
        let plan = policy.plan(target);
        assert_eq!(plan.len(), policy.prefixes.len().min(plan.len()));
        for (prefix, action) in plan {
            // One command per prefix in both dialects (ExaBGP 6 takes `peer [A, B] ...`).
            assert_eq!(action.lines.len(), 1, "{:?}", action.lines);
            for line in &action.lines {
                check_line(
                    line,
                    policy.dialect,
                    &prefix.to_string(),
                    action.announces(),
                );
            }
        }
    }
}

/// One rendered command: printable ASCII, single spaces, and the grammar of one route command.
fn check_line(line: &str, dialect: ApiDialect, prefix: &str, announce: bool) {
    assert!(
        line.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "non-printable byte in {line:?}"
    );
    assert!(
        !line.contains("  ") && !line.starts_with(' ') && !line.ends_with(' '),
        "{line:?}"
    );
    let mut tokens = line.split(' ').peekable();
    let mut next = || {
        tokens
            .next()
            .unwrap_or_else(|| panic!("{line:?} ends early"))
    };
    // Neighbor selectors.
    let mut verb = next();
    match dialect {
        ApiDialect::V4 => {
            while verb == "neighbor" {
                let peer = next();
                assert!(
                    peer == "*" || peer.parse::<IpAddr>().is_ok(),
                    "neighbor {peer:?} in {line:?}"
                );
                verb = next();
                if verb == "," {
                    verb = next();
                    assert_eq!(verb, "neighbor", "{line:?}");
                }
            }
        }
        ApiDialect::V6 => {
            assert_eq!(verb, "peer", "{line:?}");
            let mut peer = next();
            if let Some(first) = peer.strip_prefix('[') {
                // `peer [A, B] ...`: addresses until the closing bracket.
                let mut address = first.to_string();
                loop {
                    let last = address.ends_with(']');
                    let ip = address.trim_end_matches(']').trim_end_matches(',');
                    assert!(ip.parse::<IpAddr>().is_ok(), "peer {ip:?} in {line:?}");
                    if last {
                        break;
                    }
                    address = next().to_string();
                }
                peer = "*";
            }
            assert!(
                peer == "*" || peer.parse::<IpAddr>().is_ok(),
                "peer {peer:?} in {line:?}"
            );
            verb = next();
        }
    }
    assert_eq!(
        verb,
        if announce { "announce" } else { "withdraw" },
        "{line:?}"
    );
    assert_eq!(next(), "route", "{line:?}");
    assert_eq!(next(), prefix, "{line:?}");
    assert_eq!(next(), "next-hop", "{line:?}");
    let hop = next();
    assert!(
        hop == "self" || hop.parse::<IpAddr>().is_ok(),
        "next hop {hop:?} in {line:?}"
    );
    // Attributes, each at most once, in the renderer's order.
    let order = [
        "med",
        "local-preference",
        "community",
        "extended-community",
        "large-community",
        "as-path",
        "path-information",
    ];
    let mut position = 0;
    while let Some(keyword) = tokens.next() {
        let at = order[position..]
            .iter()
            .position(|k| *k == keyword)
            .unwrap_or_else(|| panic!("unexpected {keyword:?} in {line:?}"));
        position += at + 1;
        if !announce {
            assert_eq!(
                keyword, "path-information",
                "withdraw with {keyword}: {line:?}"
            );
        }
        let value_ok: fn(&str) -> bool = match keyword {
            "med" | "local-preference" => |v| v.parse::<u32>().is_ok(),
            "path-information" => |v| v.parse::<u32>().is_ok() || v.parse::<Ipv4Addr>().is_ok(),
            "community" => community,
            "extended-community" => extended_community,
            "large-community" => |v| {
                let parts: Vec<&str> = v.split(':').collect();
                parts.len() == 3 && parts.iter().all(|p| decimal_u32(p))
            },
            _ => decimal_u32, // as-path
        };
        if matches!(keyword, "med" | "local-preference" | "path-information") {
            let value = tokens
                .next()
                .unwrap_or_else(|| panic!("{line:?} ends early"));
            assert!(value_ok(value), "{keyword} {value:?} in {line:?}");
            continue;
        }
        assert_eq!(tokens.next(), Some("["), "{line:?}");
        let mut count = 0;
        loop {
            let value = tokens
                .next()
                .unwrap_or_else(|| panic!("unclosed list in {line:?}"));
            if value == "]" {
                break;
            }
            assert!(value_ok(value), "{keyword} value {value:?} in {line:?}");
            count += 1;
        }
        assert!(count > 0, "empty {keyword} list in {line:?}");
    }
}

/// A canonical decimal u32 (no sign, no leading zeros): what ExaBGP reads back unchanged.
fn decimal_u32(text: &str) -> bool {
    text.parse::<u32>().is_ok_and(|n| n.to_string() == text)
}

fn community(value: &str) -> bool {
    const NAMES: &[&str] = &[
        "no-export",
        "no-advertise",
        "no-export-subconfed",
        "nopeer",
        "blackhole",
    ];
    NAMES.contains(&value)
        || value.split_once(':').is_some_and(|(high, low)| {
            decimal_u32(high)
                && decimal_u32(low)
                && high.parse::<u16>().is_ok()
                && low.parse::<u16>().is_ok()
        })
}

/// An extended community ExaBGP 4.2/5.0 encodes (`_extended_community` in its
/// `configuration/static/parser.py`): plain decimal numbers, and 6 value bytes: `target`/`origin`
/// take a 2-byte ASN with a 4-byte number, or a 4-byte ASN or IPv4 with a 2-byte number;
/// `redirect` only a 2-byte ASN with a 4-byte number.
fn extended_community(value: &str) -> bool {
    if let Some(hex) = value.strip_prefix("0x") {
        return hex.len() == 16
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    }
    let digits = |text: &str| -> Option<u64> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse::<u64>().ok()
    };
    let parts: Vec<&str> = value.split(':').collect();
    let [kind, admin, assigned] = parts[..] else {
        return false;
    };
    let Some(assigned) = digits(assigned) else {
        return false;
    };
    match (kind, digits(admin)) {
        ("target" | "origin" | "redirect", Some(asn)) if asn <= 0xFFFF => assigned <= 0xFFFF_FFFF,
        ("target" | "origin", Some(asn)) => asn <= 0xFFFF_FFFF && assigned <= 0xFFFF,
        ("target" | "origin", None) => admin.parse::<Ipv4Addr>().is_ok() && assigned <= 0xFFFF,
        _ => false,
    }
}
