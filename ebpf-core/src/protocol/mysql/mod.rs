//! The MySQL/MariaDB client/server protocol, as the syscall probes see one
//! connection: handshake (server flavour from the greeting, the database
//! from the login, CLIENT_DEPRECATE_EOF), text and prepared-statement
//! commands with their result sets, OK/ERR/EOF with error numbers and
//! SQLSTATE. See `parser` for the operations produced and how the parser
//! resynchronises.

mod framer;
mod parser;
mod seam;

#[cfg(test)]
mod tests;

pub use parser::{looks_like_greeting, looks_like_login, Flavor, MysqlParser};
pub use seam::{new_parser, recognise};

/// Prepared statements remembered per connection.
pub const MAX_STATEMENTS: usize = 256;

/// Commands waiting for their responses at once.
pub const MAX_IN_FLIGHT: usize = 64;

/// SERVER_MORE_RESULTS_EXISTS: another result set follows.
pub(crate) const MORE_RESULTS: u16 = 0x0008;

/// The protocol name of a command byte (`COM_` dropped), for the commands
/// of the current protocol.
pub fn command_name(cmd: u8) -> Option<&'static str> {
    Some(match cmd {
        0x01 => "QUIT",
        0x02 => "INIT_DB",
        0x03 => "QUERY",
        0x04 => "FIELD_LIST",
        0x05 => "CREATE_DB",
        0x06 => "DROP_DB",
        0x07 => "REFRESH",
        0x08 => "SHUTDOWN",
        0x09 => "STATISTICS",
        0x0a => "PROCESS_INFO",
        0x0c => "PROCESS_KILL",
        0x0d => "DEBUG",
        0x0e => "PING",
        0x11 => "CHANGE_USER",
        0x12 => "BINLOG_DUMP",
        0x15 => "REGISTER_SLAVE",
        0x16 => "STMT_PREPARE",
        0x17 => "STMT_EXECUTE",
        0x18 => "STMT_SEND_LONG_DATA",
        0x19 => "STMT_CLOSE",
        0x1a => "STMT_RESET",
        0x1b => "SET_OPTION",
        0x1c => "STMT_FETCH",
        0x1e => "BINLOG_DUMP_GTID",
        0x1f => "RESET_CONNECTION",
        _ => return None,
    })
}
