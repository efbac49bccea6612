//! Circle NMS (CenterPoint): a detection suppresses every lower-scored detection of the same
//! class whose BEV centre lies within that class's radius.

use crate::geometry::Box3D;

/// Indices of the boxes kept, in order. `boxes` must be sorted by descending score;
/// `radius[label]` is in metres, 0 disables suppression for that class.
pub fn circle_nms(boxes: &[Box3D], radius: &[f64]) -> Vec<usize> {
    let mut suppressed = vec![false; boxes.len()];
    let mut keep = Vec::new();
    for i in 0..boxes.len() {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        let r = radius.get(boxes[i].label).copied().unwrap_or(0.0);
        if r <= 0.0 {
            continue;
        }
        let r2 = r * r;
        for j in i + 1..boxes.len() {
            if suppressed[j] || boxes[j].label != boxes[i].label {
                continue;
            }
            let dx = boxes[i].center[0] - boxes[j].center[0];
            let dy = boxes[i].center[1] - boxes[j].center[1];
            if dx * dx + dy * dy <= r2 {
                suppressed[j] = true;
            }
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: f64, y: f64, label: usize, score: f64) -> Box3D {
        Box3D {
            center: [x, y, 0.0],
            size: [1.0; 3],
            yaw: 0.0,
            velocity: [0.0; 2],
            label,
            score,
        }
    }

    #[test]
    fn suppresses_same_class_within_radius_only() {
        let boxes = [
            b(0.0, 0.0, 0, 0.9),
            b(1.0, 1.0, 0, 0.8),
            b(0.5, 0.0, 1, 0.7),
            b(3.0, 0.0, 0, 0.6),
            b(0.1, 0.0, 2, 0.5),
        ];
        // class 0 radius 2 m: box 1 (1.41 m) suppressed, box 3 (3 m) kept; class 1 unaffected;
        // class 2 radius 0: no suppression.
        let keep = circle_nms(&boxes, &[2.0, 2.0, 0.0]);
        assert_eq!(keep, vec![0, 2, 3, 4]);
    }
}
