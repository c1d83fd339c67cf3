//! What the process identity may collect, from the receiver's configuration.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// Emit `process.command_line` (/proc/<pid>/cmdline, arguments joined by
    /// spaces, capped at 64 KiB). Off by default: command lines can hold
    /// secrets (`--password=…`, tokens in URLs), and the semantic conventions
    /// ask not to collect it by default.
    pub command_line: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deserializes() {
        let parse = |s: &str| serde_json::from_str::<IdentityConfig>(s);
        assert_eq!(parse("{}").unwrap(), IdentityConfig { command_line: false });
        assert_eq!(parse(r#"{"command_line": true}"#).unwrap(), IdentityConfig { command_line: true });
        assert!(parse(r#"{"command_lines": true}"#).is_err());
        assert!(parse(r#"{"command_line": "yes"}"#).is_err());
    }
}
