//! Route and attribute parsers (`core/src/route.rs`) and the renderer (`core/src/render.rs`).
//!
//! Input: byte 0 holds switches (dialect, withdraw-on-down, local preference, path id), the rest
//! is text split on NUL into the values of a route policy (prefixes, next hops, community lists,
//! AS paths, path id, neighbors); values that do not parse are left out, as the option parser
//! would refuse them. Properties:
//! - a value any parser accepts displays as printable ASCII without spaces (AS paths: single
//!   spaces between numbers), and displays the same after a second parse (stable);
//! - every line the policy renders, in every state and both dialects, is one printable line
//!   that parses as exactly one ExaBGP route command with well-formed values
//!   ([`exaprobe_fuzz::check_routes`]).
#![no_main]

use std::fmt::Display;
use std::str::FromStr;

use exaprobe_core::options::ApiDialect;
use exaprobe_core::render::RoutePolicy;
use exaprobe_core::route::{
    AsPath, CommunityList, ExtendedCommunityList, LargeCommunityList, NeighborSelector, NextHop,
    PathId, Prefix,
};
use libfuzzer_sys::fuzz_target;

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

fuzz_target!(|data: &[u8]| {
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
        list(value, |t| t.parse::<CommunityList>().ok().map(|l| l.0));
        list(value, |t| {
            t.parse::<ExtendedCommunityList>().ok().map(|l| l.0)
        });
        list(value, |t| t.parse::<LargeCommunityList>().ok().map(|l| l.0));
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
            t.parse::<CommunityList>().ok().map(|l| l.0)
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
            t.parse::<ExtendedCommunityList>().ok().map(|l| l.0)
        }),
        large_communities: list(field(5), |t| {
            t.parse::<LargeCommunityList>().ok().map(|l| l.0)
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
    exaprobe_fuzz::check_routes(&policy);
});
