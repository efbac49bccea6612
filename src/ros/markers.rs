//! RViz markers of the detections: a DELETEALL first (so boxes of the previous frame
//! vanish), then per box a wireframe (LINE_LIST, with a heading tick on the front face) or
//! a translucent CUBE, and a text label with class and score.

use super::detections::box_pose;
use super::params::MarkerStyle;
use crate::classes::DETECTION_CLASSES;
use crate::geometry::Box3D;
use r2r::geometry_msgs::msg::{Point, Pose, Quaternion, Vector3};
use r2r::std_msgs::msg::ColorRGBA;
use r2r::visualization_msgs::msg::{Marker, MarkerArray};

/// visualization_msgs/Marker type and action values.
pub mod marker {
    pub const CUBE: i32 = 1;
    pub const LINE_LIST: i32 = 5;
    pub const TEXT_VIEW_FACING: i32 = 9;
    pub const ADD: i32 = 0;
    pub const DELETEALL: i32 = 3;
}

/// A distinct colour per detection class.
pub fn class_color(label: usize, alpha: f32) -> ColorRGBA {
    const P: [[f32; 3]; 10] = [
        [0.12, 0.47, 0.71],
        [1.0, 0.5, 0.05],
        [0.17, 0.63, 0.17],
        [0.84, 0.15, 0.16],
        [0.58, 0.4, 0.74],
        [0.55, 0.34, 0.29],
        [0.89, 0.47, 0.76],
        [0.5, 0.5, 0.5],
        [0.74, 0.74, 0.13],
        [0.09, 0.75, 0.81],
    ];
    let [r, g, b] = P[label % P.len()];
    ColorRGBA { r, g, b, a: alpha }
}

fn pt(p: [f64; 3]) -> Point {
    Point { x: p[0], y: p[1], z: p[2] }
}

/// The 12 edges of a box plus a tick from the front face's centre outwards, as LINE_LIST
/// point pairs.
pub fn wireframe(b: &Box3D) -> Vec<Point> {
    let c = b.corners();
    let mut out = Vec::with_capacity(26);
    for k in 0..4 {
        for (a, z) in [(k, (k + 1) % 4), (k + 4, (k + 1) % 4 + 4), (k, k + 4)] {
            out.push(pt(c[a]));
            out.push(pt(c[z]));
        }
    }
    // front face: corners 0, 3 (bottom) and 4, 7 (top)
    let mid = |i: usize| (c[0][i] + c[3][i] + c[4][i] + c[7][i]) / 4.0;
    let front = [mid(0), mid(1), mid(2)];
    let (s, co) = b.yaw.sin_cos();
    let tick = 0.25 * b.size[1].max(0.5);
    out.push(pt(front));
    out.push(pt([front[0] + co * tick, front[1] + s * tick, front[2]]));
    out
}

/// "class score" with the score to two decimals, by integer formatting (float formatting
/// with a precision takes microseconds per label, a tenth of a millisecond per frame).
fn label_text(b: &Box3D) -> String {
    let hundredths = (b.score.clamp(0.0, 1.0) * 100.0).round() as u32;
    let class = DETECTION_CLASSES.get(b.label).copied().unwrap_or("?");
    format!("{class} {}.{:02}", hundredths / 100, hundredths % 100)
}

/// The markers of one frame.
pub fn detections_to_markers(boxes: &[Box3D], style: MarkerStyle, header: r2r::std_msgs::msg::Header) -> MarkerArray {
    let mut markers = vec![Marker { header: header.clone(), action: marker::DELETEALL, ..Default::default() }];
    for (i, b) in boxes.iter().enumerate() {
        let id = i as i32;
        let body = match style {
            MarkerStyle::LineList => Marker {
                header: header.clone(),
                ns: "boxes".into(),
                id,
                type_: marker::LINE_LIST,
                action: marker::ADD,
                pose: Pose { orientation: Quaternion { w: 1.0, ..Default::default() }, ..Default::default() },
                scale: Vector3 { x: 0.08, y: 0.0, z: 0.0 },
                color: class_color(b.label, 1.0),
                points: wireframe(b),
                ..Default::default()
            },
            MarkerStyle::Cube => Marker {
                header: header.clone(),
                ns: "boxes".into(),
                id,
                type_: marker::CUBE,
                action: marker::ADD,
                pose: box_pose(b),
                scale: Vector3 { x: b.size[1], y: b.size[0], z: b.size[2] },
                color: class_color(b.label, 0.5),
                ..Default::default()
            },
        };
        markers.push(body);
        markers.push(Marker {
            header: header.clone(),
            ns: "labels".into(),
            id,
            type_: marker::TEXT_VIEW_FACING,
            action: marker::ADD,
            pose: Pose {
                position: pt([b.center[0], b.center[1], b.center[2] + b.size[2] / 2.0 + 0.4]),
                orientation: Quaternion { w: 1.0, ..Default::default() },
            },
            scale: Vector3 { x: 0.0, y: 0.0, z: 0.6 },
            color: ColorRGBA { r: 1.0, g: 1.0, b: 1.0, a: 1.0 },
            text: label_text(b),
            ..Default::default()
        });
    }
    MarkerArray { markers }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_all_then_box_and_label_per_detection() {
        let b = Box3D {
            center: [10.0, 0.0, 1.0],
            size: [2.0, 4.0, 1.5],
            yaw: 0.0,
            velocity: [0.0; 2],
            label: 0,
            score: 0.9,
        };
        let m = detections_to_markers(&[b.clone(), b.clone()], MarkerStyle::LineList, Default::default());
        assert_eq!(m.markers.len(), 5);
        assert_eq!(m.markers[0].action, marker::DELETEALL);
        assert_eq!(m.markers[1].points.len(), 26);
        assert_eq!(m.markers[2].text, "car 0.90");
        for (score, text) in [(0.0, "car 0.00"), (0.054, "car 0.05"), (0.996, "car 1.00"), (1.0, "car 1.00")] {
            assert_eq!(label_text(&Box3D { score, ..b.clone() }), text);
        }
        // the heading tick starts on the front face (x = 12) and points along +x
        let p = &m.markers[1].points;
        assert!((p[24].x - 12.0).abs() < 1e-12 && p[25].x > p[24].x);
        let m = detections_to_markers(&[b], MarkerStyle::Cube, Default::default());
        assert_eq!((m.markers[1].type_, m.markers[1].scale.x), (marker::CUBE, 4.0));
    }
}
