//! MQTT control packets: the fixed header (type, flags, remaining length),
//! and the fields read from each packet's variable header. Everything read
//! lies in a packet's first bytes, so only the captured prefix of a body is
//! consulted.

use crate::protocol::lenframe::Head;

pub(super) const CONNECT: u8 = 1;
pub(super) const CONNACK: u8 = 2;
pub(super) const PUBLISH: u8 = 3;
pub(super) const PUBACK: u8 = 4;
pub(super) const PUBREC: u8 = 5;
pub(super) const PUBREL: u8 = 6;
pub(super) const PUBCOMP: u8 = 7;
pub(super) const SUBSCRIBE: u8 = 8;
pub(super) const SUBACK: u8 = 9;
pub(super) const UNSUBSCRIBE: u8 = 10;
pub(super) const UNSUBACK: u8 = 11;
pub(super) const PINGREQ: u8 = 12;
pub(super) const PINGRESP: u8 = 13;
pub(super) const DISCONNECT: u8 = 14;
pub(super) const AUTH: u8 = 15;

/// Largest packet: the remaining length's maximum (256 MiB).
const MAX_REMAINING: u64 = 268_435_455;

/// Whether the first byte is a packet type with the flags the
/// specification fixes for it (PUBLISH: any but QoS 3).
fn valid_first_byte(b: u8) -> bool {
    let (typ, flags) = (b >> 4, b & 0x0f);
    match typ {
        PUBLISH => (flags >> 1) & 3 != 3,
        PUBREL | SUBSCRIBE | UNSUBSCRIBE => flags == 2,
        CONNECT | CONNACK | PUBACK | PUBREC | PUBCOMP | SUBACK | UNSUBACK | PINGREQ | PINGRESP | DISCONNECT | AUTH => {
            flags == 0
        }
        _ => false,
    }
}

/// Whether a packet type may travel from the client (`true`) or the broker.
pub(super) fn sent_by(typ: u8, from_client: bool) -> bool {
    match typ {
        CONNECT | SUBSCRIBE | UNSUBSCRIBE | PINGREQ => from_client,
        CONNACK | SUBACK | UNSUBACK | PINGRESP => !from_client,
        _ => true,
    }
}

/// The fixed header: the first byte, then the remaining length (a varint
/// of 1 to 4 bytes).
pub(super) fn head(h: &[u8]) -> Head {
    let Some(&first) = h.first() else { return Head::Need(2) };
    if !valid_first_byte(first) {
        return Head::Bad;
    }
    let mut len = 0u64;
    for (i, &b) in h[1..].iter().enumerate() {
        len |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            // A non-minimal encoding (a trailing zero continuation) is not MQTT.
            if i > 0 && b == 0 {
                return Head::Bad;
            }
            return Head::Frame { head_len: i + 2, body_len: len };
        }
        if i == 3 {
            return Head::Bad;
        }
    }
    debug_assert!(len <= MAX_REMAINING);
    Head::Need(h.len() + 1)
}

/// A big-endian u16 at `i`.
pub(super) fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

/// A length-prefixed string at `i`: its bytes and the offset after it.
pub(super) fn string_at(b: &[u8], i: usize) -> Option<(&[u8], usize)> {
    let n = usize::from(u16_at(b, i)?);
    let s = b.get(i + 2..i + 2 + n)?;
    Some((s, i + 2 + n))
}

/// A variable byte integer at `i`: its value and the offset after it.
pub(super) fn varint_at(b: &[u8], i: usize) -> Option<(u32, usize)> {
    let mut v = 0u32;
    for k in 0..4 {
        let byte = *b.get(i + k)?;
        v |= u32::from(byte & 0x7f) << (7 * k);
        if byte & 0x80 == 0 {
            return Some((v, i + k + 1));
        }
    }
    None
}

/// MQTT 5 properties at `i`: the offset after them, and the topic alias if
/// one is among them (the other properties are skipped).
pub(super) fn properties_at(b: &[u8], i: usize) -> Option<(usize, Option<u16>)> {
    let (len, start) = varint_at(b, i)?;
    let end = start.checked_add(len as usize)?;
    let props = b.get(start..end)?;
    let mut k = 0;
    let mut alias = None;
    while k < props.len() {
        let (id, next) = varint_at(props, k)?;
        k = next;
        k += match id {
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2a => 1,
            0x13 | 0x21 | 0x22 => 2,
            0x23 => {
                alias = Some(u16_at(props, k)?);
                2
            }
            0x02 | 0x11 | 0x18 | 0x27 => 4,
            0x0b => varint_at(props, k)?.1 - k,
            0x03 | 0x08 | 0x09 | 0x12 | 0x15 | 0x16 | 0x1a | 0x1c | 0x1f => string_at(props, k)?.1 - k,
            0x26 => string_at(props, string_at(props, k)?.1)?.1 - k,
            _ => return None,
        };
        if k > props.len() {
            return None;
        }
    }
    Some((end, alias))
}

/// A topic or filter as telemetry may carry it: UTF-8 without control
/// characters (the specification forbids U+0000 and discourages the
/// others), at most `MAX_TOPIC_BYTES`.
pub(super) fn topic_text(b: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(b).ok()?;
    (b.len() <= super::MAX_TOPIC_BYTES && !s.chars().any(char::is_control)).then_some(s)
}

/// The CONNECT's protocol level and client id.
pub(super) fn connect(b: &[u8]) -> Option<(u8, &[u8])> {
    let (name, i) = string_at(b, 0)?;
    let level = *b.get(i)?;
    match (name, level) {
        (b"MQTT", 4 | 5) | (b"MQIsdp", 3) => {}
        _ => return None,
    }
    // Level, connect flags, keep alive.
    let mut i = i + 4;
    if level == 5 {
        i = properties_at(b, i)?.0;
    }
    let (id, _) = string_at(b, i)?;
    Some((level, id))
}

/// Whether a connection's first bytes are a CONNECT packet.
pub fn looks_like_connect(data: &[u8]) -> bool {
    let Head::Frame { head_len, .. } = (2..=5.min(data.len())).fold(Head::Need(2), |h, n| match h {
        Head::Need(_) => head(&data[..n]),
        done => done,
    }) else {
        return false;
    };
    data[0] >> 4 == CONNECT && connect(&data[head_len..]).is_some()
}

/// What a PUBLISH says.
#[derive(Debug)]
pub(super) struct Publish<'a> {
    pub topic: &'a [u8],
    pub packet_id: Option<u16>,
    pub alias: Option<u16>,
    /// The payload's size, when the properties' length was read (or there are none).
    pub payload: Option<u64>,
}

/// Reads a PUBLISH's variable header; `v5`: whether properties follow the
/// packet identifier (`None`: the protocol level is unknown).
pub(super) fn publish(b: &[u8], flags: u8, body_len: u64, v5: Option<bool>) -> Option<Publish<'_>> {
    let qos = (flags >> 1) & 3;
    let (topic, mut i) = string_at(b, 0)?;
    let packet_id = if qos > 0 {
        let id = u16_at(b, i)?;
        i += 2;
        if id == 0 {
            return None;
        }
        Some(id)
    } else {
        None
    };
    let (payload, alias) = match v5 {
        Some(true) => match properties_at(b, i) {
            Some((end, alias)) => (body_len.checked_sub(end as u64), alias),
            None => (None, None),
        },
        Some(false) => (body_len.checked_sub(i as u64), None),
        None => (None, None),
    };
    Some(Publish { topic, packet_id, alias, payload })
}
