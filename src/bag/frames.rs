//! Dataset frames <-> bag messages: the topic layout `altermoma gen-bag` writes, and the
//! ground truth (`altermoma_msgs/FrameGroundTruth`) and rig calibration
//! (`altermoma_msgs/RigCalibration`) that replay reads back into [`Frame`] values for the
//! metrics, and the vehicle's static transforms (`/tf_static`) the node reads its
//! extrinsics from.
//!
//! Conventions: box poses are the centre and the heading about +z; `size` is (length,
//! width, height) as the message defines it (Box3D keeps `[w, l, h]`). BEV maps keep the
//! [`BevGrid`] layout: rows along +x, columns along +y, origin at `(x_min, y_min)`, cells 0
//! or 255. The message stores the resolution as float32; reading rounds it to micrometres,
//! which recovers every decimal grid resolution exactly.

use crate::classes::{detection_class_index, DETECTION_CLASSES, MAP_CLASSES};
use crate::data::{Annotation, BevMap, CameraCalib, Frame};
use crate::geometry::{BevGrid, Box3D};
use anyhow::{bail, Result};
use nalgebra::{Isometry3, Quaternion as NQuaternion, Translation3, UnitQuaternion};
use r2r::altermoma_msgs::msg::{BevSegmentation, Detection3D, FrameGroundTruth, RigCalibration};
use super::messages::TfMessage;
use crate::ros::convert::{header, stamp_to_ns};
use r2r::std_msgs::msg::Header;
use r2r::geometry_msgs::msg::{Point, Pose, Quaternion, Vector3};

/// Topic of the LiDAR clouds written by gen-bag.
pub const LIDAR_TOPIC: &str = "/lidar_top/points";
/// Latched topic of the camera rig's extrinsics.
pub const CALIBRATION_TOPIC: &str = "/calibration/rig";
/// Latched topic of the vehicle's static transforms (tf2_msgs/TFMessage).
pub const TF_STATIC_TOPIC: &str = "/tf_static";
/// Frame id of the vehicle body, the root of the static transform tree.
pub const EGO_FRAME: &str = "base_link";
/// Topic of the per-frame ground truth.
pub const GROUND_TRUTH_TOPIC: &str = "/ground_truth/frame";
/// Frame id of the LiDAR (and of every box and map).
pub const LIDAR_FRAME: &str = "lidar_top";

/// Image topic of a camera (`CAM_FRONT` -> `/cam_front/image_raw`, or `.../compressed`).
pub fn camera_image_topic(camera: &str, compressed: bool) -> String {
    format!("/{}/{}", camera.to_lowercase(), if compressed { "image_raw/compressed" } else { "image_raw" })
}

/// CameraInfo topic of a camera.
pub fn camera_info_topic(camera: &str) -> String {
    format!("/{}/camera_info", camera.to_lowercase())
}

/// Frame id of a camera's optical frame.
pub fn camera_frame_id(camera: &str) -> String {
    camera.to_lowercase()
}

/// Pose of a rigid transform.
pub fn pose_of(iso: &Isometry3<f64>) -> Pose {
    let t = iso.translation.vector;
    let q = iso.rotation.quaternion();
    Pose { position: Point { x: t.x, y: t.y, z: t.z }, orientation: Quaternion { x: q.i, y: q.j, z: q.k, w: q.w } }
}

/// Rigid transform of a pose; the quaternion must be finite and non-zero.
pub fn iso_of(p: &Pose, what: &str) -> Result<Isometry3<f64>> {
    let o = &p.orientation;
    let q = NQuaternion::new(o.w, o.x, o.y, o.z);
    let n = q.norm();
    if !n.is_finite() || n < 1e-9 {
        bail!("{what}: orientation quaternion ({}, {}, {}, {}) is not a rotation", o.x, o.y, o.z, o.w);
    }
    let v = [p.position.x, p.position.y, p.position.z];
    if v.iter().any(|x| !x.is_finite()) {
        bail!("{what}: position has NaN/Inf");
    }
    Ok(Isometry3::from_parts(Translation3::new(v[0], v[1], v[2]), UnitQuaternion::from_quaternion(q)))
}

/// The rig's extrinsics (camera optical frame -> LiDAR frame), camera order kept.
pub fn rig_calibration(calibs: &[CameraCalib], header: Header) -> RigCalibration {
    RigCalibration {
        header,
        camera_names: calibs.iter().map(|c| c.name.clone()).collect(),
        camera_to_lidar: calibs.iter().map(|c| pose_of(&c.cam_to_lidar)).collect(),
    }
}

