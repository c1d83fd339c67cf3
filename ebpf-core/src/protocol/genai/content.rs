//! Opt-in content capture: prompts and completions rewritten into the
//! semantic conventions' message shapes (`gen_ai.input.messages`,
//! `gen_ai.output.messages`, `gen_ai.system_instructions`), best effort.
//!
//! Providers spell messages differently, but alike enough for one reader:
//! a message is `{role, content}` (OpenAI, Anthropic, Ollama) or
//! `{role, parts}` (Gemini); content is a string or a list of parts; a part
//! is a string or an object with `text`, or a tool call/result. A bare
//! string (a prompt, Responses API `input`) is one user message. Images and
//! other media become a part naming only their type: their bytes are never
//! copied.
//!
//! Each attribute is valid JSON of at most `MAX_CONTENT_BYTES`: texts are
//! cut (latest messages keep the most), then old messages dropped, until
//! it fits.

use super::pointer::cut;
use serde_json::{json, Map, Value};

pub const MAX_CONTENT_BYTES: usize = 16 * 1024;

/// Text budgets and message counts tried in turn until the JSON fits; the
/// last always does (4 messages of 16 parts without text).
const SHRINK_STEPS: [(usize, usize); 6] = [(16384, 64), (4096, 64), (1024, 32), (256, 16), (64, 8), (0, 4)];
const MAX_PARTS: usize = 16;
const MAX_ROLE_BYTES: usize = 32;
/// Tool call ids and names, cut so that the smallest shrink step always fits.
const MAX_NAME_BYTES: usize = 64;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    ToolCall {
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
    ToolResult {
        id: Option<String>,
        result: String,
    },
    /// Media and anything unknown: the part's type only.
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Message {
    role: String,
    parts: Vec<Part>,
    finish_reason: Option<String>,
}

/// `gen_ai.input.messages` from the value at a `messages` pointer.
pub fn input_messages(value: &Value) -> Option<String> {
    let messages: Vec<Message> = match value {
        Value::Array(items) => items.iter().filter_map(message).collect(),
        other => message(other).into_iter().collect(),
    };
    render_messages(&messages)
}

/// `gen_ai.system_instructions`: a list of parts.
pub fn system_instructions(value: &Value) -> Option<String> {
    let parts = parts(value);
    if parts.is_empty() {
        return None;
    }
    let message = Message { role: String::new(), parts, finish_reason: None };
    SHRINK_STEPS.iter().find_map(|&(budget, _)| {
        let rendered = render(std::slice::from_ref(&message), budget)?;
        let parts = rendered.into_iter().next()?.get("parts").cloned()?;
        Some(parts.to_string()).filter(|s| s.len() <= MAX_CONTENT_BYTES)
    })
}

/// `gen_ai.output.messages`: one assistant message with the completion text.
pub fn output_messages(text: &str, finish_reason: Option<&str>) -> Option<String> {
    if text.is_empty() {
        return None;
    }
    let message = Message {
        role: "assistant".into(),
        parts: vec![Part::Text(text.to_string())],
        finish_reason: finish_reason.map(str::to_string),
    };
    render_messages(&[message])
}

/// Completion text appended across stream objects, bounded.
#[derive(Debug, Default)]
pub struct OutputText {
    pub text: String,
}

impl OutputText {
    pub fn push(&mut self, piece: &str) {
        let room = MAX_CONTENT_BYTES.saturating_sub(self.text.len());
        self.text.push_str(cut(piece, room));
    }
}

fn message(value: &Value) -> Option<Message> {
    let parts_of_message = match value {
        Value::Object(map) => {
            let mut parts = match map.get("content").or_else(|| map.get("parts")) {
                Some(content) => parts(content),
                None => Vec::new(),
            };
            if let Some(Value::Array(calls)) = map.get("tool_calls") {
                parts.extend(calls.iter().filter_map(openai_tool_call));
            }
            if let (Some("tool"), Some(id)) = (str_at(map, "role"), str_at(map, "tool_call_id")) {
                let result = parts.iter().map(part_text).collect::<Vec<_>>().join("");
                parts = vec![Part::ToolResult { id: Some(cut(id, MAX_NAME_BYTES).to_string()), result }];
            }
            parts
        }
        other => parts(other),
    };
    if parts_of_message.is_empty() {
        return None;
    }
    let role = match value.get("role").and_then(Value::as_str) {
        // Gemini's name for the assistant.
        Some("model") => "assistant",
        Some(role) => cut(role, MAX_ROLE_BYTES),
        None => "user",
    };
    Some(Message { role: role.to_string(), parts: parts_of_message, finish_reason: None })
}

fn parts(value: &Value) -> Vec<Part> {
    match value {
        Value::String(text) => vec![Part::Text(text.clone())],
        Value::Array(items) => items.iter().filter_map(part).take(MAX_PARTS).collect(),
        Value::Object(map) => match map.get("parts") {
            Some(inner @ Value::Array(_)) => parts(inner),
            _ => part(value).into_iter().collect(),
        },
        _ => Vec::new(),
    }
}

fn part(value: &Value) -> Option<Part> {
    let map = match value {
        Value::String(text) => return Some(Part::Text(text.clone())),
        Value::Object(map) => map,
        _ => return None,
    };
    if let Some(text) = str_at(map, "text") {
        return Some(Part::Text(text.to_string()));
    }
    let kind = str_at(map, "type");
    if kind == Some("tool_use") {
        return Some(Part::ToolCall {
            id: name_at(map, "id"),
            name: name_at(map, "name"),
            arguments: map.get("input").map(Value::to_string).unwrap_or_default(),
        });
    }
    if kind == Some("tool_result") {
        let result = map.get("content").map(|c| parts(c).iter().map(part_text).collect()).unwrap_or_default();
        return Some(Part::ToolResult { id: name_at(map, "tool_use_id"), result });
    }
    if let Some(Value::Object(call)) = map.get("functionCall") {
        return Some(Part::ToolCall {
            id: name_at(call, "id"),
            name: name_at(call, "name"),
            arguments: call.get("args").map(Value::to_string).unwrap_or_default(),
        });
    }
    if let Some(Value::Object(response)) = map.get("functionResponse") {
        return Some(Part::ToolResult {
            id: name_at(response, "id"),
            result: response.get("response").map(Value::to_string).unwrap_or_default(),
        });
    }
    let kind = kind.or_else(|| map.keys().next().map(String::as_str)).unwrap_or("unknown");
    Some(Part::Other(cut(kind, MAX_ROLE_BYTES).to_string()))
}

fn openai_tool_call(call: &Value) -> Option<Part> {
    let (Value::Object(call), Some(Value::Object(function))) = (call, call.get("function")) else { return None };
    Some(Part::ToolCall {
        id: name_at(call, "id"),
        name: name_at(function, "name"),
        arguments: function.get("arguments").and_then(Value::as_str).unwrap_or_default().to_string(),
    })
}

fn str_at<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v str> {
    map.get(key).and_then(Value::as_str)
}

fn name_at(map: &Map<String, Value>, key: &str) -> Option<String> {
    str_at(map, key).map(|s| cut(s, MAX_NAME_BYTES).to_string())
}

fn part_text(part: &Part) -> &str {
    match part {
        Part::Text(text) => text,
        Part::ToolResult { result, .. } => result,
        _ => "",
    }
}

fn render_messages(messages: &[Message]) -> Option<String> {
    if messages.is_empty() {
        return None;
    }
    for &(budget, max_messages) in &SHRINK_STEPS {
        let kept = &messages[messages.len().saturating_sub(max_messages)..];
        let text = Value::Array(render(kept, budget)?).to_string();
        if text.len() <= MAX_CONTENT_BYTES {
            return Some(text);
        }
    }
    None
}

/// The messages as JSON values, their texts cut to share `budget` bytes,
/// the latest messages served first.
fn render(messages: &[Message], budget: usize) -> Option<Vec<Value>> {
    let mut left = budget;
    let mut out: Vec<Value> = Vec::with_capacity(messages.len());
    for message in messages.iter().rev() {
        let mut take = |text: &str| -> String {
            let kept = cut(text, left);
            left -= kept.len();
            kept.to_string()
        };
        let parts: Vec<Value> = message
            .parts
            .iter()
            .take(MAX_PARTS)
            .map(|part| match part {
                Part::Text(text) => json!({"type": "text", "content": take(text)}),
                Part::ToolCall { id, name, arguments } => {
                    json!({"type": "tool_call", "id": id, "name": name, "arguments": take(arguments)})
                }
                Part::ToolResult { id, result } => {
                    json!({"type": "tool_call_response", "id": id, "result": take(result)})
                }
                Part::Other(kind) => json!({ "type": kind }),
            })
            .collect();
        let mut rendered = Map::new();
        if !message.role.is_empty() {
            rendered.insert("role".into(), Value::String(message.role.clone()));
        }
        rendered.insert("parts".into(), Value::Array(parts));
        if let Some(reason) = &message.finish_reason {
            rendered.insert("finish_reason".into(), Value::String(reason.clone()));
        }
        out.push(Value::Object(rendered));
    }
    out.reverse();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_message_shapes() {
        let openai = json!([
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "data:..."}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"}
        ]);
        let got: Value = serde_json::from_str(&input_messages(&openai).unwrap()).unwrap();
        assert_eq!(
            got,
            json!([
                {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
                {"role": "user", "parts": [{"type": "text", "content": "hi"}, {"type": "image_url"}]},
                {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "f", "arguments": "{\"x\":1}"}]},
                {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "result": "42"}]}
            ])
        );
        let gemini = json!([{"role": "model", "parts": [{"text": "a"}, {"inlineData": {"data": "AAAA"}}]}]);
        let got: Value = serde_json::from_str(&input_messages(&gemini).unwrap()).unwrap();
        assert_eq!(
            got,
            json!([{"role": "assistant", "parts": [{"type": "text", "content": "a"}, {"type": "inlineData"}]}])
        );
        let prompt: Value = serde_json::from_str(&input_messages(&json!("just text")).unwrap()).unwrap();
        assert_eq!(prompt, json!([{"role": "user", "parts": [{"type": "text", "content": "just text"}]}]));
        let system = system_instructions(&json!({"parts": [{"text": "sys"}]})).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&system).unwrap(), json!([{"type": "text", "content": "sys"}]));
    }

    #[test]
    fn big_content_stays_valid_json_within_the_limit() {
        let many: Vec<Value> =
            (0..500).map(|i| json!({"role": "user", "content": format!("{i}: {}", "x\"".repeat(300))})).collect();
        let text = input_messages(&Value::Array(many)).unwrap();
        assert!(text.len() <= MAX_CONTENT_BYTES);
        let parsed: Value = serde_json::from_str(&text).unwrap();
        let last = parsed.as_array().unwrap().last().unwrap()["parts"][0]["content"].as_str().unwrap().to_string();
        assert!(last.starts_with("499: "), "latest message kept: {last:.20}");

        let out = output_messages(&"é".repeat(20_000), Some("stop")).unwrap();
        assert!(out.len() <= MAX_CONTENT_BYTES);
        assert_eq!(serde_json::from_str::<Value>(&out).unwrap()[0]["finish_reason"], "stop");
    }

    #[test]
    fn output_text_is_bounded() {
        let mut out = OutputText::default();
        for _ in 0..100 {
            out.push(&"ab".repeat(500));
        }
        assert_eq!(out.text.len(), MAX_CONTENT_BYTES);
    }
}
