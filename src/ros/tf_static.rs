//! Static transforms (`/tf_static`, tf2_msgs/TFMessage) as a source of camera extrinsics.
//!
//! [`StaticTransforms`] keeps the tree that the received `geometry_msgs/TransformStamped`
//! describe, as tf2's static buffer does: each child frame has one parent, a newer transform
//! for a child replaces the older one (a static publisher that restarts may re-parent it),
//! and leading slashes of frame ids are ignored. [`StaticTransforms::lookup`] composes the
//! chain between two frames through their common ancestor, so the LiDAR and the cameras may
//! hang anywhere under `base_link`.
//!
//! This is plain logic on geometry_msgs types (which every build has): the node feeds it from
//! its /tf_static subscription when tf2_msgs is available, bag replay from the bag's
//! `/tf_static` messages.

use super::convert::{rigid_from_parts, ConvertError, RigidError};
use nalgebra::Isometry3;
use r2r::geometry_msgs::msg::TransformStamped;
use std::collections::HashMap;

/// Longest parent chain followed; a longer one means a malformed tree.
const MAX_DEPTH: usize = 256;

/// A frame id as tf2 compares them (without a leading `/`).
fn frame(id: &str) -> &str {
    id.trim_start_matches('/')
}

/// The tree of static transforms received so far.
#[derive(Clone, Debug, Default)]
pub struct StaticTransforms {
    /// child frame -> (parent frame, pose of the child in the parent: p_parent = T * p_child)
    parents: HashMap<String, (String, Isometry3<f64>)>,
}

