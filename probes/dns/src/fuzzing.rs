//! The answer matcher, reachable from the fuzz targets in `fuzz/` (feature `fuzzing`; not an API).

use hickory_proto::op::Message;

/// Why the bytes `answer` are not the reply to the bytes `query`: `Err` when either does not
/// parse, `Ok(Some(why))` for a mismatch, `Ok(None)` for the reply.
pub fn judge(query: &[u8], answer: &[u8]) -> Result<Option<&'static str>, String> {
    let query = Message::from_vec(query).map_err(|e| e.to_string())?;
    let answer = Message::from_vec(answer).map_err(|e| e.to_string())?;
    Ok(crate::exchange::mismatch(&query, &answer))
}
