//! `db.query.summary` as the database conventions describe it: the query's
//! operations and their targets, in the order they appear, as written
//! (`SELECT users`, `INSERT shipping_details SELECT orders`), at most
//! `MAX_SUMMARY_BYTES` and never cut inside a part. Only words and quoted
//! identifiers the tokenizer saw outside literals can become parts, so a
//! summary never holds a literal.
//!
//! This is a shallow reading, not a parser: operations are the statement
//! keywords (`SELECT` anywhere; `INSERT`, `UPDATE`, `DELETE`, `MERGE` where a
//! statement or subquery starts; DDL and session commands at a statement's
//! start, `CREATE TABLE` with its object type), targets are the names after
//! `FROM`/`JOIN` (comma lists, aliases skipped), `INTO`, `UPDATE`, the
//! object name of DDL, `TRUNCATE`, `CALL`, `COPY`, `LOCK`, `USE`.

use super::lexer::{Dialect, Kind, Lexer, Token};

/// The conventions' bound on a summary's length.
pub const MAX_SUMMARY_BYTES: usize = 255;

/// What the summary found; empty when the text names no known operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Operations and targets joined by spaces; empty if none was found.
    pub text: String,
    /// The first statement's operation (`SELECT`, `CREATE TABLE`), as written.
    pub operation: Option<String>,
    /// The one collection the query names, when it names exactly one.
    pub collection: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Nothing,
    /// A table name (after INTO, UPDATE, JOIN, a DDL object type ...);
    /// `skip` words like IGNORE or IF NOT EXISTS may come first.
    Table,
    /// The tables of a FROM list, separated by commas.
    FromList,
    /// A table was just named: an alias may follow.
    AfterTable {
        list: bool,
    },
    /// `AS` after a table: the next word is the alias.
    Alias {
        list: bool,
    },
    /// A table and its alias were read: a comma continues a FROM list.
    AfterAlias {
        list: bool,
    },
}

struct State<'s> {
    sql: &'s [u8],
    toks: Vec<Token>,
    parts: Vec<(bool, String)>,
    len: usize,
    full: bool,
    /// One entry per open parenthesis: does it hold a subquery?
    parens: Vec<bool>,
    expect: Expect,
    /// The first operation of the current statement, upper-cased.
    stmt_op: Option<&'static str>,
    statements: usize,
}

pub fn summarize(sql: &[u8], dialect: Dialect) -> Summary {
    let toks: Vec<Token> = Lexer::new(sql, dialect)
        .filter(|t| !matches!(t.kind, Kind::Space | Kind::Comment))
        .take_while(|t| t.kind != Kind::Ambiguous)
        .collect();
    let mut st = State {
        sql,
        toks,
        parts: Vec::new(),
        len: 0,
        full: false,
        parens: Vec::new(),
        expect: Expect::Nothing,
        stmt_op: None,
        statements: 0,
    };
    st.run();
    st.finish()
}

const STATEMENT_OPS: &[&str] = &[
    "ALTER",
    "ANALYZE",
    "BEGIN",
    "CALL",
    "CHECKPOINT",
    "CLOSE",
    "CLUSTER",
    "COMMENT",
    "COMMIT",
    "COPY",
    "CREATE",
    "DEALLOCATE",
    "DECLARE",
    "DELETE",
    "DESC",
    "DESCRIBE",
    "DISCARD",
    "DO",
    "DROP",
    "END",
    "EXEC",
    "EXECUTE",
    "EXPLAIN",
    "FETCH",
    "FLUSH",
    "GRANT",
    "HANDLER",
    "INSERT",
    "KILL",
    "LISTEN",
    "LOAD",
    "LOCK",
    "MERGE",
    "MOVE",
    "NOTIFY",
    "OPTIMIZE",
    "PREPARE",
    "REFRESH",
    "REINDEX",
    "RELEASE",
    "RENAME",
    "REPAIR",
    "REPLACE",
    "RESET",
    "REVOKE",
    "ROLLBACK",
    "SAVEPOINT",
    "SELECT",
    "SET",
    "SHOW",
    "START",
    "TABLE",
    "TRUNCATE",
    "UNLISTEN",
    "UNLOCK",
    "UPDATE",
    "UPSERT",
    "USE",
    "VACUUM",
    "VALUES",
    "WITH",
    "XA",
];