/// The vehicle's static transform tree as /tf_static carries it: `base_link` -> the LiDAR
/// (`lidar_to_ego`) and `base_link` -> each camera's optical frame (`lidar_to_ego *
/// cam_to_lidar`).
pub fn static_transforms(lidar_to_ego: &Isometry3<f64>, calibs: &[CameraCalib], stamp_ns: i64) -> TfMessage {
    let tf = |child: &str, iso: &Isometry3<f64>| crate::ros::convert::transform_stamped(stamp_ns, EGO_FRAME, child, iso);
    let mut transforms = vec![tf(LIDAR_FRAME, lidar_to_ego)];
    transforms.extend(calibs.iter().map(|c| tf(&camera_frame_id(&c.name), &(lidar_to_ego * c.cam_to_lidar))));
    TfMessage { transforms }
}

/// Camera name -> camera-to-LiDAR transform, from a rig calibration message.
pub fn rig_extrinsics(msg: &RigCalibration) -> Result<Vec<(String, Isometry3<f64>)>> {
    if msg.camera_names.len() != msg.camera_to_lidar.len() {
        bail!("RigCalibration: {} camera names but {} poses", msg.camera_names.len(), msg.camera_to_lidar.len());
    }
    msg.camera_names
        .iter()
        .zip(&msg.camera_to_lidar)
        .map(|(n, p)| Ok((n.clone(), iso_of(p, &format!("RigCalibration camera {n}"))?)))
        .collect()
}

/// One ground-truth box as a detection (score 1, the annotation's attribute).
pub fn annotation_to_detection(a: &Annotation) -> Detection3D {
    let b = &a.bbox;
    let [w, x, y, z] = b.quaternion_wxyz();
    Detection3D {
        class_name: DETECTION_CLASSES.get(b.label).copied().unwrap_or("unknown").to_string(),
        class_id: b.label.min(u8::MAX as usize) as u8,
        score: b.score as f32,
        pose: Pose {
            position: Point { x: b.center[0], y: b.center[1], z: b.center[2] },
            orientation: Quaternion { x, y, z, w },
        },
        size: Vector3 { x: b.size[1], y: b.size[0], z: b.size[2] },
        velocity: Vector3 { x: b.velocity[0], y: b.velocity[1], z: 0.0 },
        attribute_name: a.attribute.clone(),
    }
}

/// A detection message as a box (label from the class name, else the class id).
pub fn detection_to_box(d: &Detection3D) -> Result<Box3D> {
    let label = match detection_class_index(&d.class_name) {
        Some(l) => l,
        None if (d.class_id as usize) < DETECTION_CLASSES.len() && d.class_name.is_empty() => d.class_id as usize,
        None => bail!("unknown detection class `{}`", d.class_name),
    };
    let q = &d.pose.orientation;
    Ok(Box3D {
        center: [d.pose.position.x, d.pose.position.y, d.pose.position.z],
        size: [d.size.y, d.size.x, d.size.z],
        yaw: Box3D::yaw_from_quaternion([q.w, q.x, q.y, q.z]),
        velocity: [d.velocity.x, d.velocity.y],
        label,
        score: d.score as f64,
    })
}

/// A BEV map as a segmentation message (cells 0 or 255).
pub fn map_to_msg(map: &BevMap, header: Header) -> BevSegmentation {
    let g = &map.grid;
    BevSegmentation {
        header,
        class_names: MAP_CLASSES.iter().map(|s| s.to_string()).collect(),
        origin: Pose {
            position: Point { x: g.x_min, y: g.y_min, z: 0.0 },
            orientation: Quaternion { x: 0.0, y: 0.0, z: 0.0, w: 1.0 },
        },
        resolution: g.resolution as f32,
        rows: g.nx() as u32,
        cols: g.ny() as u32,
        thresholds: vec![0.5; MAP_CLASSES.len()],
        data: map.data.iter().map(|&v| if v != 0 { 255 } else { 0 }).collect(),
    }
}

