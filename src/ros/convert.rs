//! Message conversions between ROS 2 sensor messages and the pipeline's types, used by the
//! node and by bag replay (on messages decoded from bags as r2r types):
//!
//! - [`crate::ros::pointcloud`]: `sensor_msgs/PointCloud2` <-> [`crate::data::Points`];
//! - [`crate::ros::image`]: `sensor_msgs/Image` and `CompressedImage` <-> `image::RgbImage`;
//! - [`crate::ros::camera_info`]: `sensor_msgs/CameraInfo` <-> intrinsics.
//!
//! Every rejection is a [`ConvertError`] naming the message field and what is wrong with it;
//! the node adds the topic ([`ConvertError::on_topic`]). Nothing here panics on bad input.

use std::fmt;

/// A message that cannot be converted: which field, what is wrong, and (when known) on which
/// topic it arrived.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvertError {
    pub topic: Option<String>,
    /// Field path inside the message (`point_step`, `fields[2].datatype`, `k`, ...).
    pub field: String,
    pub message: String,
}

impl ConvertError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { topic: None, field: field.into(), message: message.into() }
    }

    /// The same error, attributed to a topic.
    pub fn on_topic(mut self, topic: &str) -> Self {
        self.topic = Some(topic.to_string());
        self
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.topic {
            Some(t) => write!(f, "{t}: field `{}`: {}", self.field, self.message),
            None => write!(f, "field `{}`: {}", self.field, self.message),
        }
    }
}

impl std::error::Error for ConvertError {}

/// Why a translation and quaternion from a message are not a rigid transform.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RigidError {
    NotFinite,
    /// The quaternion's length, more than 1e-3 from 1.
    NotUnit(f64),
}

/// The rigid transform of a message's translation `t` and quaternion `q` = (x, y, z, w):
/// every value finite and the quaternion of unit length within 1e-3 (then normalised).
pub fn rigid_from_parts(t: [f64; 3], q: [f64; 4]) -> Result<nalgebra::Isometry3<f64>, RigidError> {
    if !t.iter().chain(&q).all(|v| v.is_finite()) {
        return Err(RigidError::NotFinite);
    }
    let [x, y, z, w] = q;
    let norm = (w * w + x * x + y * y + z * z).sqrt();
    if (norm - 1.0).abs() > 1e-3 {
        return Err(RigidError::NotUnit(norm));
    }
    let rot = nalgebra::UnitQuaternion::from_quaternion(nalgebra::Quaternion::new(w, x, y, z));
    Ok(nalgebra::Isometry3::from_parts(nalgebra::Translation3::new(t[0], t[1], t[2]), rot))
}

/// Nanoseconds since the epoch of a `builtin_interfaces/Time`.
pub fn stamp_to_ns(t: &r2r::builtin_interfaces::msg::Time) -> i64 {
    t.sec as i64 * 1_000_000_000 + t.nanosec as i64
}

/// `builtin_interfaces/Time` of nanoseconds since the epoch (negative times saturate at 0).
pub fn ns_to_stamp(ns: i64) -> r2r::builtin_interfaces::msg::Time {
    let ns = ns.max(0);
    r2r::builtin_interfaces::msg::Time { sec: (ns / 1_000_000_000) as i32, nanosec: (ns % 1_000_000_000) as u32 }
}

/// A header with the given stamp and frame.
pub fn header(stamp_ns: i64, frame_id: &str) -> r2r::std_msgs::msg::Header {
    r2r::std_msgs::msg::Header { stamp: ns_to_stamp(stamp_ns), frame_id: frame_id.to_string() }
}

/// A `geometry_msgs/TransformStamped` as tf2 sends it: frame `child` placed in `parent` by
/// `child_in_parent` (a point in `child` maps to `child_in_parent * p` in `parent`).
pub fn transform_stamped(
    stamp_ns: i64,
    parent: &str,
    child: &str,
    child_in_parent: &nalgebra::Isometry3<f64>,
) -> r2r::geometry_msgs::msg::TransformStamped {
    use r2r::geometry_msgs::msg::{Quaternion, Transform, TransformStamped, Vector3};
    let (t, r) = (child_in_parent.translation.vector, child_in_parent.rotation);
    TransformStamped {
        header: header(stamp_ns, parent),
        child_frame_id: child.to_string(),
        transform: Transform {
            translation: Vector3 { x: t.x, y: t.y, z: t.z },
            rotation: Quaternion { x: r.i, y: r.j, z: r.k, w: r.w },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip() {
        for ns in [0i64, 1, 999_999_999, 1_700_000_000_123_456_789] {
            assert_eq!(stamp_to_ns(&ns_to_stamp(ns)), ns);
        }
    }

    #[test]
    fn error_names_topic_and_field() {
        let e = ConvertError::new("point_step", "too small").on_topic("/lidar");
        assert_eq!(e.to_string(), "/lidar: field `point_step`: too small");
    }
}