/// Words that end a table reference instead of aliasing it.
const CLAUSE_WORDS: &[&str] = &[
    "AND",
    "AS",
    "CROSS",
    "DEFAULT",
    "DO",
    "ELSE",
    "END",
    "EXCEPT",
    "FETCH",
    "FOR",
    "FORCE",
    "FROM",
    "FULL",
    "GROUP",
    "HAVING",
    "IGNORE",
    "INNER",
    "INTERSECT",
    "INTO",
    "JOIN",
    "LATERAL",
    "LEFT",
    "LIMIT",
    "LOCK",
    "NATURAL",
    "NOT",
    "OFFSET",
    "ON",
    "OR",
    "ORDER",
    "OUTER",
    "PARTITION",
    "RETURNING",
    "RIGHT",
    "SELECT",
    "SET",
    "STRAIGHT_JOIN",
    "TABLESAMPLE",
    "THEN",
    "UNION",
    "USE",
    "USING",
    "VALUES",
    "WHEN",
    "WHERE",
    "WINDOW",
    "WITH",
];

/// DDL object types kept with their operation (`CREATE TABLE`).
const OBJECT_TYPES: &[&str] = &[
    "DATABASE",
    "EXTENSION",
    "FUNCTION",
    "INDEX",
    "MATERIALIZED",
    "PROCEDURE",
    "ROLE",
    "SCHEMA",
    "SEQUENCE",
    "TABLE",
    "TRIGGER",
    "TYPE",
    "USER",
    "VIEW",
];

/// Words between a DDL verb and its object type, or before a table name.
const MODIFIERS: &[&str] = &[
    "CONCURRENTLY",
    "DELAYED",
    "EXISTS",
    "GLOBAL",
    "HIGH_PRIORITY",
    "IF",
    "IGNORE",
    "INTO",
    "LOCAL",
    "LOW_PRIORITY",
    "NOT",
    "ONLY",
    "OR",
    "QUICK",
    "RECURSIVE",
    "REPLACE",
    "TEMP",
    "TEMPORARY",
    "UNIQUE",
    "UNLOGGED",
    "TABLE",
];

