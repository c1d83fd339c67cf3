//! PostgreSQL frontend/backend protocol 3.0, as the syscall probes see one
//! connection: startup (the database name becomes `db.namespace`; the user
//! is never kept), SSLRequest (the socket then carries ciphertext; the TLS
//! capture delivers the plaintext, which starts with the StartupMessage),
//! simple and extended queries, errors with their SQLSTATE, COPY, and
//! asynchronous messages. See `parser` for how operations are formed and
//! how the parser resynchronises after lost framing or lost events.
//!
//! Kept per connection: the prepared statements' analysed texts (at most
//! `MAX_STATEMENTS`, oldest forgotten first), portals (`MAX_PORTALS`) and
//! the requests in flight (`MAX_IN_FLIGHT` operations).

mod framer;
mod parser;
mod seam;

#[cfg(test)]
mod tests;

pub use parser::{looks_like_startup, PgParser};
pub use seam::{new_parser, recognise};

/// Prepared statements remembered per connection (ORMs prepare a few dozen).
pub const MAX_STATEMENTS: usize = 256;

/// Open portals remembered per connection (usually just the unnamed one).
pub const MAX_PORTALS: usize = 16;

/// Operations waiting for their responses at once (pipelining).
pub const MAX_IN_FLIGHT: usize = 256;
