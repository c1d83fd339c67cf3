//! The protocols the receiver understands: one table (`PROTOCOLS`), the
//! records their parsers produce (`Record`), how each record becomes an
//! `Operation` (`Describer`), and their switches (`ProtocolsConfig`).
//! Adding a protocol is a line in each of these four places; see
//! `README.md` in this folder.

use std::any::Any;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::stats::Stats;

use super::genai::GenAiStage;
use super::http1::{self, BodyPolicy, HttpExchange, HttpLayers};
use super::http2::{self, Http2Config, Http2Stream};
use super::kafka::{self, KafkaOperation};
use super::memcached::{self, MemcachedOperation};
use super::mongodb::{self, MongoOperation};
use super::mqtt::{self, MqttOperation};
use super::redis::{self, RedisOperation};
use super::sql::{DbOperation, SqlDescriber, SqlProtocolConfig};
use super::{mysql, postgres};
use super::{ConnFacts, Hint, Operation, Parser, Recognition, Role};

/// A completed operation as its protocol's parser reports it. A protocol
/// adds its record type here (keep it small: records move through a
/// `Vec`; box what is large and rare).
#[derive(Debug, Clone)]
pub enum Record {
    Http1(HttpExchange),
    /// PostgreSQL, MySQL and MariaDB operations.
    Sql(DbOperation),
    Redis(RedisOperation),
    Memcached(MemcachedOperation),
    Kafka(KafkaOperation),
    Mongo(MongoOperation),
    Mqtt(MqttOperation),
    /// An HTTP/2 stream (a gRPC call when its content-type says so).
    Http2(Http2Stream),
    /// The model protocol of `super::example` (tests only).
    #[cfg(test)]
    Example(super::example::EchoCall),
}

impl Record {
    /// The HTTP/1 exchange, if this is one.
    pub fn http1(&self) -> Option<&HttpExchange> {
        match self {
            Record::Http1(ex) => Some(ex),
            _ => None,
        }
    }

    /// The HTTP/2 stream, if this is one.
    pub fn http2(&self) -> Option<&Http2Stream> {
        match self {
            Record::Http2(s) => Some(s),
            _ => None,
        }
    }
}

