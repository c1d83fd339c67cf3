//! Replays every input the fuzzers crashed on (fuzz/regressions/<target>/),
//! plus the recorded fixtures the fuzzers start from, through the same entry
//! points the fuzz targets use.

use std::path::Path;

use ebpf_core::fuzzing::TARGETS;

#[test]
fn every_past_crash_stays_fixed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    let mut replayed = 0;
    for (name, run) in TARGETS {
        let Ok(dir) = std::fs::read_dir(root.join(name)) else { continue };
        for entry in dir {
            let path = entry.unwrap().path();
            run(&std::fs::read(&path).unwrap());
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} fuzz regressions");
}

#[test]
fn entry_points_accept_real_inputs() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let events = std::fs::read(fixtures.join("events/python_curl.bin")).unwrap();
    ebpf_core::fuzzing::pipeline(&events);
    ebpf_core::fuzzing::event_decode(&events[4..]);
    ebpf_core::fuzzing::config_json(br#"{"capture_size": 512}"#);
    for entry in std::fs::read_dir(fixtures.join("http1")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "bin") {
            ebpf_core::fuzzing::http1_head(&std::fs::read(&path).unwrap());
        }
    }
    ebpf_core::fuzzing::routes(b"/users/{id} /static/*\n/users/42");
    ebpf_core::fuzzing::sql_text(b"SELECT * FROM t WHERE a = 'x' AND b IN (1, 2) -- c");
    // A simple query and its answer, in the database parsers' framing.
    let mut pg = vec![1, 8, 0, 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    pg.extend_from_slice(&[0, 1, 0, b'N']);
    ebpf_core::fuzzing::postgres_parser(&pg);
    ebpf_core::fuzzing::mysql_parser(&[0, 5, 0, 1, 0, 0, 0, 10]);
    // An HTTP/2 request and its response, in the http2_parser framing.
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    let request = b"\x00\x00\x03\x01\x05\x00\x00\x00\x01\x82\x86\x84";
    let response = b"\x00\x00\x01\x01\x05\x00\x00\x00\x01\x88";
    let mut framed = vec![0];
    for (flags, bytes) in [(0u8, &preface[..]), (0, &request[..]), (1, &response[..])] {
        framed.extend_from_slice(&[flags, bytes.len() as u8, 0]);
        framed.extend_from_slice(bytes);
    }
    ebpf_core::fuzzing::http2_parser(&framed);
    // A command and its reply, in the same framing.
    let mut redis = vec![1, 14, 0];
    redis.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    redis.extend_from_slice(&[0, 7, 0]);
    redis.extend_from_slice(b"+PONG\r\n");
    ebpf_core::fuzzing::redis_parser(&redis);
    let mut mc = vec![1, 7, 0];
    mc.extend_from_slice(b"get k\r\n");
    mc.extend_from_slice(&[0, 5, 0]);
    mc.extend_from_slice(b"END\r\n");
    ebpf_core::fuzzing::memcached_parser(&mc);
    // A GET and its response, in the http1_parser framing.
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
    let mut framed = vec![0, req.len() as u8, 0];
    framed.extend_from_slice(req);
    framed.extend_from_slice(&[1, resp.len() as u8, 0]);
    framed.extend_from_slice(resp);
    ebpf_core::fuzzing::http1_parser(&framed);
    // The same through the registry: protocol 0 (http1), role unknown, then closed.
    let mut framed = [&[0u8, 0][..], &framed].concat();
    framed.extend_from_slice(&[0x80, 0, 0]);
    ebpf_core::fuzzing::protocols(&framed);
    ebpf_core::fuzzing::protocol_parser("http1", &framed[1..]);
    // Every recorded Kafka, MongoDB and MQTT connection.
    for (dir, run) in [
        ("kafka", ebpf_core::fuzzing::kafka_parser as fn(&[u8])),
        ("mongodb", ebpf_core::fuzzing::mongodb_parser),
        ("mqtt", ebpf_core::fuzzing::mqtt_parser),
    ] {
        for entry in std::fs::read_dir(fixtures.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "segments") {
                run(&framed_recording(&path));
            }
        }
    }
}

/// A recording (`NAME.segments` and its `.req.bin`/`.resp.bin`) in the
/// database parsers' fuzz framing (`[flags][len][uncaptured][bytes]`,
/// flags bit 0: egress), as `fuzz/make-seeds.py` writes the seeds.
fn framed_recording(segments: &Path) -> Vec<u8> {
    let stem = segments.to_str().unwrap().strip_suffix(".segments").unwrap();
    let req = std::fs::read(format!("{stem}.req.bin")).unwrap();
    let resp = std::fs::read(format!("{stem}.resp.bin")).unwrap();
    let (mut r, mut s) = (0, 0);
    let mut out = Vec::new();
    for line in std::fs::read_to_string(segments).unwrap().lines() {
        let (dir, n) = line.split_once(' ').unwrap();
        let n: usize = n.parse().unwrap();
        let (src, at, flags) = if dir == ">" { (&req, &mut r, 0u8) } else { (&resp, &mut s, 1u8) };
        for piece in src[*at..*at + n].chunks(255) {
            out.extend_from_slice(&[flags, piece.len() as u8, 0]);
            out.extend_from_slice(piece);
        }
        *at += n;
    }
    out
}
