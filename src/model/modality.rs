//! Modality masking and parameter groups: the two model-level concepts AlterMOMA needs.

use serde::{Deserialize, Serialize};

/// Which sensor branches contribute to a forward pass. A masked branch contributes exactly
/// zero BEV features (AlterMOMA's alternative masking; the node's sensor drop-out handling).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModalityMask {
    pub camera: bool,
    pub lidar: bool,
}

impl ModalityMask {
    pub const FUSION: Self = Self {
        camera: true,
        lidar: true,
    };
    pub const CAMERA_ONLY: Self = Self {
        camera: true,
        lidar: false,
    };
    pub const LIDAR_ONLY: Self = Self {
        camera: false,
        lidar: true,
    };

    /// `fusion`, `camera_only`, `lidar_only` or `none`.
    pub fn name(&self) -> &'static str {
        match (self.camera, self.lidar) {
            (true, true) => "fusion",
            (true, false) => "camera_only",
            (false, true) => "lidar_only",
            (false, false) => "none",
        }
    }
}

/// AlterMOMA's parameter groups: theta_c (camera backbone, neck, view transform), theta_l
/// (LiDAR encoder and backbone), theta_f (fuser, BEV decoder, heads).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    Camera,
    Lidar,
    Fusion,
}

impl Group {
    pub const ALL: [Group; 3] = [Group::Camera, Group::Lidar, Group::Fusion];

    /// Group of a variable by the first component of its name: `camera.*`, `lidar.*`,
    /// everything else (`fuser.*`, `decoder.*`, `heads.*`) is fusion.
    pub fn of_param(name: &str) -> Group {
        match name.split('.').next() {
            Some("camera") => Group::Camera,
            Some("lidar") => Group::Lidar,
            _ => Group::Fusion,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Group::Camera => "camera",
            Group::Lidar => "lidar",
            Group::Fusion => "fusion",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_name_prefix() {
        assert_eq!(
            Group::of_param("camera.backbone.conv1.weight"),
            Group::Camera
        );
        assert_eq!(Group::of_param("lidar.pfn.linear.weight"), Group::Lidar);
        assert_eq!(Group::of_param("fuser.conv.weight"), Group::Fusion);
        assert_eq!(Group::of_param("heads.det.heatmap.weight"), Group::Fusion);
        assert_eq!(ModalityMask::LIDAR_ONLY.name(), "lidar_only");
    }
}
