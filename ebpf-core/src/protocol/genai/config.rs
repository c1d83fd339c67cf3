//! The `genai` configuration section, and the provider schema shared by the
//! built-in catalog (`providers.json`) and user-defined providers, so that a
//! user can describe any JSON-over-HTTP LLM API without a rebuild.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::Problems;

/// Smallest and largest accepted `max_body_bytes`: below 4 KiB even a usage
/// object may not fit in a kept tail; above 64 MiB one call could hold more
/// memory than a whole batch queue.
const MIN_BODY_BYTES: usize = 4 * 1024;
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Most `providers`: 1,000 build in 0.1 s; 40,000 took 6 s and 1.4 GiB.
const MAX_PROVIDERS: usize = 1000;
/// Most host globs, and most endpoints, of all providers together (each
/// provider's hosts compile into a matcher of their own: 1,000 providers of
/// 350 hosts took 3 s and 400 MiB).
const MAX_HOSTS: usize = 10_000;
const MAX_ENDPOINTS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GenAiConfig {
    /// Recognise LLM API calls and emit `gen_ai.*` spans and metrics for them.
    pub enabled: bool,
    /// Record prompts and completions (`gen_ai.input.messages`, ...). Off by
    /// default: with it off, no prompt or completion text leaves the host.
    pub capture_content: bool,
    /// Most bytes kept per body (request or response): the first half and
    /// the last half, because the model is near the start and usage near the
    /// end.
    #[schemars(range(min = MIN_BODY_BYTES, max = MAX_BODY_BYTES), extend("x-unit" = "bytes"))]
    pub max_body_bytes: usize,
    /// User-defined LLM APIs, tried before the built-in ones (see the
    /// README's "LLM API calls" for their keys); at most 10,000 `hosts` and
    /// 10,000 `endpoints` among them.
    #[schemars(length(max = MAX_PROVIDERS))]
    pub providers: Vec<ProviderSpec>,
}

impl GenAiConfig {
    /// What the schema cannot say: totals across providers, and providers
    /// that compile into a catalog.
    pub(crate) fn check(&self, problems: &mut Problems) {
        for (name, count, limit) in [
            ("hosts", self.providers.iter().map(|p| p.hosts.len()).sum::<usize>(), MAX_HOSTS),
            ("endpoints", self.providers.iter().map(|p| p.endpoints.len()).sum(), MAX_ENDPOINTS),
        ] {
            if count > limit {
                problems.push(
                    "genai.providers",
                    format!("{count} {name} in all providers together: at most {limit} are allowed"),
                );
            }
        }
        if !problems.touch("genai") {
            if let Err(e) = super::Catalog::new(self) {
                problems.push("genai.providers", e);
            }
        }
    }
}

impl Default for GenAiConfig {
    fn default() -> Self {
        Self { enabled: true, capture_content: false, max_body_bytes: 1024 * 1024, providers: Vec::new() }
    }
}

/// One LLM API flavour: where its calls go and where its JSON keeps what the
/// `gen_ai.*` attributes need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// `gen_ai.provider.name`.
    pub name: String,
    /// Take `endpoints` and every field list left empty here from the first
    /// provider of this name that comes AFTER this one (user providers come
    /// before the built-in ones, so `inherit: openai` reuses the built-in
    /// OpenAI field lists, even from a user provider itself named `openai`).
    #[serde(default)]
    pub inherit: Option<String>,
    /// Globs on the Host header (case-insensitive; matched with and without
    /// the port). Empty: any host.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// POST request paths that are calls of this provider.
    #[serde(default)]
    pub endpoints: Vec<EndpointSpec>,
    #[serde(default)]
    pub request: RequestFields,
    #[serde(default)]
    pub response: ResponseFields,
}

/// A path pattern and the operation it performs. Patterns are matched
/// against the path only (the query string is ignored): literal segments,
/// `*` for one segment, `**` for any number of segments (at most once per
/// pattern), and `{model}` capturing the model from one segment. `*` and
/// `{model}` may share a segment with literal text, as in Gemini's
/// `/v1beta/models/{model}:generateContent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointSpec {
    pub path: String,
    /// `gen_ai.operation.name` (registry values: chat, text_completion,
    /// embeddings, generate_content, ...; others are passed through).
    pub operation: String,
    /// The call streams unless the request's `stream` field says otherwise
    /// (Ollama), or always (Gemini `:streamGenerateContent`, which has no
    /// such field).
    #[serde(default)]
    pub stream: bool,
}

