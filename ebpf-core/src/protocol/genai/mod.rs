//! LLM API calls (OpenAI and compatible servers, Azure OpenAI, Anthropic,
//! Gemini and Vertex AI, Ollama, and user-described providers) recognised
//! from HTTP request heads, and their bodies read into the facts the
//! OpenTelemetry GenAI semantic conventions ask for: models, token usage,
//! finish reasons, error codes, request parameters and, only when opted in,
//! prompts and completions.
//!
//! A layer over HTTP records, not a protocol of its own (`layer`).
//!
//! Flow: `Catalog::classify` on every request head (cheap, no allocation
//! unless it matches) → the HTTP parser keeps that exchange's bodies →
//! `Catalog::extract` → `GenAiCall`. Providers are data (`providers.json`,
//! same schema as user ones in `GenAiConfig::providers`), so a new API needs
//! no code. Operation names: `/v1/responses` is `chat` (OpenAI's
//! conventions tell it apart by `openai.api.type`, not the operation);
//! Ollama's `/api/generate` (prompt in, text out) is `text_completion`;
//! Gemini's `generateContent` is `generate_content`.
//!
//! `gen_ai.usage.input_tokens` counts every input token, cached ones
//! included (Anthropic's `input_tokens` excludes them: the built-in entry
//! adds its cache reads and writes); output tokens include reasoning ones
//! (Gemini's `candidatesTokenCount` excludes `thoughtsTokenCount`: added).

mod catalog;
mod config;
mod content;
mod encoding;
mod endpoint;
mod extract;
mod framing;
pub mod layer;
mod pointer;
mod scan;

#[cfg(test)]
mod tests;

pub use catalog::Catalog;
pub use config::{EndpointSpec, GenAiConfig, ProviderSpec, RequestFields, ResponseFields};
pub use content::MAX_CONTENT_BYTES;
pub use layer::GenAiStage;

/// A request recognised as an LLM API call: which provider and endpoint of
/// the catalog that classified it, and the model named in its path, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct CallMatch {
    provider: usize,
    endpoint: usize,
    path_model: Option<String>,
}

impl CallMatch {
    /// `gen_ai.provider.name` ("" for a match from another catalog).
    pub fn provider_name<'c>(&self, catalog: &'c Catalog) -> &'c str {
        catalog.lookup(self).map_or("", |(provider, _)| &provider.name)
    }

    /// `gen_ai.operation.name` ("" for a match from another catalog).
    pub fn operation<'c>(&self, catalog: &'c Catalog) -> &'c str {
        catalog.lookup(self).map_or("", |(_, endpoint)| &endpoint.operation)
    }

    /// The model captured from the path (Gemini, Azure deployments), before
    /// any body is seen: enough for a span name when the bodies are lost.
    pub fn path_model(&self) -> Option<&str> {
        self.path_model.as_deref()
    }
}

/// The two bodies of one exchange, as kept, and the headers that say how
/// to read them.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExchangeBodies<'a> {
    pub request: BodyBytes<'a>,
    pub response: BodyBytes<'a>,
    pub request_content_encoding: Option<&'a str>,
    pub response_content_type: Option<&'a str>,
    pub response_content_encoding: Option<&'a str>,
    /// None: no response came.
    pub status: Option<u16>,
}

/// A body as kept: the whole body is `head`, then `skipped` bytes nobody
/// kept (kept-size cap, or bytes the kernel did not capture), then `tail`.
/// With `skipped == 0`, head ++ tail is the whole body (tail may be empty).
/// `complete`: the message ended normally (false: cut by connection close
/// or lost events).
#[derive(Debug, Clone, Copy, Default)]
pub struct BodyBytes<'a> {
    pub head: &'a [u8],
    pub tail: &'a [u8],
    pub skipped: u64,
    pub complete: bool,
}

/// What one LLM API call was, per the GenAI semantic conventions. Strings
/// taken from bodies are cut to 256 bytes; lists hold at most 16 entries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GenAiCall {
    /// `gen_ai.provider.name` ("openai", "anthropic", "gcp.gemini",
    /// "ollama" (no registry value), ...).
    pub provider: String,
    /// `gen_ai.operation.name`.
    pub operation: String,
    /// `gen_ai.request.model`: from the request body, else from the path.
    pub request_model: Option<String>,
    pub response_model: Option<String>,
    pub response_id: Option<String>,
    /// `gen_ai.request.stream`: the request asked for a stream, the
    /// endpoint streams by default, or the response was one.
    pub stream: bool,
    /// All input tokens, cached ones included.
    pub input_tokens: Option<u64>,
    /// All output tokens, reasoning ones included.
    pub output_tokens: Option<u64>,
    pub cache_read_input_tokens: Option<u64>,
    pub cache_creation_input_tokens: Option<u64>,
    pub reasoning_output_tokens: Option<u64>,
    pub finish_reasons: Vec<String>,
    /// `error.type` from an error body (an error event mid-stream counts);
    /// None when the body names none: the HTTP status is then the caller's.
    pub error_type: Option<String>,
    pub request_max_tokens: Option<u64>,
    pub request_temperature: Option<f64>,
    pub request_top_p: Option<f64>,
    pub request_top_k: Option<f64>,
    pub request_seed: Option<i64>,
    pub request_frequency_penalty: Option<f64>,
    pub request_presence_penalty: Option<f64>,
    pub request_stop_sequences: Vec<String>,
    /// `gen_ai.request.choice.count` (record it only when != 1).
    pub request_choice_count: Option<u64>,
    /// Only with `capture_content`: `gen_ai.system_instructions` JSON.
    pub system_instructions: Option<String>,
    /// Only with `capture_content`: `gen_ai.input.messages` JSON, at most
    /// `MAX_CONTENT_BYTES`.
    pub input_messages: Option<String>,
    /// Only with `capture_content`: `gen_ai.output.messages` JSON (stream
    /// text accumulated), at most `MAX_CONTENT_BYTES`.
    pub output_messages: Option<String>,
    /// Why extraction fell short, for a debug log or counter: "no response",
    /// "response body not JSON", "response body cut: usage not seen",
    /// "response body cut before its end", "response has no usage", "encoded body cut: not decoded",
    /// "unsupported content-encoding", "body could not be decoded",
    /// "request body not JSON", "request body cut", ...
    pub problem: Option<&'static str>,
}
