//! `[analyst]`: what the node's analyst runner does, with every default and why.

use serde::{Deserialize, Serialize};

use crate::context::ContextLimits;
use crate::insights::InsightsConfig;
use crate::llm::LlmConfig;

/// The `[analyst]` section of the node's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalystConfig {
    /// Run the analyst runner (`incidents.*` → `ai_analyses`, `analysis.completed`).
    /// Default `true`: the built-in analyst needs no key and no network.
    pub enabled: bool,
    /// How far around an incident context is gathered.
    pub context: ContextLimits,
    /// Most incident records read at a time. Default 500.
    pub batch_size: usize,
    /// An OpenAI-compatible provider; absent: the built-in analyst only.
    pub llm: Option<LlmConfig>,
    /// Per-event insights (off by default; needs `llm`).
    pub insights: InsightsConfig,
}

impl Default for AnalystConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            context: ContextLimits::default(),
            batch_size: 500,
            llm: None,
            insights: InsightsConfig::default(),
        }
    }
}

impl AnalystConfig {
    /// Checks the values; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        let c = &self.context;
        if c.lookback_ms <= 0 {
            return Err("context.lookback_ms must be positive".into());
        }
        if c.deployment_lookback_ms < 0 {
            return Err("context.deployment_lookback_ms must not be negative".into());
        }
        if self.batch_size == 0 {
            return Err("batch_size must be at least 1".into());
        }
        if let Some(llm) = &self.llm {
            llm.validate()?;
        }
        self.insights.validate()?;
        if self.insights.enabled && self.llm.is_none() {
            return Err(
                "insights.enabled: per-event insights need a language model; \
                 configure [analyst.llm] or set insights.enabled = false"
                    .into(),
            );
        }
        Ok(())
    }
}