/// One protocol: its name (its key under `protocols` in the configuration),
/// its switch there, how its streams are recognised, and its parser's
/// constructor.
#[derive(Debug)]
pub struct Protocol {
    pub name: &'static str,
    /// Its switch in the configuration (whose `Default` says whether it is
    /// on by default: the configuration's schema is the one place defaults
    /// are declared).
    pub enabled: fn(&ProtocolsConfig) -> bool,
    /// Looks at the first payload of a connection (and the hints the
    /// kernel gives). Called for every new connection: a few byte
    /// comparisons, no allocation.
    pub recognise: fn(&Hint<'_>) -> Recognition,
    pub new_parser: fn(&ParserContext) -> Box<dyn Parser>,
    /// State every parser of this protocol shares, made once per receiver
    /// and handed to each parser in `ParserContext::shared` (Kafka's topic
    /// names, learned on one connection and used on others); `None` for
    /// protocols whose connections are independent.
    pub shared: Option<fn() -> SharedState>,
}

/// What a protocol's parsers share (see `Protocol::shared`); a parser
/// downcasts it to its own type.
pub type SharedState = Arc<dyn Any + Send + Sync>;

/// Every protocol, in the order ties between recognisers are broken.
/// Append-only: the `protocols` fuzz target picks a parser by its index.
pub static PROTOCOLS: &[Protocol] = &[
    Protocol {
        name: "http1",
        enabled: |c| c.http1.enabled,
        recognise: http1::recognise,
        new_parser: http1::new_parser,
        shared: None,
    },
    Protocol {
        name: "postgresql",
        enabled: |c| c.postgresql.enabled,
        recognise: postgres::recognise,
        new_parser: postgres::new_parser,
        shared: None,
    },
    Protocol {
        name: "mysql",
        enabled: |c| c.mysql.enabled,
        recognise: mysql::recognise,
        new_parser: mysql::new_parser,
        shared: None,
    },
    Protocol {
        name: "redis",
        enabled: |c| c.redis.enabled,
        recognise: redis::recognise,
        new_parser: redis::new_parser,
        shared: None,
    },
    Protocol {
        name: "memcached",
        enabled: |c| c.memcached.enabled,
        recognise: memcached::recognise,
        new_parser: memcached::new_parser,
        shared: None,
    },
    Protocol {
        name: "kafka",
        enabled: |c| c.kafka.enabled,
        recognise: kafka::recognise,
        new_parser: kafka::new_parser,
        shared: Some(kafka::shared),
    },
    Protocol {
        name: "mongodb",
        enabled: |c| c.mongodb.enabled,
        recognise: mongodb::recognise,
        new_parser: mongodb::new_parser,
        shared: None,
    },
    Protocol {
        name: "mqtt",
        enabled: |c| c.mqtt.enabled,
        recognise: mqtt::recognise,
        new_parser: mqtt::new_parser,
        shared: None,
    },
    Protocol {
        name: "http2",
        enabled: |c| c.http2.enabled,
        recognise: http2::recognise,
        new_parser: http2::new_parser,
        shared: None,
    },
];

/// What a parser is created with.
#[derive(Debug, Clone, Default)]
pub struct ParserContext {
    /// The traced process's side, when the kernel saw the connection open.
    pub role: Option<Role>,
    /// HTTP: which exchanges' bodies to keep (the GenAI layer's choice).
    pub body_policy: Option<Arc<dyn BodyPolicy>>,
    /// Each protocol's options (what a parser keeps may depend on them:
    /// raw SQL text only when opted into) and switches (a parser that finds
    /// its stream is another protocol's hands it over only when that one is
    /// on: memcached → Redis).
    pub config: Arc<ProtocolsConfig>,
    /// The receiver's counters, for what a parser drops or cannot follow
    /// (beyond what the seam counts: failures, requests lost to gaps).
    pub stats: Arc<Stats>,
    /// The protocol's shared state (`Protocol::shared`), if it has one.
    pub shared: Option<SharedState>,
    /// Ports as the recogniser saw them (hints: a connection joined
    /// mid-way whose first bytes are an answer is told apart by its
    /// well-known port).
    pub local_port: Option<u16>,
    pub peer_port: Option<u16>,
}

impl ParserContext {
    /// The shared state as `T`, if the protocol has state of that type.
    pub fn shared<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.shared.clone()?.downcast::<T>().ok()
    }

    /// The traced process's side told by a protocol's well-known `port`:
    /// the server's when it is the local port, the client's when the peer's.
    pub fn role_on_port(&self, port: u16) -> Option<Role> {
        match (self.local_port, self.peer_port) {
            (Some(l), _) if l == port => Some(Role::Server),
            (_, Some(p)) if p == port => Some(Role::Client),
            _ => None,
        }
    }
}

/// `protocols` section of the configuration: a switch per protocol of
/// `PROTOCOLS`, under its name. A protocol switched off is never
/// recognised: its connections are muted like any stream nobody parses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ProtocolsConfig {
    /// HTTP/1.0 and HTTP/1.1, and the LLM API calls over them.
    pub http1: ProtocolSwitch,
    /// PostgreSQL (frontend/backend protocol 3), plain or over TLS.
    pub postgresql: SqlProtocolConfig,
    /// MySQL and MariaDB (client/server protocol 4.1), plain or over TLS.
    pub mysql: SqlProtocolConfig,
    /// Redis (RESP2 and RESP3): a span per command, never a key or a value.
    pub redis: ProtocolSwitch,
    /// memcached (text and meta protocols): a span per command, with hits
    /// and misses; never a key or a value.
    pub memcached: ProtocolSwitch,
    /// Apache Kafka: produce, fetch, offset commits and the group calls.
    pub kafka: ProtocolSwitch,
    /// The MongoDB wire protocol: commands and their replies.
    pub mongodb: ProtocolSwitch,
    /// MQTT 3.1, 3.1.1 and 5: connect, publish flows, subscriptions.
    pub mqtt: ProtocolSwitch,
    /// HTTP/2 (cleartext with prior knowledge or `Upgrade: h2c`, and over
    /// TLS), and the gRPC calls it carries.
    pub http2: Http2Config,
}