fn upper_is(word: &[u8], list: &[&'static str]) -> Option<&'static str> {
    list.iter().copied().find(|k| word.eq_ignore_ascii_case(k.as_bytes()))
}

impl State<'_> {
    fn text(&self, t: Token) -> &[u8] {
        &self.sql[t.start..t.end]
    }

    fn punct(&self, i: usize) -> u8 {
        match self.toks.get(i) {
            Some(t) if t.kind == Kind::Punct => self.sql[t.start],
            _ => 0,
        }
    }

    fn word(&self, i: usize) -> Option<&[u8]> {
        self.toks.get(i).filter(|t| t.kind == Kind::Word).map(|t| self.text(*t))
    }

    fn is_word(&self, i: usize, w: &str) -> bool {
        self.word(i).is_some_and(|x| x.eq_ignore_ascii_case(w.as_bytes()))
    }

    fn push(&mut self, op: bool, text: String) {
        if self.full {
            return;
        }
        let need = text.len() + usize::from(self.len > 0);
        if self.len + need > MAX_SUMMARY_BYTES {
            self.full = true;
            return;
        }
        self.len += need;
        self.parts.push((op, text));
    }

    fn push_op(&mut self, from: usize, to: usize) {
        let words: Vec<String> =
            (from..=to).filter_map(|i| self.word(i)).map(|w| String::from_utf8_lossy(w).into_owned()).collect();
        self.push(true, words.join(" "));
    }

    /// At a statement's start (or right after `(`, a set operator or
    /// EXPLAIN) a DML keyword is an operation; elsewhere it is part of a
    /// clause (`ON DUPLICATE KEY UPDATE`, `FOR UPDATE`).
    fn at_statement_start(&self, i: usize) -> bool {
        if i == 0 {
            return true;
        }
        let prev = self.toks[i - 1];
        match prev.kind {
            Kind::Punct => matches!(self.sql[prev.start], b'(' | b')' | b';'),
            Kind::Word => {
                upper_is(self.text(prev), &["EXPLAIN", "ANALYZE", "VERBOSE", "ALL", "UNION", "DISTINCT"]).is_some()
            }
            _ => false,
        }
    }

    fn in_query_scope(&self) -> bool {
        self.parens.last().is_none_or(|sub| *sub)
    }

    fn run(&mut self) {
        let mut i = 0;
        while i < self.toks.len() && !self.full {
            i = self.step(i);
        }
    }

    /// Handles token `i`, returns the next index.
    fn step(&mut self, i: usize) -> usize {
        let t = self.toks[i];
        match self.expect {
            Expect::Table | Expect::FromList => {
                if let Some(next) = self.table_name(i) {
                    return next;
                }
            }
            Expect::AfterTable { list } => {
                if t.kind == Kind::Word {
                    let w = self.text(t);
                    if w.eq_ignore_ascii_case(b"AS") {
                        self.expect = Expect::Alias { list };
                        return i + 1;
                    }
                    if upper_is(w, CLAUSE_WORDS).is_none() {
                        self.expect = Expect::AfterAlias { list };
                        return i + 1;
                    }
                } else if t.kind == Kind::QuotedIdent {
                    self.expect = Expect::AfterAlias { list };
                    return i + 1;
                }
                if list && self.punct(i) == b',' {
                    self.expect = Expect::FromList;
                    return i + 1;
                }
                self.expect = Expect::Nothing;
            }
            Expect::Alias { list } => {
                self.expect = Expect::AfterAlias { list };
                if matches!(t.kind, Kind::Word | Kind::QuotedIdent) {
                    return i + 1;
                }
            }
            Expect::AfterAlias { list } => {
                self.expect = Expect::Nothing;
                if list && self.punct(i) == b',' {
                    self.expect = Expect::FromList;
                    return i + 1;
                }
            }
            Expect::Nothing => {}
        }
        match t.kind {
            Kind::Punct => self.punctuation(i),
            Kind::Word => self.keyword(i),
            _ => i + 1,
        }
    }

    fn punctuation(&mut self, i: usize) -> usize {
        match self.punct(i) {
            b'(' => {
                let sub = upper_is(self.word(i + 1).unwrap_or_default(), &["SELECT", "WITH", "VALUES"]).is_some()
                    || (self.at_statement_start(i + 1)
                        && upper_is(self.word(i + 1).unwrap_or_default(), &["INSERT", "UPDATE", "DELETE"]).is_some());
                self.parens.push(sub);
            }
            b')' => {
                self.parens.pop();
            }
            b';' => {
                self.parens.clear();
                self.expect = Expect::Nothing;
                self.stmt_op = None;
            }
            _ => {}
        }
        i + 1
    }

    fn keyword(&mut self, i: usize) -> usize {
        let w = self.text(self.toks[i]);
        let Some(kw) = upper_is(w, STATEMENT_OPS).or_else(|| upper_is(w, &["FROM", "JOIN", "INTO", "USING"])) else {
            return i + 1;
        };
        let next_is_paren = self.punct(i + 1) == b'(';
        let start = self.at_statement_start(i);
        match kw {
            "SELECT" => {
                self.op(i, i, kw);
            }
            "FROM" => {
                let prev_distinct = i > 0 && self.is_word(i - 1, "DISTINCT");
                if self.in_query_scope() && !(self.stmt_op == Some("COPY") && self.parens.is_empty()) && !prev_distinct
                {
                    self.expect = Expect::FromList;
                }
            }
            "JOIN" if self.in_query_scope() => self.expect = Expect::Table,
            "USING" if self.stmt_op == Some("MERGE") => self.expect = Expect::Table,
            "INSERT" | "REPLACE" | "UPSERT" | "MERGE" | "UPDATE" if start && !next_is_paren => {
                self.op(i, i, kw);
                self.expect = Expect::Table;
            }
            "DELETE" if start && !next_is_paren => {
                self.op(i, i, kw);
            }
            "CREATE" | "DROP" | "ALTER" if self.stmt_op.is_none() && self.parens.is_empty() => {
                // The verb, then modifiers, then the object type.
                let mut j = i + 1;
                while self
                    .word(j)
                    .is_some_and(|x| upper_is(x, MODIFIERS).is_some() && upper_is(x, OBJECT_TYPES).is_none())
                {
                    j += 1;
                }
                let Some(obj) = self.word(j).and_then(|x| upper_is(x, OBJECT_TYPES)) else {
                    self.op(i, i, kw);
                    return i + 1;
                };
                let mut end = j;
                if obj == "MATERIALIZED" && self.is_word(j + 1, "VIEW") {
                    end = j + 1;
                }
                self.push_op_words(&[i, j, end]);
                self.stmt_op = Some(kw);
                self.statements += 1;
                self.expect = Expect::Table;
                return end + 1;
            }
            "START" if self.stmt_op.is_none() && self.is_word(i + 1, "TRANSACTION") => {
                self.op(i, i + 1, kw);
                return i + 2;
            }
            "TRUNCATE" | "CALL" | "EXEC" | "EXECUTE" | "COPY" | "LOCK" | "USE" | "TABLE"
                if self.stmt_op.is_none() && self.parens.is_empty() =>
            {
                self.op(i, i, kw);
                self.expect = Expect::Table;
            }
            "WITH" | "VALUES" | "JOIN" | "INTO" | "USING" => {}
            _ if self.stmt_op.is_none() && self.parens.is_empty() && !next_is_paren => {
                self.op(i, i, kw);
            }
            _ => {}
        }
        i + 1
    }

    fn push_op_words(&mut self, idx: &[usize]) {
        let mut words: Vec<String> = Vec::with_capacity(idx.len());
        let mut last = usize::MAX;
        for &k in idx {
            if k != last {
                if let Some(w) = self.word(k) {
                    words.push(String::from_utf8_lossy(w).into_owned());
                }
                last = k;
            }
        }
        self.push(true, words.join(" "));
    }

    fn op(&mut self, from: usize, to: usize, kw: &'static str) {
        if self.stmt_op.is_none() {
            self.stmt_op = Some(kw);
            self.statements += 1;
        }
        self.push_op(from, to);
    }

    /// In a table position: a (qualified) name becomes a target. Returns the
    /// index after it, or None when token `i` is not a name (the caller then
    /// handles it normally).
    fn table_name(&mut self, i: usize) -> Option<usize> {
        let t = self.toks[i];
        let list = self.expect == Expect::FromList;
        match t.kind {
            Kind::Word => {
                let w = self.text(t);
                if upper_is(w, MODIFIERS).is_some() || w.eq_ignore_ascii_case(b"LATERAL") {
                    return Some(i + 1);
                }
                if upper_is(w, CLAUSE_WORDS).is_some() || upper_is(w, STATEMENT_OPS).is_some() {
                    self.expect = Expect::Nothing;
                    return None;
                }
            }
            Kind::QuotedIdent => {}
            Kind::Punct if self.punct(i) == b'(' => {
                // A subquery or a parenthesised join in FROM: its own
                // operations name themselves; an alias may follow it.
                self.expect = if list { Expect::FromList } else { Expect::Nothing };
                return None;
            }
            _ => {
                self.expect = Expect::Nothing;
                return None;
            }
        }
        // name ( . name )*
        let mut end = i;
        while self.punct(end + 1) == b'.'
            && self.toks.get(end + 2).is_some_and(|n| matches!(n.kind, Kind::Word | Kind::QuotedIdent))
            && self.toks[end + 1].start == self.toks[end].end
        {
            end += 2;
        }
        if self.punct(end + 1) == b'(' && (list || self.stmt_op == Some("SELECT")) {
            // A table function (`generate_series(...)`), not a table.
            self.expect = if list { Expect::AfterTable { list } } else { Expect::Nothing };
            return Some(end + 1);
        }
        let name = String::from_utf8_lossy(&self.sql[t.start..self.toks[end].end]).into_owned();
        self.push(false, name);
        self.expect = if matches!(self.stmt_op, Some("SELECT" | "DELETE" | "UPDATE" | "MERGE")) || list {
            Expect::AfterTable { list }
        } else {
            Expect::Nothing
        };
        Some(end + 1)
    }

    fn finish(self) -> Summary {
        let operation = self.parts.iter().find(|p| p.0).map(|p| p.1.clone());
        if operation.is_none() {
            return Summary::default();
        }
        let mut targets = self.parts.iter().filter(|p| !p.0).map(|p| &p.1);
        let collection = match (targets.next(), targets.next()) {
            (Some(one), None) if self.statements == 1 && !self.full => Some(one.clone()),
            _ => None,
        };
        let mut text = String::with_capacity(self.len);
        for (n, (_, p)) in self.parts.iter().enumerate() {
            if n > 0 {
                text.push(' ');
            }
            text.push_str(p);
        }
        Summary { text, operation: if self.statements == 1 { operation } else { None }, collection }
    }
}
