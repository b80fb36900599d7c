//! placeholder until the generator runs
/// placeholder
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKey { Produce }
