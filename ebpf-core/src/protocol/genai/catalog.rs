//! The provider catalog: user providers, then the built-in ones from
//! `providers.json`, validated and compiled once at config time.

use super::config::{GenAiConfig, ProviderSpec};
use super::endpoint::{PathPattern, PathView};
use super::pointer::{cut, FieldPath, Sums, MAX_VALUE_BYTES};
use super::{extract, CallMatch, ExchangeBodies, GenAiCall};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// The built-in providers, as data in the user-facing schema.
const BUILT_IN: &str = include_str!("providers.json");

/// Shortest kernel prefix: "POST /" and one byte of path.
const MIN_KERNEL_PREFIX: usize = 7;

/// Built-in providers and user ones (user ones first, so they win where
/// both match). Immutable once built; share it in an `Arc`.
#[derive(Debug)]
pub struct Catalog {
    pub(super) providers: Vec<Provider>,
    /// Every pattern's literal end, when all have one: a path whose last
    /// segment ends with none of them is no call (most POSTs stop here).
    suffixes: Option<Vec<String>>,
    capture_content: bool,
    max_body_bytes: usize,
}

#[derive(Debug)]
pub(super) struct Provider {
    pub name: String,
    /// None: any host.
    hosts: Option<GlobSet>,
    pub endpoints: Vec<Endpoint>,
    pub request: RequestPaths,
    pub response: ResponsePaths,
}

#[derive(Debug)]
pub(super) struct Endpoint {
    pattern: PathPattern,
    pub operation: String,
    pub stream: bool,
}

#[derive(Debug)]
pub(super) struct RequestPaths {
    pub model: FieldPath,
    pub stream: FieldPath,
    pub max_tokens: FieldPath,
    pub temperature: FieldPath,
    pub top_p: FieldPath,
    pub top_k: FieldPath,
    pub seed: FieldPath,
    pub frequency_penalty: FieldPath,
    pub presence_penalty: FieldPath,
    pub stop_sequences: FieldPath,
    pub choice_count: FieldPath,
    pub messages: FieldPath,
    pub system: FieldPath,
    /// Top-level keys worth parsing when the body must be scanned.
    pub scan_keys: Vec<String>,
}

#[derive(Debug)]
pub(super) struct ResponsePaths {
    pub model: FieldPath,
    pub id: FieldPath,
    pub input_tokens: FieldPath,
    pub output_tokens: FieldPath,
    pub cache_read_input_tokens: FieldPath,
    pub cache_creation_input_tokens: FieldPath,
    pub reasoning_output_tokens: FieldPath,
    pub finish_reasons: FieldPath,
    pub error_type: FieldPath,
    pub output_text: FieldPath,
    pub scan_keys: Vec<String>,
}

