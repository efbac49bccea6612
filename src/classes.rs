//! The class lists every part of the product agrees on.

/// The ten nuScenes detection classes, in the order the model's heatmap channels use.
pub const DETECTION_CLASSES: [&str; 10] = [
    "car",
    "truck",
    "construction_vehicle",
    "bus",
    "trailer",
    "barrier",
    "motorcycle",
    "bicycle",
    "pedestrian",
    "traffic_cone",
];

/// BEVFusion's six BEV map-segmentation classes, in the order of the segmentation channels.
pub const MAP_CLASSES: [&str; 6] = [
    "drivable_area",
    "ped_crossing",
    "walkway",
    "stop_line",
    "carpark_area",
    "divider",
];

/// Index of a detection class name in [`DETECTION_CLASSES`].
pub fn detection_class_index(name: &str) -> Option<usize> {
    DETECTION_CLASSES.iter().position(|c| *c == name)
}

/// Index of a map class name in [`MAP_CLASSES`].
pub fn map_class_index(name: &str) -> Option<usize> {
    MAP_CLASSES.iter().position(|c| *c == name)
}

/// nuScenes evaluation range of a detection class in metres (detection_cvpr_2019).
pub fn class_range(name: &str) -> Option<f64> {
    Some(match name {
        "car" | "truck" | "bus" | "trailer" | "construction_vehicle" => 50.0,
        "pedestrian" | "motorcycle" | "bicycle" => 40.0,
        "traffic_cone" | "barrier" => 30.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_a_range_and_an_index() {
        for (i, c) in DETECTION_CLASSES.iter().enumerate() {
            assert_eq!(detection_class_index(c), Some(i));
            assert!(class_range(c).is_some(), "{c}");
        }
        assert_eq!(class_range("bicycle_rack"), None);
        assert_eq!(map_class_index("divider"), Some(5));
    }
}
