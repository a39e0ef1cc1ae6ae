//! The reply matcher and the verdict, reachable from the fuzz target in `fuzz/` (feature
//! `fuzzing`; not an API).

use exaprobe_core::Outcome;
use exaprobe_core::kit::parse::Limits;

use crate::packet::{Timestamp, reply_to};
use crate::verdict::{Exchange, Thresholds, judge as verdict};

/// The verdict on `packet` as the reply to the request that carried `sent`, the local clock
/// reading `t1` when it left and `t4` when the packet came, with every level set (degraded
/// 0.1 s, down 1 s): `Err(why)` when the packet is not the reply.
pub fn judge(sent: u64, t1: u64, t4: u64, packet: &[u8]) -> Result<Outcome, &'static str> {
    let reply = reply_to(Timestamp(sent), packet)?;
    let limits =
        Limits::new(Some(0.1), Some(1.0), ("a", "b"), |v| v.to_string()).expect("0.1 is below 1");
    let thresholds = Thresholds {
        max_stratum: 15,
        root_distance: limits,
        offset: limits,
    };
    let exchange = Exchange {
        sent: Timestamp(t1),
        received: Timestamp(t4),
    };
    Ok(verdict(&reply, exchange, &thresholds, "192.0.2.1:123"))
}
