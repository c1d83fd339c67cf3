mod fixtures;
mod seam;

pub(super) use crate::protocol::fixture::whole;
use crate::protocol::fixture::Segment;
use crate::protocol::sql::checks::{self, SqlWire};
use crate::protocol::sql::{DbCommand, DbOperation, DbStatus, SqlOptions};
use crate::protocol::Role;

use super::PgParser;

impl SqlWire for PgParser {
    fn fresh() -> Self {
        PgParser::new(SqlOptions::default())
    }
}

/// Plays segments as chunks from `role`'s side, each split by `split` into
/// pieces and truncated to `capture` bytes (total length kept).
pub(super) fn play(
    segs: &[Segment],
    role: Role,
    capture: usize,
    split: &mut dyn FnMut(usize, usize) -> Vec<usize>,
) -> (Vec<DbOperation>, PgParser) {
    checks::play(segs, role, capture, split)
}

/// A short description of an operation for assertions.
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
        DbStatus::Error(e) => e.code.to_string(),
    };
    let text = op.query.as_ref().map_or("-", |q| &q.text);
    let rows = op.returned_rows.map_or("-".to_string(), |r| r.to_string());
    let aff = op.affected_rows.map_or("-".to_string(), |r| r.to_string());
    format!("{cmd} {status} rows={rows} affected={aff} {text}")
}