impl Catalog {
    /// Err(message naming the bad provider and field) on an invalid
    /// configuration. `config` is within the limits `Config::validate`
    /// checks (`max_body_bytes` among them).
    pub fn new(config: &GenAiConfig) -> Result<Catalog, String> {
        let built_in: Vec<ProviderSpec> =
            serde_json::from_str(BUILT_IN).map_err(|e| format!("built-in GenAI provider catalog: {e}"))?;
        let user_count = config.providers.len();
        let mut specs: Vec<ProviderSpec> = config.providers.iter().cloned().chain(built_in).collect();
        let label = |i: usize, name: &str| {
            if i < user_count {
                format!("genai.providers[{i}] ({name:?})")
            } else {
                format!("built-in GenAI provider {name:?}")
            }
        };
        // Bases come after their heirs, so resolving from the end sees every
        // base already complete.
        for i in (0..specs.len()).rev() {
            let Some(base_name) = specs[i].inherit.clone() else { continue };
            let Some(base) = specs[i + 1..].iter().find(|s| s.name == base_name).cloned() else {
                return Err(format!("{}: inherit: no provider {base_name:?} after it", label(i, &specs[i].name)));
            };
            specs[i].inherit_from(&base);
        }
        let providers = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| Provider::compile(spec, &label(i, &spec.name), config.capture_content))
            .collect::<Result<Vec<_>, _>>()?;
        let suffixes = providers
            .iter()
            .flat_map(|p| &p.endpoints)
            .map(|e| e.pattern.literal_suffix().map(str::to_string))
            .collect::<Option<Vec<String>>>()
            .map(|mut all| {
                all.sort();
                all.dedup();
                all
            });
        Ok(Catalog {
            providers,
            suffixes,
            capture_content: config.capture_content,
            max_body_bytes: config.max_body_bytes,
        })
    }

    /// Is this request an LLM API call? Cheap enough for every request head:
    /// anything but POST is refused at once, and a path that matches no
    /// pattern allocates nothing. `target` is the request-target as sent;
    /// its query string is ignored (and never copied: it may hold API keys).
    /// `host` is the Host header (an absolute-form target's authority stands
    /// in when it is absent).
    pub fn classify(&self, method: &str, target: &str, host: Option<&str>) -> Option<CallMatch> {
        if method != "POST" {
            return None;
        }
        let (path, authority) = split_target(target)?;
        let view = PathView::new(path)?;
        if let Some(suffixes) = &self.suffixes {
            let last = PathPattern::last_segment(view);
            if !suffixes.iter().any(|suffix| last.ends_with(suffix.as_str())) {
                return None;
            }
        }
        let host = host.or(authority);
        for (provider_index, provider) in self.providers.iter().enumerate() {
            for (endpoint_index, endpoint) in provider.endpoints.iter().enumerate() {
                let Some(model) = endpoint.pattern.matches(view) else { continue };
                if !provider.serves(host) {
                    break;
                }
                return Some(CallMatch {
                    provider: provider_index,
                    endpoint: endpoint_index,
                    path_model: model.map(|m| cut(m, MAX_VALUE_BYTES).to_string()),
                });
            }
        }
        None
    }

    /// Request-line prefixes by which the kernel can tell, from the first
    /// bytes a connection moves, that it carries LLM calls: "POST " and each
    /// endpoint pattern's literal start, deduplicated (a prefix covers its
    /// extensions), at most `max` of at most `max_len` bytes. When there are
    /// more, the two sharing the longest common start merge into it, never
    /// below "POST /x"; if that is not enough, those covering the fewest
    /// endpoints are left out (and logged).
    /// Patterns starting with `**` give none: such calls are only found in
    /// user space.
    pub fn kernel_prefixes(&self, max: usize, max_len: usize) -> Vec<Vec<u8>> {
        if max == 0 || max_len < MIN_KERNEL_PREFIX {
            return Vec::new();
        }
        let mut prefixes: Vec<Vec<u8>> = self
            .providers
            .iter()
            .flat_map(|p| &p.endpoints)
            .map(|e| e.pattern.literal_prefix())
            .filter(|literal| literal.len() > 1)
            .map(|literal| {
                let mut prefix = b"POST ".to_vec();
                prefix.extend_from_slice(literal.as_bytes());
                prefix.truncate(max_len);
                prefix
            })
            .collect();
        let every = prefixes.clone();
        minimal_cover(&mut prefixes);
        while prefixes.len() > max {
            let best = prefixes
                .windows(2)
                .enumerate()
                .map(|(i, pair)| (common_len(&pair[0], &pair[1]), i))
                .filter(|&(len, _)| len >= MIN_KERNEL_PREFIX)
                .max_by_key(|&(len, i)| (len, std::cmp::Reverse(i)));
            let Some((len, i)) = best else { break };
            prefixes[i].truncate(len);
            minimal_cover(&mut prefixes);
        }
        if prefixes.len() > max {
            log::warn!(
                "GenAI: {} kernel request prefixes do not fit in {max}; calls on the others are only seen after user space notices them",
                prefixes.len()
            );
            // Keep those that cover the most endpoints.
            let covered = |prefix: &[u8]| every.iter().filter(|e| e.starts_with(prefix)).count();
            prefixes.sort_by_cached_key(|p| std::cmp::Reverse(covered(p)));
            prefixes.truncate(max);
            prefixes.sort();
        }
        prefixes
    }

    /// Parses the bodies of a call. Never panics, whatever the bytes.
    pub fn extract(&self, m: &CallMatch, bodies: &ExchangeBodies<'_>) -> GenAiCall {
        extract::extract(self, m, bodies)
    }

    /// Whether prompts and completions are recorded.
    pub fn capture_content(&self) -> bool {
        self.capture_content
    }

    /// Most bytes to keep per body (half head, half tail).
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    pub(super) fn lookup(&self, m: &CallMatch) -> Option<(&Provider, &Endpoint)> {
        let provider = self.providers.get(m.provider)?;
        Some((provider, provider.endpoints.get(m.endpoint)?))
    }
}

