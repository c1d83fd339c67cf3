//! Trace and span ids: random, never all zero (an invalid id in OTLP).

#[derive(Debug)]
pub struct IdGenerator {
    rng: fastrand::Rng,
}

impl IdGenerator {
    pub fn new() -> Self {
        Self { rng: fastrand::Rng::new() }
    }

    /// Ids drawn from a fixed seed (tests comparing encodings).
    #[doc(hidden)]
    pub fn with_seed(seed: u64) -> Self {
        Self { rng: fastrand::Rng::with_seed(seed) }
    }

    pub fn trace_id_bytes(&mut self) -> [u8; 16] {
        self.rng.u128(1..).to_be_bytes()
    }

    pub fn span_id_bytes(&mut self) -> [u8; 8] {
        self.rng.u64(1..).to_be_bytes()
    }

    pub fn trace_id(&mut self) -> Vec<u8> {
        self.trace_id_bytes().to_vec()
    }

    pub fn span_id(&mut self) -> Vec<u8> {
        self.span_id_bytes().to_vec()
    }
}

impl Default for IdGenerator {
    fn default() -> Self {
        Self::new()
    }
}