/// A segmentation message as a binary BEV map (cells >= threshold*255 set), checked
/// against its own declared size.
pub fn msg_to_map(m: &BevSegmentation) -> Result<BevMap> {
    let (rows, cols) = (m.rows as usize, m.cols as usize);
    let c = m.class_names.len();
    if c != MAP_CLASSES.len() || m.class_names.iter().zip(MAP_CLASSES).any(|(a, b)| a != b) {
        bail!("BEV map classes {:?} are not {:?}", m.class_names, MAP_CLASSES);
    }
    if rows.checked_mul(cols).and_then(|n| n.checked_mul(c)) != Some(m.data.len()) {
        bail!("BEV map of {c} classes x {rows} x {cols} cells has {} bytes", m.data.len());
    }
    if !(m.resolution > 0.0 && m.resolution.is_finite()) {
        bail!("BEV map resolution {} is not positive", m.resolution);
    }
    let res = ((m.resolution as f64) * 1e6).round() / 1e6;
    let grid = BevGrid {
        x_min: m.origin.position.x,
        x_max: m.origin.position.x + rows as f64 * res,
        y_min: m.origin.position.y,
        y_max: m.origin.position.y + cols as f64 * res,
        resolution: res,
    };
    let data = m
        .data
        .chunks_exact(rows * cols)
        .zip(0..)
        .flat_map(|(layer, k)| {
            let t = m.thresholds.get(k).copied().unwrap_or(0.5).clamp(0.0, 1.0) * 255.0;
            layer.iter().map(move |&v| (v as f32 >= t.max(1.0)) as u8)
        })
        .collect();
    Ok(BevMap { grid, data })
}

/// The ground truth of a frame as a message (header: the LiDAR stamp and frame).
pub fn ground_truth_msg(frame: &Frame) -> FrameGroundTruth {
    let h = header(frame.timestamp_us.saturating_mul(1000), LIDAR_FRAME);
    FrameGroundTruth {
        header: h.clone(),
        sample_token: frame.token.clone(),
        scene_token: frame.scene_token.clone(),
        ego_to_global: pose_of(&frame.ego_to_global),
        lidar_to_ego: pose_of(&frame.lidar_to_ego),
        boxes: frame.annotations.iter().map(annotation_to_detection).collect(),
        instance_tokens: frame.annotations.iter().map(|a| a.instance_token.clone()).collect(),
        num_lidar_pts: frame.annotations.iter().map(|a| a.num_lidar_pts).collect(),
        visibility: frame.annotations.iter().map(|a| a.visibility).collect(),
        map: frame.map.as_ref().map(|m| map_to_msg(m, h.clone())).unwrap_or_default(),
    }
}

