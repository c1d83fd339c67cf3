//! The MongoDB wire protocol, as the syscall probes see one connection:
//! OP_MSG commands (a kind 0 body, kind 1 document sequences) and their
//! replies matched by `requestID`/`responseTo`; the legacy OP_QUERY /
//! OP_REPLY (drivers' and shells' handshakes: `isMaster`, `hello`);
//! OP_COMPRESSED recognised and counted, not decompressed.
//!
//! From a command: its name (the body's first key: `find`, `insert`,
//! `update`, `delete`, `aggregate`, `getMore`, …), the collection (the
//! first key's value for the commands that name one there, `collection`
//! for `getMore`), the database (`$db`), how many documents a kind 1
//! sequence carries. From a reply: `ok`, `code`, `codeName` (also the first
//! of `writeErrors` and `writeConcernError`, which fail a write in an
//! `ok: 1` reply), the cursor batch's length. Filter documents, values and
//! error messages are never read into telemetry.
//!
//! See `parser` for lost events and resynchronisation.

mod bson;
mod parser;
mod seam;
pub mod telemetry;

#[cfg(test)]
mod tests;

use compact_str::CompactString;

use crate::protocol::Role;

pub use parser::{looks_like_request, MongoParser};
pub use seam::{new_parser, recognise, PORT};

/// Requests waiting for replies at once on a connection (drivers send one
/// at a time per connection; pipelining is rare).
pub const MAX_IN_FLIGHT: usize = 64;

pub const OP_REPLY: i32 = 1;
pub const OP_QUERY: i32 = 2004;
pub const OP_COMPRESSED: i32 = 2012;
pub const OP_MSG: i32 = 2013;

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MongoStatus {
    Ok,
    /// `ok: 0` with its `code`/`codeName`, or a write error's code.
    Error {
        code: Option<i32>,
        code_name: Option<CompactString>,
    },
    /// The reply was not seen whole, compressed, or no reply comes
    /// (`moreToCome`).
    #[default]
    Unknown,
    /// The connection closed before the reply came (and none can have been
    /// lost: the reply direction was followed throughout).
    NoResponse,
}

/// One completed MongoDB command.
#[derive(Debug, Clone, PartialEq)]
pub struct MongoOperation {
    /// The command's name (`db.operation.name`); None when compressed.
    pub command: Option<CompactString>,
    /// `db.collection.name`.
    pub collection: Option<CompactString>,
    /// `db.namespace`: the database the command ran against.
    pub database: Option<CompactString>,
    /// The request's opcode (`OP_MSG`, `OP_QUERY`, `OP_COMPRESSED`).
    pub op_code: i32,
    pub request_id: i32,
    /// Documents in the request's kind 1 sequences (an insert's documents,
    /// an update's statements), when every one's size was seen.
    pub batch_size: Option<u64>,
    /// Documents in the reply's cursor batch (`firstBatch`/`nextBatch`), if
    /// the whole batch was walked.
    pub returned_documents: Option<u64>,
    pub status: MongoStatus,
    /// The request or the reply was OP_COMPRESSED: counted, not read.
    pub compressed: bool,
    /// When the request's first byte was.
    pub start_ns: u64,
    /// When the reply's last byte was (the request's, when none comes).
    pub end_ns: u64,
    pub role: Role,
}