impl Default for ProtocolsConfig {
    fn default() -> Self {
        let on = ProtocolSwitch { enabled: true };
        Self {
            http1: on.clone(),
            postgresql: SqlProtocolConfig::default(),
            mysql: SqlProtocolConfig::default(),
            redis: on.clone(),
            memcached: on.clone(),
            kafka: on.clone(),
            mongodb: on.clone(),
            mqtt: on,
            http2: Http2Config::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ProtocolSwitch {
    /// Parse this protocol. Off, its connections are muted after their first
    /// payload, like any stream no enabled protocol recognises.
    pub enabled: bool,
}

impl Default for ProtocolSwitch {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// The enabled protocols, and what their parsers are created with.
#[derive(Debug, Clone, Default)]
pub struct Protocols {
    enabled: Vec<&'static Protocol>,
    /// Each enabled protocol's shared state, made once, in `enabled`'s order.
    shared: Vec<Option<SharedState>>,
    body_policy: Option<Arc<dyn BodyPolicy>>,
    config: Arc<ProtocolsConfig>,
    stats: Arc<Stats>,
}

/// What the enabled protocols make of a stream's first payload.
#[derive(Debug)]
pub enum Verdict {
    /// The protocol most sure of it, and a parser for it.
    Parse(&'static Protocol, Box<dyn Parser>),
    /// Some protocol needs the next chunk to tell, and none is certain.
    NeedMore,
    /// No enabled protocol follows it.
    Unknown,
}

impl Protocols {
    /// The protocols `config` leaves on; HTTP parsers keep the bodies `body_policy` selects.
    pub fn new(config: &ProtocolsConfig, body_policy: Option<Arc<dyn BodyPolicy>>) -> Self {
        Self {
            body_policy,
            config: Arc::new(config.clone()),
            ..Self::of(PROTOCOLS.iter().filter(|p| (p.enabled)(config)).collect())
        }
    }

    /// Parsers count what they drop into `stats` (default: counters nobody reads).
    pub fn counting_into(mut self, stats: Arc<Stats>) -> Self {
        self.stats = stats;
        self
    }

    /// Every protocol on by default, keeping no bodies (tests, replays).
    pub fn defaults() -> Self {
        Self::new(&ProtocolsConfig::default(), None)
    }

    /// Exactly `protocols` (tests of protocols not registered yet, fuzzing).
    #[doc(hidden)]
    pub fn of(protocols: Vec<&'static Protocol>) -> Self {
        let shared = protocols.iter().map(|p| p.shared.map(|make| make())).collect();
        Self { enabled: protocols, shared, ..Self::default() }
    }

    pub fn enabled(&self) -> impl Iterator<Item = &'static Protocol> + '_ {
        self.enabled.iter().copied()
    }

    /// The protocol named `name`, if it is enabled.
    pub fn named(&self, name: &str) -> Option<&'static Protocol> {
        self.enabled.iter().copied().find(|p| p.name == name)
    }

    /// The enabled protocol most sure of the stream, and a parser for it.
    /// `NeedMore` only when `can_wait` (the tracker can show the next
    /// chunk joined to this one) and no protocol is certain; otherwise a
    /// protocol that needs more counts as not recognising the stream.
    pub fn recognise(&self, hint: &Hint<'_>, can_wait: bool) -> Verdict {
        let mut best: Option<(usize, Recognition)> = None;
        let mut wait = false;
        for (i, p) in self.enabled.iter().enumerate() {
            let r = (p.recognise)(hint);
            if r == Recognition::NeedMore {
                wait = can_wait;
                continue;
            }
            if r > best.map_or(Recognition::NeedMore, |(_, r)| r) {
                best = Some((i, r));
                if r == Recognition::Certain {
                    break;
                }
            }
        }
        match best {
            Some((_, Recognition::Plausible)) | None if wait => Verdict::NeedMore,
            Some((i, _)) => {
                let protocol = self.enabled[i];
                Verdict::Parse(
                    protocol,
                    (protocol.new_parser)(&self.context_at(i, hint.role, hint.local_port, hint.peer_port)),
                )
            }
            None => Verdict::Unknown,
        }
    }

    /// What a parser of the enabled protocol `name` is created with, on a
    /// connection with these facts (a stream handed over to it mid-way);
    /// `None` when that protocol is not enabled.
    pub fn context(
        &self,
        name: &str,
        role: Option<Role>,
        local_port: Option<u16>,
        peer_port: Option<u16>,
    ) -> Option<ParserContext> {
        let i = self.enabled.iter().position(|p| p.name == name)?;
        Some(self.context_at(i, role, local_port, peer_port))
    }

    fn context_at(
        &self,
        i: usize,
        role: Option<Role>,
        local_port: Option<u16>,
        peer_port: Option<u16>,
    ) -> ParserContext {
        ParserContext {
            role,
            body_policy: self.body_policy.clone(),
            config: self.config.clone(),
            stats: self.stats.clone(),
            shared: self.shared[i].clone(),
            local_port,
            peer_port,
        }
    }
}

/// Turns records into operations: each protocol's description, with the
/// layers over it (HTTP: `http.route` templates, the GenAI layer).
#[derive(Debug)]
pub struct Describer {
    http: HttpLayers,
    sql: SqlDescriber,
    /// Records no operation could be made of (`operations_undescribed`).
    stats: Arc<Stats>,
    /// gRPC calls over HTTP/2 are described as RPCs (else as HTTP/2 requests).
    grpc: bool,
}

impl Describer {
    /// Panics if `config` was not validated (`Config::validate` checks routes and GenAI providers).
    pub fn new(config: &Config, stats: Arc<Stats>) -> Self {
        let routes = config.routes.matcher().expect("routes validated with the config");
        Self {
            http: HttpLayers::new(routes, GenAiStage::new(&config.genai, stats.clone())),
            sql: SqlDescriber::new(&config.protocols),
            stats,
            grpc: config.protocols.http2.grpc,
        }
    }

    /// What the HTTP parsers keep bodies for (LLM API calls), when the GenAI layer is on.
    pub fn body_policy(&self) -> Option<Arc<dyn BodyPolicy>> {
        self.http.genai().map(GenAiStage::body_policy)
    }

    /// Describes `record`, from a connection `facts` tells about, and hands
    /// each operation it makes to `emit`: one, or none for a record the
    /// protocol does not report (a Kafka Fetch its consumer abandoned by
    /// closing, an MQTT DISCONNECT) or cannot name (counted).
    pub fn describe(&mut self, record: &Record, facts: &ConnFacts, emit: &mut dyn FnMut(&Operation<'_>)) {
        match record {
            Record::Http1(ex) => self.http.describe(ex, facts, emit),
            Record::Sql(op) => self.sql.describe(op, facts, emit),
            Record::Redis(op) => redis::telemetry::describe(op, facts, emit),
            Record::Memcached(op) => memcached::telemetry::describe(op, facts, emit),
            Record::Kafka(op) => {
                if !kafka::telemetry::describe(op, facts, emit) {
                    self.stats.operations_undescribed.fetch_add(1, Relaxed);
                }
            }
            Record::Mongo(op) => {
                if !mongodb::telemetry::describe(op, facts, emit) {
                    self.stats.operations_undescribed.fetch_add(1, Relaxed);
                }
            }
            Record::Mqtt(op) => mqtt::telemetry::describe(op, facts, emit),
            Record::Http2(stream) => http2::describe(stream, self.grpc, &mut self.http, facts, emit),
            #[cfg(test)]
            Record::Example(call) => super::example::describe(call, facts, emit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_each_has_its_switch() {
        let mut names: Vec<&str> = PROTOCOLS.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PROTOCOLS.len());
        // The switch of each protocol is the key under its name.
        let defaults = serde_json::to_value(ProtocolsConfig::default()).unwrap();
        let keys: Vec<&String> = defaults.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), PROTOCOLS.len());
        for p in PROTOCOLS {
            let mut off = defaults.clone();
            off[p.name]["enabled"] = false.into();
            let off: ProtocolsConfig = serde_json::from_value(off).unwrap();
            assert!((p.enabled)(&ProtocolsConfig::default()), "{} is on by default", p.name);
            assert!(!(p.enabled)(&off), "{}", p.name);
            assert_eq!(Protocols::new(&off, None).enabled().count(), PROTOCOLS.len() - 1);
        }
    }
}