/// A frame (ground truth only: no points, no images) from its ground-truth message.
pub fn frame_from_ground_truth(gt: &FrameGroundTruth) -> Result<Frame> {
    let n = gt.boxes.len();
    if gt.instance_tokens.len() != n || gt.num_lidar_pts.len() != n || gt.visibility.len() != n {
        bail!(
            "FrameGroundTruth {}: {n} boxes but {} instance tokens, {} point counts, {} visibilities",
            gt.sample_token,
            gt.instance_tokens.len(),
            gt.num_lidar_pts.len(),
            gt.visibility.len()
        );
    }
    let annotations = gt
        .boxes
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut bbox = detection_to_box(d).map_err(|e| e.context(format!("FrameGroundTruth boxes[{i}]")))?;
            bbox.score = d.score as f64;
            Ok(Annotation {
                bbox,
                instance_token: gt.instance_tokens[i].clone(),
                num_lidar_pts: gt.num_lidar_pts[i],
                attribute: d.attribute_name.clone(),
                visibility: gt.visibility[i],
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let map = if gt.map.data.is_empty() { None } else { Some(msg_to_map(&gt.map)?) };
    Ok(Frame {
        token: gt.sample_token.clone(),
        scene_token: gt.scene_token.clone(),
        timestamp_us: stamp_to_ns(&gt.header.stamp) / 1000,
        lidar_to_ego: iso_of(&gt.lidar_to_ego, "FrameGroundTruth lidar_to_ego")?,
        ego_to_global: iso_of(&gt.ego_to_global, "FrameGroundTruth ego_to_global")?,
        points: None,
        cameras: Vec::new(),
        annotations,
        map,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3 as V3;

    fn frame() -> Frame {
        let grid = BevGrid { x_min: -8.0, x_max: 8.0, y_min: -4.0, y_max: 4.0, resolution: 0.8 };
        let cells = grid.nx() * grid.ny();
        Frame {
            token: "tok".into(),
            scene_token: "scene".into(),
            timestamp_us: 1_533_151_603_547_590,
            lidar_to_ego: Isometry3::new(V3::new(0.94, 0.0, 1.84), V3::new(0.0, 0.0, -1.5707)),
            ego_to_global: Isometry3::new(V3::new(411.3, 1180.9, 0.0), V3::new(0.01, -0.02, 2.9)),
            points: None,
            cameras: Vec::new(),
            annotations: (0..4)
                .map(|k| Annotation {
                    bbox: Box3D {
                        center: [k as f64 * 3.5, -2.0, 0.8],
                        size: [1.9, 4.6, 1.7],
                        yaw: -3.0 + 1.7 * k as f64,
                        velocity: if k == 3 { [f64::NAN, f64::NAN] } else { [1.5, -0.25] },
                        label: [0, 8, 5, 2][k],
                        score: 1.0,
                    },
                    instance_token: format!("inst{k}"),
                    num_lidar_pts: 7 * k as u32,
                    attribute: ["vehicle.moving", "pedestrian.standing", "", "vehicle.parked"][k].into(),
                    visibility: 1 + k as u8,
                })
                .collect(),
            map: Some(BevMap { grid, data: (0..6 * cells).map(|i| ((i * 7) % 3 == 0) as u8).collect() }),
        }
    }

    #[test]
    fn ground_truth_round_trips_through_the_message_and_cdr() {
        use crate::bag::cdr::CdrMessage;
        let f = frame();
        let msg = FrameGroundTruth::decode(&ground_truth_msg(&f).encode().unwrap()).unwrap();
        assert_eq!(msg.map.rows, 20);
        assert_eq!(msg.boxes[1].size.x, 4.6, "size.x is the length");
        let g = frame_from_ground_truth(&msg).unwrap();
        assert_eq!((g.token.as_str(), g.scene_token.as_str(), g.timestamp_us), ("tok", "scene", f.timestamp_us));
        assert!((g.ego_to_global.to_homogeneous() - f.ego_to_global.to_homogeneous()).abs().max() < 1e-12);
        assert!((g.lidar_to_ego.to_homogeneous() - f.lidar_to_ego.to_homogeneous()).abs().max() < 1e-12);
        assert_eq!(g.map, f.map, "the map (grid included) is exact");
        for (a, b) in g.annotations.iter().zip(&f.annotations) {
            assert_eq!(
                (a.bbox.center, a.bbox.size, a.bbox.label, a.bbox.score),
                (b.bbox.center, b.bbox.size, b.bbox.label, 1.0)
            );
            let dy = (a.bbox.yaw - b.bbox.yaw + std::f64::consts::PI).rem_euclid(2.0 * std::f64::consts::PI)
                - std::f64::consts::PI;
            assert!(dy.abs() < 1e-12, "{} vs {}", a.bbox.yaw, b.bbox.yaw);
            assert_eq!(a.bbox.velocity[0].to_bits(), b.bbox.velocity[0].to_bits(), "NaN velocities stay NaN");
            assert_eq!(
                (&a.instance_token, a.num_lidar_pts, &a.attribute, a.visibility),
                (&b.instance_token, b.num_lidar_pts, &b.attribute, b.visibility)
            );
        }
    }

    #[test]
    fn bad_ground_truth_is_named() {
        let mut m = ground_truth_msg(&frame());
        m.visibility.pop();
        assert!(frame_from_ground_truth(&m).unwrap_err().to_string().contains("visibilities"));
        let mut m = ground_truth_msg(&frame());
        m.boxes[2].class_name = "spaceship".into();
        assert!(format!("{:#}", frame_from_ground_truth(&m).unwrap_err()).contains("boxes[2]"));
        let mut m = ground_truth_msg(&frame());
        m.map.data.pop();
        assert!(frame_from_ground_truth(&m).is_err());
        let mut m = ground_truth_msg(&frame());
        m.ego_to_global.orientation = Quaternion { x: 0.0, y: 0.0, z: 0.0, w: 0.0 };
        assert!(frame_from_ground_truth(&m).unwrap_err().to_string().contains("ego_to_global"));
    }

    #[test]
    fn rig_calibration_round_trips() {
        let c = CameraCalib {
            name: "CAM_BACK_LEFT".into(),
            width: 704,
            height: 256,
            intrinsics: nalgebra::Matrix3::new(500.0, 0.0, 352.0, 0.0, 500.0, 128.0, 0.0, 0.0, 1.0),
            cam_to_lidar: Isometry3::new(V3::new(-0.5, 0.4, -0.3), V3::new(-1.2, 0.1, 2.2)),
        };
        let m = rig_calibration(std::slice::from_ref(&c), header(5, LIDAR_FRAME));
        let e = rig_extrinsics(&m).unwrap();
        assert_eq!(e[0].0, "CAM_BACK_LEFT");
        assert!((e[0].1.to_homogeneous() - c.cam_to_lidar.to_homogeneous()).abs().max() < 1e-12);
        assert_eq!(camera_image_topic("CAM_BACK_LEFT", false), "/cam_back_left/image_raw");
    }
}
