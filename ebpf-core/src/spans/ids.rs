//! Trace and span ids: random, never all zero (an invalid id in OTLP).

#[derive(Debug)]
pub struct IdGenerator {
    rng: fastrand::Rng,
}

impl IdGenerator {
    pub fn new() -> Self {
        Self { rng: fastrand::Rng::new() }
    }

    pub fn trace_id(&mut self) -> Vec<u8> {
        let id = self.rng.u128(1..);
        id.to_be_bytes().to_vec()
    }

    pub fn span_id(&mut self) -> Vec<u8> {
        let id = self.rng.u64(1..);
        id.to_be_bytes().to_vec()
    }
}

impl Default for IdGenerator {
    fn default() -> Self {
        Self::new()
    }
}