impl StaticTransforms {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.parents.is_empty()
    }

    /// Number of child frames known.
    pub fn len(&self) -> usize {
        self.parents.len()
    }

    /// Add the transforms of one message. The whole message is checked first and rejected
    /// as a unit (naming the first bad entry) when any transform has an empty or equal frame
    /// pair, a non-finite value, a quaternion far from unit length, or would close a cycle.
    /// Returns the child frames added or replaced.
    pub fn insert(&mut self, transforms: &[TransformStamped]) -> Result<Vec<String>, ConvertError> {
        let mut staged = self.parents.clone();
        let mut children = Vec::with_capacity(transforms.len());
        for (k, t) in transforms.iter().enumerate() {
            let field = |f: &str| format!("transforms[{k}].{f}");
            let (parent, child) = (frame(&t.header.frame_id), frame(&t.child_frame_id));
            if parent.is_empty() {
                return Err(ConvertError::new(field("header.frame_id"), "empty parent frame"));
            }
            if child.is_empty() {
                return Err(ConvertError::new(field("child_frame_id"), "empty child frame"));
            }
            if parent == child {
                return Err(ConvertError::new(field("child_frame_id"), format!("`{child}` is its own parent")));
            }
            let (v, q) = (&t.transform.translation, &t.transform.rotation);
            let iso = rigid_from_parts([v.x, v.y, v.z], [q.x, q.y, q.z, q.w]).map_err(|e| match e {
                RigidError::NotFinite => {
                    ConvertError::new(field("transform"), format!("`{parent}` -> `{child}` is not finite"))
                }
                RigidError::NotUnit(norm) => ConvertError::new(
                    field("transform.rotation"),
                    format!("`{parent}` -> `{child}`: quaternion of length {norm:.4}, not a rotation"),
                ),
            })?;
            // the new parent must not already descend from the child
            let mut cur = parent;
            for _ in 0..MAX_DEPTH {
                if cur == child {
                    return Err(ConvertError::new(
                        field("child_frame_id"),
                        format!("`{parent}` -> `{child}` closes a cycle (`{parent}` descends from `{child}`)"),
                    ));
                }
                match staged.get(cur) {
                    Some((p, _)) => cur = p.as_str(),
                    None => break,
                }
            }
            staged.insert(child.to_string(), (parent.to_string(), iso));
            children.push(child.to_string());
        }
        self.parents = staged;
        Ok(children)
    }

    /// Every ancestor of `f` (itself first) with the pose of `f` in it.
    fn chain<'a>(&'a self, f: &'a str) -> Vec<(&'a str, Isometry3<f64>)> {
        let mut out = Vec::new();
        let (mut cur, mut pose) = (f, Isometry3::identity());
        for _ in 0..MAX_DEPTH {
            out.push((cur, pose));
            match self.parents.get(cur) {
                Some((p, t)) => {
                    pose = t * pose;
                    cur = p.as_str();
                }
                None => break,
            }
        }
        out
    }

    /// The transform taking points in `source` into `target` (p_target = T * p_source), i.e.
    /// the pose of `source` in `target`; `None` when no chain of static transforms joins them.
    pub fn lookup(&self, target: &str, source: &str) -> Option<Isometry3<f64>> {
        let (target, source) = (frame(target), frame(source));
        if target.is_empty() || source.is_empty() {
            return None;
        }
        let up_source = self.chain(source);
        for (ancestor, target_in_ancestor) in self.chain(target) {
            if let Some((_, source_in_ancestor)) = up_source.iter().find(|(a, _)| *a == ancestor) {
                return Some(target_in_ancestor.inverse() * source_in_ancestor);
            }
        }
        None
    }

    /// Why [`Self::lookup`] fails, for diagnostics: which frames are unknown or in separate trees.
    pub fn explain_missing(&self, target: &str, source: &str) -> String {
        let root = |f: &str| self.chain(f).last().map(|(r, _)| r.to_string()).unwrap_or_default();
        let known = |f: &str| self.parents.contains_key(f) || self.parents.values().any(|(p, _)| p == f);
        let (target, source) = (frame(target), frame(source));
        if source.is_empty() {
            return "the image has no frame_id".into();
        }
        match (known(target), known(source)) {
            (false, _) => format!("/tf_static has no frame `{target}` (the cloud's)"),
            (_, false) => format!("/tf_static has no frame `{source}` (the camera's)"),
            _ => format!(
                "`{source}` (tree of `{}`) and `{target}` (tree of `{}`) are not connected",
                root(source),
                root(target)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Point3, Vector3};

    fn tf(parent: &str, child: &str, iso: &Isometry3<f64>) -> TransformStamped {
        crate::ros::convert::transform_stamped(0, parent, child, iso)
    }

    fn iso(t: [f64; 3], axis_angle: [f64; 3]) -> Isometry3<f64> {
        Isometry3::new(Vector3::from(t), Vector3::from(axis_angle))
    }

    #[test]
    fn lookup_composes_through_the_common_ancestor() {
        let base_lidar = iso([0.9, 0.0, 1.8], [0.0, 0.0, 0.02]);
        let base_mount = iso([1.5, 0.1, 1.5], [0.0, 0.0, 0.3]);
        let mount_optical = iso([0.05, 0.0, 0.0], [-1.2, 0.0, -1.2]);
        let mut t = StaticTransforms::new();
        // two messages, as two static broadcasters would send them; one with a leading slash
        t.insert(&[tf("/base_link", "lidar_top", &base_lidar)]).unwrap();
        t.insert(&[tf("base_link", "cam_mount", &base_mount), tf("cam_mount", "cam_optical", &mount_optical)])
            .unwrap();
        let cam_to_lidar = t.lookup("lidar_top", "/cam_optical").unwrap();
        // a point in the camera frame reaches the same base_link point both ways
        let p = Point3::new(0.3, -0.2, 7.0);
        let via_lidar = base_lidar * (cam_to_lidar * p);
        let direct = base_mount * (mount_optical * p);
        assert!((via_lidar - direct).norm() < 1e-12, "{via_lidar} vs {direct}");
        // the reverse lookup is the inverse, a frame to itself the identity
        let back = t.lookup("cam_optical", "lidar_top").unwrap();
        assert!(((back * cam_to_lidar).to_homogeneous() - nalgebra::Matrix4::identity()).norm() < 1e-12);
        assert_eq!(t.lookup("base_link", "base_link"), Some(Isometry3::identity()));
        assert_eq!(t.lookup("base_link", "lidar_top"), Some(base_lidar));
    }

    #[test]
    fn unknown_and_disconnected_frames_have_no_transform_and_say_why() {
        let mut t = StaticTransforms::new();
        t.insert(&[tf("base_link", "lidar_top", &Isometry3::identity())]).unwrap();
        t.insert(&[tf("map", "cam", &Isometry3::identity())]).unwrap();
        assert_eq!(t.lookup("lidar_top", "cam"), None);
        assert!(t.explain_missing("lidar_top", "cam").contains("not connected"), "{}", t.explain_missing("lidar_top", "cam"));
        assert_eq!(t.lookup("lidar_top", "CAM_X"), None);
        assert!(t.explain_missing("lidar_top", "CAM_X").contains("no frame `CAM_X`"));
        assert!(t.explain_missing("velodyne", "cam").contains("no frame `velodyne`"));
        assert!(t.explain_missing("lidar_top", "").contains("no frame_id"));
        assert_eq!(t.lookup("lidar_top", ""), None);
    }

    #[test]
    fn a_newer_transform_replaces_the_older_one() {
        let mut t = StaticTransforms::new();
        t.insert(&[tf("base_link", "cam", &iso([1.0, 0.0, 0.0], [0.0; 3]))]).unwrap();
        t.insert(&[tf("base_link", "lidar", &Isometry3::identity())]).unwrap();
        t.insert(&[tf("base_link", "cam", &iso([2.0, 0.0, 0.0], [0.0; 3]))]).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.lookup("lidar", "cam").unwrap().translation.vector, Vector3::new(2.0, 0.0, 0.0));
    }

    #[test]
    fn malformed_messages_are_rejected_whole_naming_the_entry() {
        let good = tf("base_link", "lidar", &Isometry3::identity());
        let mut t = StaticTransforms::new();
        t.insert(&[tf("base_link", "a", &Isometry3::identity())]).unwrap();
        let cases: Vec<(TransformStamped, &str, &str)> = vec![
            (tf("", "x", &Isometry3::identity()), "transforms[1].header.frame_id", "empty parent"),
            (tf("base_link", "/", &Isometry3::identity()), "transforms[1].child_frame_id", "empty child"),
            (tf("x", "x", &Isometry3::identity()), "transforms[1].child_frame_id", "its own parent"),
            (tf("a", "base_link", &Isometry3::identity()), "transforms[1].child_frame_id", "cycle"),
            (
                {
                    let mut m = tf("base_link", "x", &Isometry3::identity());
                    m.transform.translation.y = f64::NAN;
                    m
                },
                "transforms[1].transform",
                "not finite",
            ),
            (
                {
                    let mut m = tf("base_link", "x", &Isometry3::identity());
                    m.transform.rotation.w = 0.5;
                    m
                },
                "transforms[1].transform.rotation",
                "length 0.5000",
            ),
        ];
        for (bad, field, why) in cases {
            let e = t.insert(&[good.clone(), bad]).unwrap_err();
            assert_eq!(e.field, field);
            assert!(e.message.contains(why), "{e}");
            // nothing of a rejected message is kept
            assert_eq!(t.lookup("a", "lidar"), None);
            assert_eq!(t.len(), 1);
        }
    }
}
