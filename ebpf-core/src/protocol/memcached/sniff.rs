//! Recognising memcached from a handful of bytes: a connection's first
//! chunk, and where a direction resynchronises after lost bytes.

/// Commands a client may start with, text and meta. Lower case: the text
/// protocol's commands are case-sensitive.
const COMMANDS: &[&[u8]] = &[
    b"get",
    b"gets",
    b"gat",
    b"gats",
    b"set",
    b"add",
    b"replace",
    b"append",
    b"prepend",
    b"cas",
    b"delete",
    b"incr",
    b"decr",
    b"touch",
    b"stats",
    b"version",
    b"verbosity",
    b"flush_all",
    b"quit",
    b"mg",
    b"ms",
    b"md",
    b"ma",
    b"mn",
    b"me",
    b"lru_crawler",
    b"watch",
    b"cache_memlimit",
    b"slabs",
    b"lru",
    b"shutdown",
];

/// Reply words, for where a reply must start.
const REPLIES: &[&[u8]] = &[
    b"VALUE",
    b"END",
    b"STORED",
    b"NOT_STORED",
    b"EXISTS",
    b"NOT_FOUND",
    b"DELETED",
    b"TOUCHED",
    b"VERSION",
    b"OK",
    b"RESET",
    b"STAT",
    b"ITEM",
    b"ERROR",
    b"CLIENT_ERROR",
    b"SERVER_ERROR",
    b"VA",
    b"HD",
    b"EN",
    b"NS",
    b"EX",
    b"NF",
    b"MN",
    b"ME",
    b"BUSY",
    b"BADCLASS",
    b"NOSPARE",
    b"NOTFULL",
    b"UNSAFE",
    b"SAME",
];

/// A connection's first bytes from the client: a command word from
/// `COMMANDS` followed by a space or the line's end. (The binary protocol,
/// whose requests start with 0x80, is not followed.)
pub fn looks_like_command(data: &[u8]) -> bool {
    starts_with_word(data, COMMANDS, false)
}

/// Where a command must start after lost bytes; a chunk that ends before
/// the word does passes if what it has fits.
pub(super) fn starts_command(data: &[u8]) -> bool {
    starts_with_word(data, COMMANDS, true)
}

/// A connection's first bytes from the server: a whole reply line that
/// starts with a reply word (not a number: other line protocols' greetings
/// do, `220 mail ESMTP`).
pub(crate) fn looks_like_reply(data: &[u8]) -> bool {
    memchr::memmem::find(data, b"\r\n").is_some() && starts_with_word(data, REPLIES, false)
}

/// Where a reply must start: a reply word, or incr/decr's number.
pub(crate) fn starts_reply(data: &[u8]) -> bool {
    if data.first().is_some_and(u8::is_ascii_digit) {
        return true;
    }
    starts_with_word(data, REPLIES, true)
}

fn starts_with_word(data: &[u8], words: &[&[u8]], partial_ok: bool) -> bool {
    let n = data.iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'_').count();
    let word = &data[..n];
    match data.get(n) {
        None => partial_ok && n > 0 && words.iter().any(|w| w.starts_with(word)),
        Some(b' ' | b'\r' | b'\n') => words.contains(&word),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_replies() {
        assert!(looks_like_command(b"get user:1\r\n"));
        assert!(looks_like_command(b"mn\r\n"));
        assert!(looks_like_command(b"ms k 2 T0\r\nhi\r\n"));
        assert!(!looks_like_command(b"GET / HTTP/1.1\r\n"), "commands are lower case");
        assert!(!looks_like_command(b"\x80\x00\x00\x05"), "binary protocol");
        assert!(!looks_like_command(b"*1\r\n$4\r\nPING\r\n"));
        assert!(!looks_like_command(b"getx\r\n"));
        assert!(starts_command(b"ge"));
        assert!(!starts_command(b"ab"));
        assert!(starts_reply(b"VALUE k 0 1\r\n"));
        assert!(starts_reply(b"42\r\n"));
        assert!(starts_reply(b"HD O1\r\n"));
        assert!(!starts_reply(b"lue\r\nEND\r\n"));
    }
}
