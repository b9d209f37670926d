//! The bytes the store reads and writes: a session record's client, the two
//! expiries strict mode reads from a user's key outside any script, and the
//! scripts' replies. The record layout itself is described once, in
//! `lua/records.lua`; what is read here follows it.

use std::net::IpAddr;

use fred::types::Value;

use crate::store::{ClientMeta, Successor};
use crate::{Country, Error, Result, SessionId};

/// The client as a session record holds it: the country (2 bytes, zeros for
/// none; the script writes "=" instead when it is the login country), the
/// address (a length byte, 0, 4 or 16, then its bytes) and the user-agent
/// summary.
pub(crate) fn encode_client(client: &ClientMeta) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    match client.country {
        Some(c) => out.extend_from_slice(c.as_str().as_bytes()),
        None => out.extend_from_slice(&[0, 0]),
    }
    match client.ip {
        None => out.push(0),
        Some(IpAddr::V4(ip)) => {
            out.push(4);
            out.extend_from_slice(&ip.octets());
        }
        Some(IpAddr::V6(ip)) => {
            out.push(16);
            out.extend_from_slice(&ip.octets());
        }
    }
    if let Some(ua) = client.stored_user_agent() {
        out.extend_from_slice(ua.as_bytes());
    }
    out
}

/// Reads [`encode_client`]'s bytes back; `login_country` is the record's.
pub(crate) fn decode_client(bytes: &[u8], login_country: &[u8]) -> Option<ClientMeta> {
    let (country, rest) = match bytes {
        [b'=', rest @ ..] => (country_of(login_country), rest),
        [a, b, rest @ ..] => (country_of(&[*a, *b]), rest),
        _ => return None,
    };
    let (ip, ua) = match rest {
        [0, ua @ ..] => (None, ua),
        [4, ip @ ..] if ip.len() >= 4 => {
            let (ip, ua) = ip.split_at(4);
            let ip: [u8; 4] = ip.try_into().ok()?;
            (Some(IpAddr::from(ip)), ua)
        }
        [16, ip @ ..] if ip.len() >= 16 => {
            let (ip, ua) = ip.split_at(16);
            let ip: [u8; 16] = ip.try_into().ok()?;
            (Some(IpAddr::from(ip)), ua)
        }
        _ => return None,
    };
    let user_agent = std::str::from_utf8(ua)
        .ok()
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Some(ClientMeta {
        ip,
        country,
        user_agent,
    })
}

fn country_of(bytes: &[u8]) -> Option<Country> {
    std::str::from_utf8(bytes).ok().and_then(Country::new)
}

/// The absolute and idle expiries (ms) of `sid`'s record in a user's key,
/// laid out as `lua/records.lua` says: each record `I2 length .. body`, the
/// body the sid (22 bytes) then STATE, whose absolute and idle expiries are
/// its 6-byte numbers at 17 and 23. `None` if no record is the sid's.
pub(crate) fn expiries(key: &[u8], sid: &SessionId) -> Option<(u64, u64)> {
    const SID: usize = 22;
    let mut rest = key;
    while let [h, l, after @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*h, *l]));
        let body = after.get(..len)?;
        if body.get(..SID) == Some(sid.as_str().as_bytes()) {
            let state = body.get(SID..SID + 29)?;
            return Some((be(&state[17..23]), be(&state[23..29])));
        }
        rest = &after[len..];
    }
    None
}

/// A rotation's answer (`lua/rotate.lua`): its code, and the successor.
pub(crate) fn successor(b: &[u8]) -> Result<(u8, Successor)> {
    if b.len() != 25 {
        return Err(bad_reply());
    }
    Ok((
        b[0],
        Successor {
            generation: be(&b[1..5]),
            rotated_at_ms: be(&b[5..11]),
            expires_at_ms: be(&b[11..17]),
            absolute_expiry_ms: be(&b[17..23]),
            login_country: country_of(&b[23..25]),
        },
    ))
}

/// A big-endian unsigned number of up to 8 bytes.
fn be(b: &[u8]) -> u64 {
    b.iter().fold(0, |n, &x| n << 8 | u64::from(x))
}

// ---- replies ----------------------------------------------------------------

pub(super) fn int(v: &Value) -> Result<u64> {
    match v {
        Value::Integer(i) => Ok((*i).max(0) as u64),
        Value::String(s) => s.parse().map_err(|_| bad_reply()),
        Value::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad_reply),
        _ => Err(bad_reply()),
    }
}

pub(super) fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string()),
        Value::Bytes(b) => String::from_utf8(b.to_vec()).ok(),
        _ => None,
    }
    .filter(|s| !s.is_empty())
}

pub(super) fn bytes(v: &Value) -> &[u8] {
    v.as_bytes().unwrap_or_default()
}

pub(super) fn array(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a),
        Value::Null => Ok(Vec::new()),
        _ => Err(bad_reply()),
    }
}

/// `TIME`'s answer (seconds, microseconds) in milliseconds, as the
/// scripts' clock reckons it.
pub(super) fn time_ms(time: &Value) -> Result<u64> {
    match time {
        Value::Array(t) if t.len() == 2 => Ok(int(&t[0])? * 1000 + int(&t[1])? / 1000),
        _ => Err(bad_reply()),
    }
}

pub(super) fn bad_reply() -> Error {
    Error::Internal("unexpected reply from the Redis store".into())
}

#[cfg(test)]
mod tests {
    use super::{SessionId, expiries};

    /// A record as `lua/records.lua` lays it out: sid, STATE (generation,
    /// created, last rotation, absolute and idle expiry, request id), login
    /// country, client.
    fn record(sid: &SessionId, absolute: u64, idle: u64, client: &[u8]) -> Vec<u8> {
        let mut body = sid.as_str().as_bytes().to_vec();
        body.extend_from_slice(&7u32.to_be_bytes());
        body.extend_from_slice(&[0; 7]);
        body.extend_from_slice(&[0; 6]);
        body.extend_from_slice(&absolute.to_be_bytes()[2..]);
        body.extend_from_slice(&idle.to_be_bytes()[2..]);
        body.extend_from_slice(&0u32.to_be_bytes());
        body.extend_from_slice(b"DE");
        body.extend_from_slice(client);
        let mut out = (body.len() as u16).to_be_bytes().to_vec();
        out.extend(body);
        out
    }

    #[test]
    fn expiries_are_read_from_the_sessions_record_only() {
        let (a, b) = (SessionId::random(), SessionId::random());
        // b's id inside a's client text, as a user agent may carry it
        let key = [
            record(&a, 1_000, 2_000, format!("= {}", b.as_str()).as_bytes()),
            record(&b, 3_000, 4_000, b""),
        ]
        .concat();
        assert_eq!(expiries(&key, &a), Some((1_000, 2_000)));
        assert_eq!(expiries(&key, &b), Some((3_000, 4_000)));
        let only_a = record(&a, 1_000, 2_000, format!("= {}", b.as_str()).as_bytes());
        assert_eq!(
            expiries(&only_a, &b),
            None,
            "an id in a user agent is no record"
        );
        assert_eq!(expiries(b"", &a), None);
    }

    #[test]
    fn a_damaged_key_reads_as_no_record_without_panicking() {
        let a = SessionId::random();
        let key = record(&a, 1_000, 2_000, b"client");
        assert_eq!(expiries(&key, &a), Some((1_000, 2_000)));
        for cut in 0..key.len() {
            assert_eq!(expiries(&key[..cut], &a), None, "cut at {cut}");
        }
        // a length past the end of the key
        let mut long = key.clone();
        long[0] = 0xff;
        assert_eq!(expiries(&long, &a), None);
    }
}
