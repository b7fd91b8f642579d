//! Loading the configuration: defaults, then a TOML file, then `SIGHTLINE_*` environment
//! variables (nested keys joined by `__`, e.g. `SIGHTLINE_LOG__SEGMENT_BYTES`), then
//! command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use sightline_api::{NodeConfig, Role};

/// Command-line values that override the file and the environment.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_addr: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

/// Loads defaults ← `file` ← environment ← `overrides`, then validates.
pub fn load(file: Option<&Path>, overrides: Overrides) -> anyhow::Result<NodeConfig> {
    let mut figment = Figment::from(Serialized::defaults(NodeConfig::default()));
    if let Some(path) = file {
        anyhow::ensure!(
            path.exists(),
            "config file {} does not exist",
            path.display()
        );
        figment = figment.merge(Toml::file(path));
    }
    // SIGHTLINE_CONFIG names the file and SIGHTLINE_API_KEY is a client credential:
    // neither is a configuration key.
    let config: NodeConfig = figment
        .merge(
            Env::prefixed("SIGHTLINE_")
                .split("__")
                .ignore(&["api_key", "config"]),
        )
        .merge(Serialized::defaults(overrides))
        .extract()
        .context("invalid configuration")?;
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    Ok(config)
}

/// The effective configuration as TOML, every default included.
pub fn to_toml(config: &NodeConfig) -> anyhow::Result<String> {
    Ok(toml::to_string_pretty(config)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_file_parses_and_matches_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sightline.example.toml");
        let config = load(Some(&path), Overrides::default()).expect("example config loads");
        assert_eq!(
            config,
            NodeConfig::default(),
            "the example file documents the defaults"
        );
    }

    #[test]
    fn defaults_round_trip_through_toml() {
        let text = to_toml(&NodeConfig::default()).expect("serializes");
        let back: NodeConfig = toml::from_str(&text).expect("parses");
        assert_eq!(back, NodeConfig::default());
    }

    #[test]
    fn invalid_values_are_refused_with_their_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[log.embedded]\nsegment_bytes = 10\n").expect("write");
        let err = load(Some(&path), Overrides::default()).expect_err("refused");
        assert!(
            err.to_string().contains("log.embedded.segment_bytes"),
            "{err}"
        );
        std::fs::write(&path, "[log.embedded]\nsegmnt_bytes = 10\n").expect("write");
        let err = load(Some(&path), Overrides::default()).expect_err("refused");
        assert!(format!("{err:#}").contains("segmnt_bytes"), "{err:#}");
    }
}
