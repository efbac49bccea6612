//! Detections <-> `altermoma_msgs/Detection3DArray` (and `vision_msgs/Detection3DArray`
//! behind the `vision_msgs` cargo feature, for robots that have that package).

use crate::classes::DETECTION_CLASSES;
use crate::geometry::Box3D;
use crate::model::ModalityMask;
use r2r::altermoma_msgs::msg::{Detection3D, Detection3DArray};
use r2r::geometry_msgs::msg::{Point, Pose, Quaternion, Vector3};

/// nuScenes attribute of a detection from its class and speed: the same rule as the results
/// files ([`crate::metrics::detection_box::default_attribute`]); empty when the class has none.
pub fn default_attribute(label: usize, velocity: [f64; 2]) -> &'static str {
    if label >= DETECTION_CLASSES.len() {
        return "";
    }
    crate::metrics::detection_box::default_attribute(label, velocity)
        .map_or("", |i| crate::metrics::detection_box::ATTRIBUTE_NAMES[i])
}

/// Pose of a box: centre and heading about +z.
pub fn box_pose(b: &Box3D) -> Pose {
    let [w, x, y, z] = b.quaternion_wxyz();
    Pose { position: Point { x: b.center[0], y: b.center[1], z: b.center[2] }, orientation: Quaternion { x, y, z, w } }
}

/// One detection message. `size` is (length, width, height) as the message defines it.
pub fn box_to_detection(b: &Box3D) -> Detection3D {
    Detection3D {
        class_name: DETECTION_CLASSES.get(b.label).copied().unwrap_or("unknown").to_string(),
        class_id: b.label.min(u8::MAX as usize) as u8,
        score: b.score as f32,
        pose: box_pose(b),
        size: Vector3 { x: b.size[1], y: b.size[0], z: b.size[2] },
        velocity: Vector3 { x: b.velocity[0], y: b.velocity[1], z: 0.0 },
        attribute_name: default_attribute(b.label, b.velocity).to_string(),
    }
}

/// The detections of a frame.
pub fn detections_to_msg(boxes: &[Box3D], mode: ModalityMask, header: r2r::std_msgs::msg::Header) -> Detection3DArray {
    Detection3DArray { header, mode: mode.name().to_string(), detections: boxes.iter().map(box_to_detection).collect() }
}

/// Boxes back from a message (scores are float32 in the message).
pub fn msg_to_boxes(msg: &Detection3DArray) -> Vec<Box3D> {
    msg.detections
        .iter()
        .map(|d| {
            let q = &d.pose.orientation;
            Box3D {
                center: [d.pose.position.x, d.pose.position.y, d.pose.position.z],
                size: [d.size.y, d.size.x, d.size.z],
                yaw: Box3D::yaw_from_quaternion([q.w, q.x, q.y, q.z]),
                velocity: [d.velocity.x, d.velocity.y],
                label: crate::classes::detection_class_index(&d.class_name).unwrap_or(d.class_id as usize),
                score: d.score as f64,
            }
        })
        .collect()
}

/// `vision_msgs/Detection3DArray` for robots that have vision_msgs (cargo feature
/// `vision_msgs`; where ROS lacks the package, setup.sh builds a stand-in with the same fields,
/// and `tests/node_ros.rs` checks this output against the node's own detections).
#[cfg(feature = "vision_msgs")]
pub fn detections_to_vision_msgs(
    boxes: &[Box3D],
    header: r2r::std_msgs::msg::Header,
) -> r2r::vision_msgs::msg::Detection3DArray {
    use r2r::vision_msgs::msg as vm;
    vm::Detection3DArray {
        header: header.clone(),
        detections: boxes
            .iter()
            .enumerate()
            .map(|(i, b)| vm::Detection3D {
                header: header.clone(),
                results: vec![vm::ObjectHypothesisWithPose {
                    hypothesis: vm::ObjectHypothesis {
                        class_id: DETECTION_CLASSES.get(b.label).copied().unwrap_or("unknown").to_string(),
                        score: b.score,
                    },
                    pose: r2r::geometry_msgs::msg::PoseWithCovariance { pose: box_pose(b), covariance: vec![0.0; 36] },
                }],
                bbox: vm::BoundingBox3D {
                    center: box_pose(b),
                    size: Vector3 { x: b.size[1], y: b.size[0], z: b.size[2] },
                },
                id: i.to_string(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_geometry() {
        let b = Box3D {
            center: [1.0, -2.0, 0.5],
            size: [1.9, 4.5, 1.6],
            yaw: 2.5,
            velocity: [3.0, 0.5],
            label: 3,
            score: 0.625,
        };
        let m = detections_to_msg(std::slice::from_ref(&b), ModalityMask::LIDAR_ONLY, Default::default());
        assert_eq!(m.mode, "lidar_only");
        let d = &m.detections[0];
        assert_eq!((d.class_name.as_str(), d.class_id), ("bus", 3));
        assert_eq!((d.size.x, d.size.y), (4.5, 1.9));
        assert_eq!(d.attribute_name, "vehicle.moving");
        let back = &msg_to_boxes(&m)[0];
        assert_eq!(
            (back.center, back.size, back.velocity, back.label, back.score),
            (b.center, b.size, b.velocity, 3, 0.625)
        );
        assert!((back.yaw - b.yaw).abs() < 1e-12);
    }

    #[test]
    fn attributes_follow_speed() {
        assert_eq!(default_attribute(8, [0.0, 0.1]), "pedestrian.moving");
        assert_eq!(default_attribute(7, [1.0, 0.0]), "cycle.with_rider");
        assert_eq!(default_attribute(5, [5.0, 0.0]), "");
    }
}
