//! Hand-built packets for what the recorded clients do not negotiate.

use super::*;
use crate::protocol::{Chunk, Direction};

fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    let mut v = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
    v.extend_from_slice(payload);
    v
}

fn feed(p: &mut MysqlParser, ts: u64, client: bool, data: &[u8], out: &mut Vec<DbOperation>) {
    let direction = if client { Direction::Egress } else { Direction::Ingress };
    p.feed(&Chunk { ts_ns: ts, direction, data, total_len: data.len() as u64 }, out);
}

fn greeting() -> Vec<u8> {
    let mut g = vec![10];
    g.extend_from_slice(b"8.0.36\0");
    g.extend_from_slice(&[0; 60]);
    packet(0, &g)
}

fn login(caps: u32) -> Vec<u8> {
    let mut l = caps.to_le_bytes().to_vec();
    l.extend_from_slice(&[0, 0, 0, 1, 45]);
    l.extend_from_slice(&[0; 23]);
    l.extend_from_slice(b"app\0\0shop\0");
    packet(1, &l)
}

const OK: &[u8] = &[0, 0, 0, 2, 0, 0, 0];

#[test]
fn deprecate_eof_result_sets() {
    let caps = 0x1 | 0x8 | 0x200 | 0x8000 | 0x100_0000;
    let mut p = MysqlParser::new(SqlOptions::default());
    let mut out = Vec::new();
    feed(&mut p, 1, false, &greeting(), &mut out);
    feed(&mut p, 2, true, &login(caps), &mut out);
    feed(&mut p, 3, false, &packet(2, OK), &mut out);
    feed(&mut p, 4, true, &packet(0, b"\x03SELECT a FROM t WHERE b = 'hunter2'"), &mut out);
    // column count, one definition, two rows, OK-as-EOF (0xFE): no EOF after the columns.
    let mut resp = packet(1, &[1]);
    resp.extend(packet(2, b"\x03def\0\0\0\x01a\0\x0c\x21\0\0\0\0\0\xfd\0\0\0\0\0"));
    resp.extend(packet(3, b"\x01x"));
    resp.extend(packet(4, b"\x01y"));
    resp.extend(packet(5, &[0xFE, 0, 0, 2, 0, 0, 0]));
    feed(&mut p, 5, false, &resp, &mut out);
    feed(&mut p, 6, true, &packet(0, b"\x03SELECT 1; SELECT 2"), &mut out);
    // Two results: the first OK-as-EOF says more results exist (0x0008).
    let mut resp = packet(1, &[1]);
    resp.extend(packet(2, b"\x03def\0\0\0\x011\0\x0c\x3f\0\x01\0\0\0\x08\x81\0\0\0\0"));
    resp.extend(packet(3, b"\x011"));
    resp.extend(packet(4, &[0xFE, 0, 0, 0x0a, 0, 0, 0]));
    resp.extend(packet(5, &[1]));
    resp.extend(packet(6, b"\x03def\0\0\0\x012\0\x0c\x3f\0\x01\0\0\0\x08\x81\0\0\0\0"));
    resp.extend(packet(7, b"\x012"));
    resp.extend(packet(8, &[0xFE, 0, 0, 2, 0, 0, 0]));
    feed(&mut p, 7, false, &resp, &mut out);
    assert_eq!(
        out.iter().map(describe).collect::<Vec<_>>(),
        [
            "Q ok rows=2 affected=- db=shop SELECT a FROM t WHERE b = ?",
            "Q ok rows=2 affected=- db=shop SELECT ?; SELECT ?",
        ]
    );
    assert!(out.iter().all(|o| o.system == "mysql"));
}

#[test]
fn joined_late_resumes_at_a_command_and_rejects_a_stray_response() {
    let mut p = MysqlParser::joined(SqlOptions::default(), Role::Client);
    let mut out = Vec::new();
    // The tail of a response we did not see the command of.
    feed(&mut p, 1, false, &packet(7, b"\x01z"), &mut out);
    feed(&mut p, 2, true, &packet(0, b"\x03DELETE FROM t WHERE id = 7"), &mut out);
    feed(&mut p, 3, false, &packet(1, &[0, 3, 0, 2, 0, 0, 0]), &mut out);
    assert_eq!(
        out.iter().map(describe).collect::<Vec<_>>(),
        ["Q ok rows=- affected=3 db=- DELETE FROM t WHERE id = ?"]
    );
    // A response with the wrong sequence id: not ours, nothing is reported.
    feed(&mut p, 4, true, &packet(0, b"\x03SELECT 1"), &mut out);
    feed(&mut p, 5, false, &packet(3, &[0xFF, 0x7a, 0x04, b'#', b'4', b'2', b'S', b'0', b'2']), &mut out);
    assert_eq!(out.len(), 1);
}
