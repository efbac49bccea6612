//! Which boxes take part in the evaluation: the devkit's `filter_eval_boxes`, applied alike
//! to ground truth and predictions of one sample, in this order:
//! 1. horizontal distance from the ego pose strictly below the class range;
//! 2. boxes with zero LiDAR+radar points dropped (predictions carry -1 and stay);
//! 3. bicycles and motorcycles whose centre lies inside a `static_object.bicycle_rack` box
//!    of the sample dropped.

use super::detection_box::{DetectionBox, RegionBox};
use super::detection_config::DetectionConfig;
use crate::classes::detection_class_index;

/// The boxes of one sample that survive the filters, in their original order.
pub fn filter_boxes<'a>(
    boxes: &'a [DetectionBox],
    ego_translation: [f64; 3],
    bike_racks: &[RegionBox],
    cfg: &DetectionConfig,
) -> Vec<&'a DetectionBox> {
    let bicycle = detection_class_index("bicycle");
    let motorcycle = detection_class_index("motorcycle");
    boxes
        .iter()
        .filter(|b| b.ego_dist(ego_translation) < cfg.range_of(b.label))
        .filter(|b| b.num_pts != 0)
        .filter(|b| {
            let cycle = Some(b.label) == bicycle || Some(b.label) == motorcycle;
            !(cycle && bike_racks.iter().any(|r| r.contains(b.translation)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(label: &str, x: f64, num_pts: i64) -> DetectionBox {
        DetectionBox {
            translation: [x, 0.0, 0.0],
            size: [1.0, 1.0, 1.0],
            rotation: [1.0, 0.0, 0.0, 0.0],
            velocity: [0.0, 0.0],
            label: detection_class_index(label).unwrap(),
            score: -1.0,
            attribute: None,
            num_pts,
        }
    }

    #[test]
    fn range_points_and_bike_racks() {
        let cfg = DetectionConfig::cvpr_2019();
        let ego = [100.0, 0.0, 5.0];
        let boxes = vec![
            bx("car", 149.999, 3),       // 49.999 m: kept
            bx("car", 150.0, 3),         // exactly 50 m: dropped (strictly below)
            bx("barrier", 129.0, 1),     // 29 m: kept
            bx("barrier", 131.0, 1),     // 31 m: dropped
            bx("pedestrian", 110.0, 0),  // zero points: dropped
            bx("pedestrian", 111.0, -1), // prediction: kept
            bx("bicycle", 120.0, 2),     // in the rack: dropped
            bx("car", 120.0, 2),         // in the rack but a car: kept
            bx("bicycle", 125.0, 2),     // outside the rack: kept
        ];
        let rack = RegionBox {
            translation: [120.0, 0.0, 0.0],
            size: [2.0, 3.0, 2.0],
            rotation: [1.0, 0.0, 0.0, 0.0],
        };
        let kept: Vec<f64> = filter_boxes(&boxes, ego, &[rack], &cfg)
            .iter()
            .map(|b| b.translation[0])
            .collect();
        assert_eq!(kept, vec![149.999, 129.0, 111.0, 120.0, 125.0]);
    }
}