/// Where the request body keeps each value. Every field is a list of
/// pointers tried in order; see `ResponseFields` for the pointer syntax.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RequestFields {
    pub model: Vec<String>,
    pub stream: Vec<String>,
    pub max_tokens: Vec<String>,
    pub temperature: Vec<String>,
    pub top_p: Vec<String>,
    pub top_k: Vec<String>,
    pub seed: Vec<String>,
    pub frequency_penalty: Vec<String>,
    pub presence_penalty: Vec<String>,
    pub stop_sequences: Vec<String>,
    pub choice_count: Vec<String>,
    /// Content (read only with `capture_content`): the chat history, an array
    /// of `{role, content|parts}` messages...
    pub messages: Vec<String>,
    /// ...or a bare prompt (string or array of strings), a user message...
    pub prompt: Vec<String>,
    /// ...and system instructions given apart from the history.
    pub system: Vec<String>,
}

/// Where each response object keeps each value.
///
/// Pointer syntax: RFC 6901 JSON pointers (`/usage/prompt_tokens`, `~0` and
/// `~1` escapes, numeric segments index arrays), plus:
/// - a `*` segment fans out over the elements of an array
///   (`/choices/*/finish_reason`); numbers found that way are added up;
/// - `a+b+c` adds up the numbers at several pointers, present when any of
///   them is (Anthropic's input tokens exclude cached ones:
///   `/usage/input_tokens+/usage/cache_read_input_tokens+/usage/cache_creation_input_tokens`).
///
/// A list's first pointer present (not null) in an object wins. In a stream
/// (SSE events, NDJSON lines, JSON array elements) every object is looked at
/// and the last one that has a value wins, except for lists (finish reasons),
/// which collect the distinct values in order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseFields {
    pub model: Vec<String>,
    pub id: Vec<String>,
    /// All input tokens, cached ones included (`gen_ai.usage.input_tokens`).
    pub input_tokens: Vec<String>,
    /// All output tokens, reasoning ones included.
    pub output_tokens: Vec<String>,
    pub cache_read_input_tokens: Vec<String>,
    pub cache_creation_input_tokens: Vec<String>,
    pub reasoning_output_tokens: Vec<String>,
    pub finish_reasons: Vec<String>,
    /// A low-cardinality error code from an error body.
    pub error_type: Vec<String>,
    /// Content (read only with `capture_content`): completion text; in a
    /// stream, the pieces of every object are appended.
    pub output_text: Vec<String>,
}

impl RequestFields {
    /// Every list with its name, for inheritance and error messages.
    pub(super) fn lists_mut(&mut self) -> [(&'static str, &mut Vec<String>); 13] {
        [
            ("model", &mut self.model),
            ("stream", &mut self.stream),
            ("max_tokens", &mut self.max_tokens),
            ("temperature", &mut self.temperature),
            ("top_p", &mut self.top_p),
            ("top_k", &mut self.top_k),
            ("seed", &mut self.seed),
            ("frequency_penalty", &mut self.frequency_penalty),
            ("presence_penalty", &mut self.presence_penalty),
            ("stop_sequences", &mut self.stop_sequences),
            ("choice_count", &mut self.choice_count),
            ("messages", &mut self.messages),
            ("system", &mut self.system),
        ]
    }
}

impl ResponseFields {
    pub(super) fn lists_mut(&mut self) -> [(&'static str, &mut Vec<String>); 10] {
        [
            ("model", &mut self.model),
            ("id", &mut self.id),
            ("input_tokens", &mut self.input_tokens),
            ("output_tokens", &mut self.output_tokens),
            ("cache_read_input_tokens", &mut self.cache_read_input_tokens),
            ("cache_creation_input_tokens", &mut self.cache_creation_input_tokens),
            ("reasoning_output_tokens", &mut self.reasoning_output_tokens),
            ("finish_reasons", &mut self.finish_reasons),
            ("error_type", &mut self.error_type),
            ("output_text", &mut self.output_text),
        ]
    }
}

impl ProviderSpec {
    /// Fills what this spec leaves empty from `base` (see `inherit`).
    pub(super) fn inherit_from(&mut self, base: &ProviderSpec) {
        if self.endpoints.is_empty() {
            self.endpoints = base.endpoints.clone();
        }
        let mut base = base.clone();
        for ((_, mine), (_, theirs)) in self.request.lists_mut().into_iter().zip(base.request.lists_mut()) {
            if mine.is_empty() {
                *mine = std::mem::take(theirs);
            }
        }
        for ((_, mine), (_, theirs)) in self.response.lists_mut().into_iter().zip(base.response.lists_mut()) {
            if mine.is_empty() {
                *mine = std::mem::take(theirs);
            }
        }
    }
}
