//! Named training recipes (`config/train/<name>.yaml`): steps, learning rate and batch size
//! for each stage of BEVFusion's recipe (camera-only, LiDAR-only, fused), so a measured
//! schedule can be reused by name (`altermoma train --recipe demo`, the demo).

use crate::config::{ensure, load_yaml, ConfigError, FieldError, Validate};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One stage of a recipe.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageRecipe {
    pub steps: usize,
    pub lr: f64,
    pub batch_size: usize,
}

/// A named recipe: the model config it was measured with and its three stages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Model config name (`tiny`, ...).
    pub model: String,
    pub camera: StageRecipe,
    pub lidar: StageRecipe,
    pub fusion: StageRecipe,
}

impl Validate for Recipe {
    fn validate(&self) -> Result<(), FieldError> {
        for (name, s) in [
            ("camera", &self.camera),
            ("lidar", &self.lidar),
            ("fusion", &self.fusion),
        ] {
            ensure(s.steps >= 1, &format!("{name}.steps"), "must be >= 1")?;
            ensure(
                s.batch_size >= 1,
                &format!("{name}.batch_size"),
                "must be >= 1",
            )?;
            ensure(
                s.lr > 0.0 && s.lr.is_finite(),
                &format!("{name}.lr"),
                "must be a positive number",
            )?;
        }
        Ok(())
    }
}

/// `demo` -> `config/train/demo.yaml` (under the CWD or the source tree); paths pass through.
pub fn recipe_path(name: &str) -> PathBuf {
    let p = PathBuf::from(name);
    if p.extension().is_some() || p.exists() {
        return p;
    }
    let local = PathBuf::from("config/train").join(format!("{name}.yaml"));
    if local.exists() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("config/train")
        .join(format!("{name}.yaml"))
}

impl Recipe {
    /// Load a recipe by name or path.
    pub fn load(name: &str) -> Result<Self, ConfigError> {
        load_yaml(recipe_path(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_demo_recipe_loads() {
        let r = Recipe::load("demo").unwrap();
        assert_eq!(r.model, "tiny");
        assert!(r.fusion.steps >= 1 && r.camera.lr > 0.0);
    }

    #[test]
    fn bad_recipe_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.yaml");
        std::fs::write(
            &p,
            "model: tiny\ncamera: {steps: 1, lr: 1.0e-3, batch_size: 4}\n\
             lidar: {steps: 0, lr: 1.0e-3, batch_size: 4}\nfusion: {steps: 1, lr: 1.0e-3, batch_size: 4}\n",
        )
        .unwrap();
        let e = Recipe::load(p.to_str().unwrap()).unwrap_err().to_string();
        assert!(e.contains("lidar.steps"), "{e}");
    }
}
