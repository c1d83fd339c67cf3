mod edge;
mod fixtures;
mod seam;

use crate::protocol::sql::fixture::{direction, Segment};
use crate::protocol::sql::{DbCommand, DbOperation, DbStatus, SqlOptions};
use crate::protocol::{Chunk, Role};

use super::MysqlParser;

pub(super) const SEG_NS: u64 = 1_000_000;

pub(super) fn play(
    segs: &[Segment],
    role: Role,
    capture: usize,
    split: &mut dyn FnMut(usize, usize) -> Vec<usize>,
) -> (Vec<DbOperation>, MysqlParser) {
    let mut p = MysqlParser::new(SqlOptions::default());
    let mut out = Vec::new();
    for (i, seg) in segs.iter().enumerate() {
        let dir = direction(seg, role);
        let mut at = 0;
        for (k, len) in split(i, seg.bytes.len()).into_iter().enumerate() {
            let piece = &seg.bytes[at..at + len];
            at += len;
            let data = &piece[..piece.len().min(capture)];
            p.feed(
                &Chunk { ts_ns: SEG_NS * (i as u64 + 1) + k as u64, direction: dir, data, total_len: len as u64 },
                &mut out,
            );
        }
    }
    p.close(&mut out);
    (out, p)
}

pub(super) fn whole(_: usize, len: usize) -> Vec<usize> {
    vec![len]
}

pub(super) fn describe(op: &DbOperation) -> String {
    let cmd = match op.command {
        DbCommand::Query => "Q".to_string(),
        DbCommand::Execute => "X".to_string(),
        DbCommand::Prepare => "P".to_string(),
        DbCommand::Other(n) => n.to_string(),
    };
    let status = match &op.status {
        DbStatus::Ok => "ok".to_string(),
        DbStatus::Unknown => "unknown".to_string(),
        DbStatus::Error(e) => format!("{}/{}", e.code, e.sqlstate.as_deref().unwrap_or("-")),
    };
    let text = op.query.as_ref().map_or("-", |q| &q.text);
    let rows = op.returned_rows.map_or("-".to_string(), |r| r.to_string());
    let aff = op.affected_rows.map_or("-".to_string(), |r| r.to_string());
    let ns = op.namespace.as_deref().unwrap_or("-");
    format!("{cmd} {status} rows={rows} affected={aff} db={ns} {text}")
}
