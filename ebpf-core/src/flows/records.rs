//! The iterator's output: a sequence of `oe_flow_sock` (events.h), decoded
//! without `unsafe` through the bindgen mirror; a short or odd record is
//! counted, never guessed at.

use std::net::{IpAddr, Ipv6Addr};

use ebpf_probes::abi::{
    oe_flow_event, oe_flow_sock, OE_FLOW_EV_CLOSE, OE_FLOW_EV_FAILED, OE_FLOW_EV_HANDSHAKE, OE_FLOW_EV_RESET,
    OE_FLOW_TCP,
};
use zerocopy::FromBytes;

use super::canonical;
use super::sockets::{Counters, SocketSample};

const RECORD: usize = std::mem::size_of::<oe_flow_sock>();

/// Every whole record of `bytes`, and how many could not be used (a cut
/// tail, an unknown protocol).
#[cfg(test)]
pub fn decode(bytes: &[u8]) -> (Vec<SocketSample>, u64) {
    (samples(bytes).collect(), bad_records(bytes))
}

/// Every usable record of `bytes`, decoded as it is read: a pass walks the
/// records rather than a decoded copy of them (~100 bytes per socket of
/// the host).
pub fn samples(bytes: &[u8]) -> impl Iterator<Item = SocketSample> + Clone + '_ {
    bytes.chunks_exact(RECORD).filter_map(|chunk| {
        let r = oe_flow_sock::read_from_bytes(chunk).ok()?;
        (u32::from(r.protocol) == OE_FLOW_TCP).then(|| sample(&r))
    })
}

/// How many records of `bytes` could not be used (a cut tail, an unknown
/// protocol).
pub fn bad_records(bytes: &[u8]) -> u64 {
    let unusable = bytes
        .chunks_exact(RECORD)
        .filter(|chunk| !oe_flow_sock::read_from_bytes(chunk).is_ok_and(|r| u32::from(r.protocol) == OE_FLOW_TCP))
        .count();
    unusable as u64 + u64::from(bytes.len() % RECORD != 0)
}

const EVENT: usize = std::mem::size_of::<oe_flow_event>();

/// A connection event (`oe_flow_event`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowEvent {
    /// The socket's last counters, at its destruction.
    Close(SocketSample),
    /// An active open completed its handshake in `ns`.
    Handshake(SocketSample, u64),
    /// An active open failed with `errno` (0: closed by its process).
    Failed(SocketSample, i32),
    /// A reset sent or received.
    Reset(SocketSample),
}

/// Every whole event of `bytes` (the ring's records, concatenated), and how
/// many could not be used.
pub fn decode_events(bytes: &[u8], out: &mut Vec<FlowEvent>) -> u64 {
    let mut bad = u64::from(bytes.len() % EVENT != 0);
    for chunk in bytes.chunks_exact(EVENT) {
        let Ok(e) = oe_flow_event::read_from_bytes(chunk) else {
            bad += 1;
            continue;
        };
        let s = sample(&e.sock);
        let event = match u32::from(e.kind) {
            OE_FLOW_EV_CLOSE => FlowEvent::Close(s),
            OE_FLOW_EV_HANDSHAKE => FlowEvent::Handshake(s, e.duration_ns),
            OE_FLOW_EV_FAILED => FlowEvent::Failed(s, e.err),
            OE_FLOW_EV_RESET => FlowEvent::Reset(s),
            _ => {
                bad += 1;
                continue;
            }
        };
        out.push(event);
    }
    bad
}

fn ip(bytes: [u8; 16]) -> IpAddr {
    canonical(IpAddr::V6(Ipv6Addr::from(bytes)))
}

fn sample(r: &oe_flow_sock) -> SocketSample {
    SocketSample {
        cookie: r.cookie,
        tgid: r.tgid,
        netns: r.netns,
        local: (ip(r.local_addr), r.local_port),
        peer: (ip(r.peer_addr), r.peer_port),
        state: r.state,
        counters: Counters {
            bytes_sent: r.bytes_sent,
            bytes_received: r.bytes_received,
            segs_out: u64::from(r.segs_out),
            segs_in: u64::from(r.segs_in),
            retrans: u64::from(r.total_retrans),
        },
        srtt_us: r.srtt_us,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record laid out as events.h says (offsets checked by bindgen's layout tests).
    fn record(cookie: u64, tgid: u32, protocol: u8) -> Vec<u8> {
        let mut b = vec![0u8; RECORD];
        b[0..8].copy_from_slice(&cookie.to_ne_bytes());
        b[8..16].copy_from_slice(&(1u64 << 40).to_ne_bytes()); // bytes_sent
        b[24..28].copy_from_slice(&tgid.to_ne_bytes());
        b[44..48].copy_from_slice(&1234u32.to_ne_bytes()); // srtt_us
        b[48 + 10] = 0xff;
        b[48 + 11] = 0xff;
        b[60..64].copy_from_slice(&[10, 0, 0, 1]);
        b[64..80].copy_from_slice(&"fd00::2".parse::<Ipv6Addr>().unwrap().octets());
        b[80..82].copy_from_slice(&40000u16.to_ne_bytes());
        b[82..84].copy_from_slice(&443u16.to_ne_bytes());
        b[86] = 1; // ESTABLISHED
        b[87] = protocol;
        b
    }

    #[test]
    fn records_decode_and_a_cut_tail_is_counted() {
        assert_eq!(RECORD, 88);
        let mut bytes = record(5, 77, OE_FLOW_TCP as u8);
        bytes.extend(record(6, 78, OE_FLOW_TCP as u8));
        bytes.extend_from_slice(&[0; 7]);
        let (samples, bad) = decode(&bytes);
        assert_eq!((samples.len(), bad), (2, 1));
        let s = &samples[0];
        assert_eq!(s.local, ("10.0.0.1".parse().unwrap(), 40000));
        assert_eq!(s.peer, ("fd00::2".parse().unwrap(), 443));
        assert_eq!((s.cookie, s.tgid, s.counters.bytes_sent, s.srtt_us, s.state), (5, 77, 1 << 40, 1234, 1));
        assert_eq!(decode(&record(1, 1, 99)).1, 1);
    }

    #[test]
    fn events_decode_by_kind() {
        assert_eq!(EVENT, 104);
        let event = |kind: u32, duration: u64, err: i32| {
            let mut b = record(5, 77, OE_FLOW_TCP as u8);
            b.extend_from_slice(&duration.to_ne_bytes());
            b.extend_from_slice(&err.to_ne_bytes());
            b.extend_from_slice(&[kind as u8, 0, 0, 0]);
            b
        };
        let mut bytes = event(OE_FLOW_EV_HANDSHAKE, 20_000_000, 0);
        bytes.extend(event(OE_FLOW_EV_FAILED, 0, 111));
        bytes.extend(event(OE_FLOW_EV_CLOSE, 0, 0));
        bytes.extend(event(OE_FLOW_EV_RESET, 0, 0));
        bytes.extend(event(9, 0, 0));
        let mut out = Vec::new();
        assert_eq!(decode_events(&bytes, &mut out), 1);
        let (s, _) = decode(&record(5, 77, OE_FLOW_TCP as u8));
        let s = s[0].clone();
        assert_eq!(
            out,
            [
                FlowEvent::Handshake(s.clone(), 20_000_000),
                FlowEvent::Failed(s.clone(), 111),
                FlowEvent::Close(s.clone()),
                FlowEvent::Reset(s)
            ]
        );
    }
}
