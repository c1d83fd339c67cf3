//! The GenAI stage: which exchanges the HTTP parsers keep bodies for (LLM
//! API calls, by request line and Host), and what those bodies say.

use std::sync::Arc;

use crate::conntrack::Exchange;
use crate::protocol::genai::{BodyBytes, Catalog, ExchangeBodies, GenAiCall, GenAiConfig};
use crate::protocol::http1::{BodyPolicy, KeptBody};

#[derive(Debug)]
pub struct GenAiStage {
    catalog: Arc<Catalog>,
    max_body_bytes: usize,
}

/// What the HTTP parsers consult for each request head.
#[derive(Debug)]
struct KeepLlmCalls(Arc<GenAiStage>);

impl BodyPolicy for KeepLlmCalls {
    fn keep_limit(&self, method: &str, target: &str, host: Option<&str>) -> usize {
        match self.0.catalog.classify(method, target, host) {
            Some(_) => self.0.max_body_bytes,
            None => 0,
        }
    }
}

impl GenAiStage {
    /// None when GenAI recognition is off. Panics on an invalid provider:
    /// `Config::validate` checks them first.
    pub fn new(config: &GenAiConfig) -> Option<Arc<Self>> {
        if !config.enabled {
            return None;
        }
        let catalog = Catalog::new(config).expect("GenAI providers validated with the config");
        Some(Arc::new(Self { catalog: Arc::new(catalog), max_body_bytes: config.max_body_bytes }))
    }

    pub fn body_policy(self: &Arc<Self>) -> Arc<dyn BodyPolicy> {
        Arc::new(KeepLlmCalls(self.clone()))
    }

    /// The GenAI facts of an exchange whose bodies were kept; None for any
    /// other exchange.
    pub fn analyse(&self, ex: &Exchange) -> Option<GenAiCall> {
        let kept = ex.http.bodies.as_deref()?;
        let m = self.catalog.classify(&ex.http.method, &ex.http.target, ex.http.host.as_deref())?;
        let bodies = ExchangeBodies {
            request: view(&kept.request),
            response: view(&kept.response),
            request_content_encoding: kept.request_content_encoding.as_deref(),
            response_content_type: kept.response_content_type.as_deref(),
            response_content_encoding: kept.response_content_encoding.as_deref(),
            status: ex.http.status,
        };
        Some(self.catalog.extract(&m, &bodies))
    }
}

fn view(body: &KeptBody) -> BodyBytes<'_> {
    BodyBytes { head: &body.head, tail: &body.tail, skipped: body.skipped, complete: body.complete }
}