/// Sorted, without duplicates, and without any entry another one starts.
fn minimal_cover(prefixes: &mut Vec<Vec<u8>>) {
    prefixes.sort();
    prefixes.dedup();
    // Sorted, an entry's extensions follow it directly.
    let mut kept: Vec<Vec<u8>> = Vec::with_capacity(prefixes.len());
    for prefix in prefixes.drain(..) {
        if kept.last().is_some_and(|last| prefix.starts_with(last)) {
            continue;
        }
        kept.push(prefix);
    }
    *prefixes = kept;
}

fn common_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The path (without query or fragment) of an origin-form or absolute-form
/// request-target, and the absolute form's authority.
fn split_target(target: &str) -> Option<(&str, Option<&str>)> {
    let (path, authority) = if target.starts_with('/') {
        (target, None)
    } else {
        let (_, after_scheme) = target.split_once("://")?;
        let end = after_scheme.find(['/', '?', '#']).unwrap_or(after_scheme.len());
        let authority = &after_scheme[..end];
        // user:password@ never reaches a host glob.
        let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        (&after_scheme[end..], Some(authority))
    };
    let end = path.find(['?', '#']).unwrap_or(path.len());
    Some((&path[..end], authority))
}

/// `host` without its port, if it has one ("[::1]:8080" → "[::1]").
fn strip_port(host: &str) -> Option<&str> {
    let (name, port) = host.rsplit_once(':')?;
    let bracketed_v6 = name.starts_with('[') && name.ends_with(']');
    let plain = !name.contains(':');
    ((bracketed_v6 || plain) && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())).then_some(name)
}

impl Provider {
    fn compile(spec: &ProviderSpec, label: &str, capture_content: bool) -> Result<Provider, String> {
        if spec.name.trim().is_empty() {
            return Err(format!("{label}: name is empty"));
        }
        if spec.endpoints.is_empty() {
            return Err(format!("{label}: no endpoints"));
        }
        let hosts = if spec.hosts.is_empty() {
            None
        } else {
            let mut set = GlobSetBuilder::new();
            for host in &spec.hosts {
                let glob = GlobBuilder::new(host).case_insensitive(true).build();
                set.add(glob.map_err(|e| format!("{label}: hosts: {host:?}: {e}"))?);
            }
            Some(set.build().map_err(|e| format!("{label}: hosts: {e}"))?)
        };
        let endpoints = spec
            .endpoints
            .iter()
            .map(|e| {
                if e.operation.trim().is_empty() {
                    return Err(format!("{label}: endpoint {:?}: operation is empty", e.path));
                }
                let pattern = PathPattern::parse(&e.path).map_err(|why| format!("{label}: endpoints: {why}"))?;
                Ok(Endpoint { pattern, operation: e.operation.clone(), stream: e.stream })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Provider {
            name: spec.name.clone(),
            hosts,
            endpoints,
            request: RequestPaths::compile(spec, label, capture_content)?,
            response: ResponsePaths::compile(spec, label, capture_content)?,
        })
    }

    fn serves(&self, host: Option<&str>) -> bool {
        let Some(globs) = &self.hosts else { return true };
        let Some(host) = host.map(str::trim).filter(|h| !h.is_empty()) else { return false };
        globs.is_match(host) || strip_port(host).is_some_and(|name| globs.is_match(name))
    }
}

fn scan_keys<'a>(paths: impl IntoIterator<Item = &'a FieldPath>) -> Vec<String> {
    let mut keys: Vec<String> = paths.into_iter().flat_map(FieldPath::first_keys).map(str::to_string).collect();
    keys.sort();
    keys.dedup();
    keys
}

