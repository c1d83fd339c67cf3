//! Decodes one ring-buffer record. The layouts come from `events.h` through
//! bindgen (`ebpf_probes::abi`), so they cannot drift from the kernel side;
//! anything unexpected is an error value, never a panic.

use std::net::{IpAddr, Ipv6Addr};

use ebpf_probes::abi::{self, oe_conn_open, oe_data_meta, oe_event_header, oe_proc_exec};
use zerocopy::{FromBytes, IntoBytes};

use crate::protocol::Direction;

/// Fields every event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub ts_ns: u64,
    /// The process that read or wrote (opened, exited...).
    pub tgid: u32,
    pub tid: u32,
    /// The connection (its socket's cookie: unique per socket for the boot,
    /// never reused); 0 for process events.
    pub conn_id: u64,
}

/// What carries a connection's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A byte stream: protocol parsers follow it.
    Tcp,
    /// Datagrams: captured (prefix only) but parsed by no protocol yet.
    Udp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnOpen {
    /// For an unconnected UDP socket the peer is unspecified (`::`, port 0):
    /// each datagram may have another.
    pub local: (IpAddr, u16),
    pub peer: (IpAddr, u16),
    /// `OE_ROLE_*`: which end the traced process holds, as the kernel judged.
    pub role: u16,
    pub transport: Transport,
    /// Task name at the time (15 bytes at most).
    pub comm: String,
    /// The executable's file name (not truncated); empty for kernel threads.
    pub exe: String,
    /// The process's parent (its identity stands in for a fork gone too soon).
    pub parent_tgid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataEvent<'a> {
    pub direction: Direction,
    pub total_len: u32,
    pub payload: &'a [u8],
    /// Position in the connection's data events; a jump means the kernel
    /// lost events in between. None when the kernel could not number it.
    pub seq: Option<u32>,
    /// Plaintext of a TLS connection, from the OpenSSL probes; false for
    /// bytes seen at the socket (plaintext, or ciphertext of a TLS connection
    /// not yet known as such).
    pub tls: bool,
    /// It overlapped a send of its connection still in the kernel
    /// (`OE_DATA_F_OVERLAP`): a receive that may have to wait for that send,
    /// or that send (`conntrack` orders them back).
    pub overlap: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    ConnOpen(Header, ConnOpen),
    Data(Header, DataEvent<'a>),
    ConnClose(Header),
    ProcessExit(Header),
    /// The process exec()ed a new image; carries its new task name.
    ProcessExec(Header, String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {len} bytes is shorter than the {need}-byte {what}")]
    Truncated { what: &'static str, len: usize, need: usize },
    #[error("unknown event kind {0}")]
    UnknownKind(u32),
    #[error("unknown data direction {0}")]
    UnknownDirection(u16),
    #[error("unknown transport {0}")]
    UnknownTransport(u16),
    #[error("data event claims {captured} captured bytes but carries {available}")]
    BadCapturedLen { captured: u32, available: usize },
}

fn read<T: FromBytes>(bytes: &[u8], what: &'static str) -> Result<T, DecodeError> {
    T::read_from_prefix(bytes).map(|(v, _)| v).map_err(|_| DecodeError::Truncated {
        what,
        len: bytes.len(),
        need: size_of::<T>(),
    })
}

fn header(h: &oe_event_header) -> Header {
    Header { ts_ns: h.ts_ns, tgid: h.tgid, tid: h.tid, conn_id: h.conn_id }
}

/// IPv4 travels as IPv4-mapped IPv6; give it back as IPv4.
fn addr(bytes: [u8; 16]) -> IpAddr {
    let v6 = Ipv6Addr::from(bytes);
    match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    }
}

/// A NUL-terminated (or full) C char array as text.
fn c_str(raw: &[std::os::raw::c_char]) -> String {
    let bytes = raw.as_bytes();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

pub fn decode(bytes: &[u8]) -> Result<Event<'_>, DecodeError> {
    let h: oe_event_header = read(bytes, "event header")?;
    let hdr = header(&h);
    match h.kind {
        abi::OE_EV_CONN_OPEN => {
            let e: oe_conn_open = read(bytes, "connection event")?;
            let transport = match u32::from(e.transport) {
                abi::OE_TRANSPORT_TCP => Transport::Tcp,
                abi::OE_TRANSPORT_UDP => Transport::Udp,
                _ => return Err(DecodeError::UnknownTransport(e.transport)),
            };
            Ok(Event::ConnOpen(
                hdr,
                ConnOpen {
                    local: (addr(e.local_addr), e.local_port),
                    peer: (addr(e.peer_addr), e.peer_port),
                    role: e.role,
                    transport,
                    comm: c_str(&e.comm),
                    exe: c_str(&e.exe),
                    parent_tgid: e.parent_tgid,
                },
            ))
        }
        abi::OE_EV_DATA => {
            let m: oe_data_meta = read(bytes, "data event")?;
            let direction = match u32::from(m.direction) {
                abi::OE_DIR_INGRESS => Direction::Ingress,
                abi::OE_DIR_EGRESS => Direction::Egress,
                _ => return Err(DecodeError::UnknownDirection(m.direction)),
            };
            let rest = &bytes[size_of::<oe_data_meta>()..];
            let payload = rest
                .get(..m.captured_len as usize)
                .ok_or(DecodeError::BadCapturedLen { captured: m.captured_len, available: rest.len() })?;
            let syscall = u32::from(m.syscall);
            let tls = matches!(syscall & !abi::OE_DATA_F_OVERLAP, abi::OE_SYS_SSL_READ | abi::OE_SYS_SSL_WRITE);
            let overlap = syscall & abi::OE_DATA_F_OVERLAP != 0;
            let seq = (m.seq != abi::OE_SEQ_UNKNOWN).then_some(m.seq);
            let total_len = m.total_len.max(m.captured_len);
            Ok(Event::Data(hdr, DataEvent { direction, total_len, payload, seq, tls, overlap }))
        }
        abi::OE_EV_CONN_CLOSE => Ok(Event::ConnClose(hdr)),
        abi::OE_EV_PROC_EXIT => Ok(Event::ProcessExit(hdr)),
        abi::OE_EV_PROC_EXEC => {
            let e: oe_proc_exec = read(bytes, "exec event")?;
            Ok(Event::ProcessExec(hdr, c_str(&e.comm)))
        }
        other => Err(DecodeError::UnknownKind(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket cookie as the kernel makes them (a counter of the boot).
    const COOKIE: u64 = 0x1_0000_1003;

    fn header_bytes(kind: u32, tgid: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&123_456_789u64.to_ne_bytes());
        b.extend_from_slice(&tgid.to_ne_bytes());
        b.extend_from_slice(&(tgid + 1).to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes()); // padding
        b.extend_from_slice(&COOKIE.to_ne_bytes());
        b
    }

    #[test]
    fn layouts_match_the_header() {
        assert_eq!(size_of::<oe_event_header>(), 32);
        assert_eq!(size_of::<oe_data_meta>(), 48);
        assert_eq!(size_of::<oe_conn_open>(), 160);
    }

    #[test]
    fn decodes_data_event() {
        let mut b = header_bytes(abi::OE_EV_DATA, 42);
        b.extend_from_slice(&100u32.to_ne_bytes()); // total_len
        b.extend_from_slice(&5u32.to_ne_bytes()); // captured_len
        b.extend_from_slice(&(abi::OE_DIR_INGRESS as u16).to_ne_bytes());
        b.extend_from_slice(&(abi::OE_SYS_READ as u16).to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(b"GET /xyz");
        let Event::Data(h, d) = decode(&b).unwrap() else { panic!("not data") };
        assert_eq!((h.tgid, h.tid, h.conn_id, h.ts_ns), (42, 43, COOKIE, 123_456_789));
        assert_eq!(d.direction, Direction::Ingress);
        assert_eq!(d.total_len, 100);
        assert_eq!(d.payload, b"GET /");
        assert!(!d.tls);
    }

    #[test]
    fn ssl_syscalls_mark_tls_plaintext() {
        for (sys, dir, tls) in [
            (abi::OE_SYS_SSL_READ, abi::OE_DIR_INGRESS, true),
            (abi::OE_SYS_SSL_WRITE, abi::OE_DIR_EGRESS, true),
            (abi::OE_SYS_WRITE, abi::OE_DIR_EGRESS, false),
        ] {
            let mut b = header_bytes(abi::OE_EV_DATA, 42);
            b.extend_from_slice(&3u32.to_ne_bytes());
            b.extend_from_slice(&3u32.to_ne_bytes());
            b.extend_from_slice(&(dir as u16).to_ne_bytes());
            b.extend_from_slice(&(sys as u16).to_ne_bytes());
            b.extend_from_slice(&0u32.to_ne_bytes());
            b.extend_from_slice(b"GET");
            let Event::Data(_, d) = decode(&b).unwrap() else { panic!("not data") };
            assert_eq!(d.tls, tls, "syscall {sys}");
        }
    }

    fn conn_open_bytes(local: [u8; 16], peer: [u8; 16], role: u32, transport: u16) -> Vec<u8> {
        let mut b = header_bytes(abi::OE_EV_CONN_OPEN, 1);
        b.extend_from_slice(&local);
        b.extend_from_slice(&peer);
        b.extend_from_slice(&8080u16.to_ne_bytes());
        b.extend_from_slice(&5555u16.to_ne_bytes());
        b.extend_from_slice(&2u16.to_ne_bytes());
        b.extend_from_slice(&(role as u16).to_ne_bytes());
        b.extend_from_slice(b"nginx\0\0\0\0\0\0\0\0\0\0\0");
        b.extend_from_slice(&77u32.to_ne_bytes()); // parent_tgid
        b.extend_from_slice(&transport.to_ne_bytes());
        b.extend_from_slice(&0u16.to_ne_bytes());
        let mut exe = [0u8; 64];
        exe[..33].copy_from_slice(b"nginx-with-a-long-executable-name");
        b.extend_from_slice(&exe);
        b
    }

    #[test]
    fn decodes_ipv4_conn_open() {
        let mut local = [0u8; 16];
        local[10] = 0xff;
        local[11] = 0xff;
        local[12..].copy_from_slice(&[127, 0, 0, 1]);
        let b = conn_open_bytes(local, Ipv6Addr::LOCALHOST.octets(), abi::OE_ROLE_SERVER, abi::OE_TRANSPORT_TCP as u16);
        let Event::ConnOpen(h, c) = decode(&b).unwrap() else { panic!("not open") };
        assert_eq!(h.conn_id, COOKIE);
        assert_eq!(c.local, ("127.0.0.1".parse().unwrap(), 8080));
        assert_eq!(c.peer, ("::1".parse().unwrap(), 5555));
        assert_eq!(c.role, abi::OE_ROLE_SERVER as u16);
        assert_eq!(c.transport, Transport::Tcp);
        assert_eq!(c.comm, "nginx");
        assert_eq!(c.exe, "nginx-with-a-long-executable-name");
        assert_eq!(c.parent_tgid, 77);
    }

    /// An unconnected UDP socket: no peer yet.
    #[test]
    fn decodes_udp_conn_open() {
        let b =
            conn_open_bytes(Ipv6Addr::LOCALHOST.octets(), [0; 16], abi::OE_ROLE_CLIENT, abi::OE_TRANSPORT_UDP as u16);
        let Event::ConnOpen(_, c) = decode(&b).unwrap() else { panic!("not open") };
        assert_eq!(c.transport, Transport::Udp);
        assert_eq!(c.role, abi::OE_ROLE_CLIENT as u16);
        assert_eq!(c.peer, ("::".parse().unwrap(), 5555));
        let bad = conn_open_bytes([0; 16], [0; 16], abi::OE_ROLE_CLIENT, 9);
        assert_eq!(decode(&bad), Err(DecodeError::UnknownTransport(9)));
    }

    /// Bytes the probes could only count (sendfile, splice, one message of
    /// a sendmmsg): a data event with no payload.
    #[test]
    fn counted_only_data_events_carry_their_length() {
        for sys in [abi::OE_SYS_SENDFILE, abi::OE_SYS_SPLICE, abi::OE_SYS_SENDMMSG, abi::OE_SYS_OTHER] {
            let mut b = header_bytes(abi::OE_EV_DATA, 42);
            b.extend_from_slice(&65536u32.to_ne_bytes());
            b.extend_from_slice(&0u32.to_ne_bytes());
            b.extend_from_slice(&(abi::OE_DIR_EGRESS as u16).to_ne_bytes());
            b.extend_from_slice(&(sys as u16).to_ne_bytes());
            b.extend_from_slice(&3u32.to_ne_bytes());
            let Event::Data(h, d) = decode(&b).unwrap() else { panic!("not data") };
            assert_eq!((h.conn_id, d.total_len, d.payload, d.seq), (COOKIE, 65536, &b""[..], Some(3)), "{sys}");
            assert!(!d.tls);
        }
    }

    #[test]
    fn bad_records_are_errors() {
        assert!(matches!(decode(&[0u8; 10]), Err(DecodeError::Truncated { .. })));
        assert_eq!(decode(&header_bytes(99, 1)), Err(DecodeError::UnknownKind(99)));
        let mut b = header_bytes(abi::OE_EV_DATA, 1);
        b.extend_from_slice(&10u32.to_ne_bytes());
        b.extend_from_slice(&10u32.to_ne_bytes());
        b.extend_from_slice(&1u16.to_ne_bytes());
        b.extend_from_slice(&1u16.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(b"abc");
        assert!(matches!(decode(&b), Err(DecodeError::BadCapturedLen { captured: 10, available: 3 })));
        let mut b = header_bytes(abi::OE_EV_DATA, 1);
        b.extend_from_slice(&[0u8; 8]);
        b.extend_from_slice(&9u16.to_ne_bytes());
        b.extend_from_slice(&[0u8; 6]);
        assert_eq!(decode(&b), Err(DecodeError::UnknownDirection(9)));
    }
}
