//! One DNS message, as far as flows need it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use simple_dns::rdata::RData;
use simple_dns::{Packet, PacketFlag};

/// What a query or a response says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsMessage {
    pub id: u16,
    pub response: bool,
    /// RCODE (the header's 4 bits).
    pub rcode: u8,
    /// The first question's name, as the query spelled it (no trailing dot).
    pub name: String,
    pub qtype: u16,
    /// A and AAAA records of the answer section, with their TTL in seconds
    /// (the addresses a CNAME chain ends on included).
    pub addresses: Vec<(IpAddr, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("malformed DNS message: {0}")]
    Malformed(String),
    #[error("DNS message without a question")]
    NoQuestion,
}

/// Parses one message (without TCP's length prefix).
pub fn parse(bytes: &[u8]) -> Result<DnsMessage, DnsError> {
    let packet = Packet::parse(bytes).map_err(|e| DnsError::Malformed(e.to_string()))?;
    let question = packet.questions.first().ok_or(DnsError::NoQuestion)?;
    let mut addresses = Vec::new();
    for rr in &packet.answers {
        match &rr.rdata {
            RData::A(a) => addresses.push((IpAddr::V4(Ipv4Addr::from(a.address)), rr.ttl)),
            RData::AAAA(a) => addresses.push((IpAddr::V6(Ipv6Addr::from(a.address)), rr.ttl)),
            _ => {}
        }
    }
    Ok(DnsMessage {
        id: packet.id(),
        response: packet.has_flags(PacketFlag::RESPONSE),
        // The header's own 4 bits: the crate folds unknown codes together.
        rcode: bytes.get(3).map_or(0, |b| b & 0x0f),
        name: question.qname.to_string(),
        qtype: u16::from(question.qtype),
        addresses,
    })
}

/// The mnemonic of a query type ("A", "AAAA", ...), or "TYPE<n>" (RFC 3597).
pub fn type_name(qtype: u16) -> &'static str {
    match qtype {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        35 => "NAPTR",
        43 => "DS",
        48 => "DNSKEY",
        64 => "SVCB",
        65 => "HTTPS",
        255 => "ANY",
        257 => "CAA",
        _ => "other",
    }
}

/// The `error.type` of a response code other than NOERROR (RFC 1035, 2136, 6895 names, lower case).
pub fn rcode_name(rcode: u8) -> &'static str {
    match rcode {
        0 => "noerror",
        1 => "formerr",
        2 => "servfail",
        3 => "nxdomain",
        4 => "notimp",
        5 => "refused",
        6 => "yxdomain",
        7 => "yxrrset",
        8 => "nxrrset",
        9 => "notauth",
        10 => "notzone",
        _ => "_OTHER",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The messages of a fixture file (see `scripts/record-dns-fixtures.py`):
    /// (from the client, over TCP, bytes as one read got them).
    pub(crate) fn fixture(name: &str) -> Vec<(bool, bool, Vec<u8>)> {
        let path = format!("{}/tests/fixtures/dns/{name}.bin", env!("CARGO_MANIFEST_DIR"));
        let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut out = Vec::new();
        let mut rest = &data[..];
        while !rest.is_empty() {
            let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
            out.push((rest[0] == b'Q', rest[1] == b't', rest[4..4 + len].to_vec()));
            rest = &rest[4 + len..];
        }
        out
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn getent_asks_for_a_and_aaaa_and_gets_both() {
        let msgs = fixture("getent_ahosts");
        let parsed: Vec<DnsMessage> = msgs.iter().map(|(_, _, b)| parse(b).unwrap()).collect();
        let queries: Vec<_> = parsed.iter().filter(|m| !m.response).map(|m| (m.name.as_str(), m.qtype)).collect();
        assert_eq!(queries, [("web.flows.test", 1), ("web.flows.test", 28)]);
        let mut answers: Vec<_> = parsed.iter().filter(|m| m.response).flat_map(|m| m.addresses.clone()).collect();
        answers.sort();
        assert_eq!(answers.iter().map(|a| a.0).collect::<Vec<_>>(), [ip("10.77.0.5"), ip("fd00:77::5")]);
        assert!(parsed.iter().all(|m| m.rcode == 0));
        // Each answer has the id of its query.
        for q in parsed.iter().filter(|m| !m.response) {
            assert!(parsed.iter().any(|r| r.response && r.id == q.id && r.qtype == q.qtype));
        }
    }

    #[test]
    fn nxdomain_is_the_response_code() {
        let parsed: Vec<DnsMessage> = fixture("getent_nxdomain").iter().map(|(_, _, b)| parse(b).unwrap()).collect();
        let responses: Vec<_> = parsed.iter().filter(|m| m.response).collect();
        assert!(!responses.is_empty());
        for r in responses {
            assert_eq!((r.rcode, rcode_name(r.rcode), r.name.as_str()), (3, "nxdomain", "missing.flows.test"));
            assert!(r.addresses.is_empty());
        }
    }

    #[test]
    fn dig_with_edns_and_a_cname_chain() {
        let parsed: Vec<DnsMessage> = fixture("dig_aaaa").iter().map(|(_, _, b)| parse(b).unwrap()).collect();
        assert_eq!(parsed.len(), 2);
        assert_eq!((parsed[0].response, parsed[0].qtype, type_name(parsed[0].qtype)), (false, 28, "AAAA"));
        assert_eq!(parsed[1].addresses.iter().map(|a| a.0).collect::<Vec<_>>(), [ip("fd00:77::5")]);
        let parsed: Vec<DnsMessage> = fixture("dig_cname").iter().map(|(_, _, b)| parse(b).unwrap()).collect();
        assert_eq!(parsed[1].name, "alias.flows.test");
        assert_eq!(parsed[1].addresses.iter().map(|a| a.0).collect::<Vec<_>>(), [ip("10.77.0.5")]);
    }

    #[test]
    fn bad_input_is_an_error_never_a_panic() {
        let msgs = fixture("getent_ahosts");
        let mut rng = fastrand::Rng::with_seed(17);
        for (_, _, m) in &msgs {
            for cut in 0..m.len() {
                let _ = parse(&m[..cut]);
            }
            for _ in 0..2000 {
                let mut b = m.clone();
                for _ in 0..rng.usize(1..5) {
                    let i = rng.usize(..b.len());
                    b[i] = rng.u8(..);
                }
                let _ = parse(&b);
            }
        }
        assert!(matches!(parse(&[]), Err(DnsError::Malformed(_))));
        // A header alone: no question.
        assert_eq!(parse(&[0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Err(DnsError::NoQuestion));
    }
}