impl RequestPaths {
    fn compile(spec: &ProviderSpec, label: &str, capture_content: bool) -> Result<RequestPaths, String> {
        let r = &spec.request;
        let path =
            |list: &[String], what: &str| FieldPath::compile(list, Sums::Refused, &format!("{label}: request.{what}"));
        let mut paths = RequestPaths {
            model: path(&r.model, "model")?,
            stream: path(&r.stream, "stream")?,
            max_tokens: path(&r.max_tokens, "max_tokens")?,
            temperature: path(&r.temperature, "temperature")?,
            top_p: path(&r.top_p, "top_p")?,
            top_k: path(&r.top_k, "top_k")?,
            seed: path(&r.seed, "seed")?,
            frequency_penalty: path(&r.frequency_penalty, "frequency_penalty")?,
            presence_penalty: path(&r.presence_penalty, "presence_penalty")?,
            stop_sequences: path(&r.stop_sequences, "stop_sequences")?,
            choice_count: path(&r.choice_count, "choice_count")?,
            messages: path(&r.messages, "messages")?,
            system: path(&r.system, "system")?,
            scan_keys: Vec::new(),
        };
        let mut scanned = vec![
            &paths.model,
            &paths.stream,
            &paths.max_tokens,
            &paths.temperature,
            &paths.top_p,
            &paths.top_k,
            &paths.seed,
            &paths.frequency_penalty,
            &paths.presence_penalty,
            &paths.stop_sequences,
            &paths.choice_count,
        ];
        if capture_content {
            scanned.extend([&paths.messages, &paths.system]);
        }
        paths.scan_keys = scan_keys(scanned);
        Ok(paths)
    }
}

impl ResponsePaths {
    fn compile(spec: &ProviderSpec, label: &str, capture_content: bool) -> Result<ResponsePaths, String> {
        let r = &spec.response;
        let path =
            |list: &[String], what: &str, sums| FieldPath::compile(list, sums, &format!("{label}: response.{what}"));
        let mut paths = ResponsePaths {
            model: path(&r.model, "model", Sums::Refused)?,
            id: path(&r.id, "id", Sums::Refused)?,
            input_tokens: path(&r.input_tokens, "input_tokens", Sums::Allowed)?,
            output_tokens: path(&r.output_tokens, "output_tokens", Sums::Allowed)?,
            cache_read_input_tokens: path(&r.cache_read_input_tokens, "cache_read_input_tokens", Sums::Allowed)?,
            cache_creation_input_tokens: path(
                &r.cache_creation_input_tokens,
                "cache_creation_input_tokens",
                Sums::Allowed,
            )?,
            reasoning_output_tokens: path(&r.reasoning_output_tokens, "reasoning_output_tokens", Sums::Allowed)?,
            finish_reasons: path(&r.finish_reasons, "finish_reasons", Sums::Refused)?,
            error_type: path(&r.error_type, "error_type", Sums::Refused)?,
            output_text: path(&r.output_text, "output_text", Sums::Refused)?,
            scan_keys: Vec::new(),
        };
        let mut scanned = vec![
            &paths.model,
            &paths.id,
            &paths.input_tokens,
            &paths.output_tokens,
            &paths.cache_read_input_tokens,
            &paths.cache_creation_input_tokens,
            &paths.reasoning_output_tokens,
            &paths.finish_reasons,
            &paths.error_type,
        ];
        if capture_content {
            scanned.push(&paths.output_text);
        }
        paths.scan_keys = scan_keys(scanned);
        Ok(paths)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_ports() {
        assert_eq!(split_target("/v1/x?key=secret"), Some(("/v1/x", None)));
        assert_eq!(split_target("/v1/x#f"), Some(("/v1/x", None)));
        assert_eq!(split_target("http://u:p@h.example:8080/v1/x?k=1"), Some(("/v1/x", Some("h.example:8080"))));
        assert_eq!(split_target("http://h.example?k=1"), Some(("", Some("h.example"))));
        assert_eq!(split_target("*"), None);
        assert_eq!(strip_port("a.b:443"), Some("a.b"));
        assert_eq!(strip_port("[::1]:8080"), Some("[::1]"));
        assert_eq!(strip_port("::1"), None);
        assert_eq!(strip_port("a.b"), None);
    }

    #[test]
    fn minimal_cover_drops_extensions() {
        let mut p: Vec<Vec<u8>> = ["POST /a/b", "POST /a", "POST /a", "POST /b", "POST /ab"].map(|s| s.into()).to_vec();
        minimal_cover(&mut p);
        assert_eq!(p, vec![b"POST /a".to_vec(), b"POST /b".to_vec()]);
    }
}
