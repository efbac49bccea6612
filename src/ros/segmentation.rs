//! BEV segmentation -> `altermoma_msgs/BevSegmentation` and `nav_msgs/OccupancyGrid`.

use crate::pipeline::Segmentation;
use r2r::altermoma_msgs::msg::BevSegmentation;
use r2r::geometry_msgs::msg::{Point, Pose, Quaternion};
use r2r::nav_msgs::msg::{MapMetaData, OccupancyGrid};

fn grid_origin(seg: &Segmentation) -> Pose {
    Pose {
        position: Point { x: seg.grid.x_min, y: seg.grid.y_min, z: 0.0 },
        orientation: Quaternion { x: 0.0, y: 0.0, z: 0.0, w: 1.0 },
    }
}

/// Probabilities quantised to 0..=255, class-major `[C, rows = NX, cols = NY]`.
pub fn segmentation_to_msg(seg: &Segmentation, header: r2r::std_msgs::msg::Header) -> BevSegmentation {
    BevSegmentation {
        header,
        class_names: seg.class_names.clone(),
        origin: grid_origin(seg),
        resolution: seg.grid.resolution as f32,
        rows: seg.grid.nx() as u32,
        cols: seg.grid.ny() as u32,
        thresholds: seg.thresholds.clone(),
        data: seg.probs.iter().map(|&p| scaled_round(p, 255.0) as u8).collect(),
    }
}

/// `p` clamped to 0..=1, times `scale`, rounded half away from zero (NaN gives 0): what
/// `(p.clamp(0.0, 1.0) * scale).round()` gives, without `round`'s library call per value (the
/// difference to the truncated value is exact for these magnitudes), so it vectorises.
#[inline]
fn scaled_round(p: f32, scale: f32) -> f32 {
    let v = p.clamp(0.0, 1.0) * scale;
    let t = v as i32 as f32; // truncation; NaN gives 0
    if v - t >= 0.5 {
        t + 1.0
    } else {
        t
    }
}

/// One occupancy grid per class, probabilities as 0..=100. OccupancyGrid cells are
/// row-major with rows along +y and columns along +x, so the BEV grid is transposed.
pub fn segmentation_to_occupancy_grids(seg: &Segmentation, header: r2r::std_msgs::msg::Header) -> Vec<OccupancyGrid> {
    let (nx, ny) = (seg.grid.nx(), seg.grid.ny());
    (0..seg.num_classes())
        .map(|c| {
            let mut data = vec![0i8; nx * ny];
            for i in 0..nx {
                for j in 0..ny {
                    data[j * nx + i] = scaled_round(seg.prob(c, i, j), 100.0) as i8;
                }
            }
            OccupancyGrid {
                header: header.clone(),
                info: MapMetaData {
                    map_load_time: header.stamp.clone(),
                    resolution: seg.grid.resolution as f32,
                    width: nx as u32,
                    height: ny as u32,
                    origin: grid_origin(seg),
                },
                data,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::BevGrid;

    fn seg() -> Segmentation {
        let grid = BevGrid { x_min: -2.0, x_max: 2.0, y_min: -1.0, y_max: 1.0, resolution: 1.0 };
        let probs: Vec<f32> = (0..2 * 4 * 2).map(|k| k as f32 / 15.0).collect();
        Segmentation { grid, class_names: vec!["a".into(), "b".into()], thresholds: vec![0.5, 0.4], probs }
    }

    #[test]
    fn bev_message_keeps_layout() {
        let s = seg();
        let m = segmentation_to_msg(&s, Default::default());
        assert_eq!((m.rows, m.cols), (4, 2));
        assert_eq!(m.data.len(), 16);
        // data[c * rows * cols + r * cols + k] = prob(c, r, k)
        assert_eq!(m.data[8 + 2 * 2 + 1], (s.prob(1, 2, 1) * 255.0).round() as u8);
        assert_eq!(m.data[15], 255);
        assert_eq!(m.origin.position.x, -2.0);
    }

    #[test]
    fn scaled_round_equals_clamp_scale_round() {
        let reference = |p: f32, scale: f32| (p.clamp(0.0, 1.0) * scale).round();
        let mut values = vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0, -1e-30, 1.0, 1.5, 1e30];
        // every half step of both scales, and its neighbours one ulp away
        for scale in [255.0f32, 100.0] {
            for k in 0..=(2 * scale as i32) {
                let p = (k as f32 * 0.5) / scale;
                values.extend([p, f32::from_bits(p.to_bits().saturating_sub(1)), f32::from_bits(p.to_bits() + 1)]);
            }
        }
        values.extend((0..100_000).map(|k| k as f32 / 99_999.0));
        for scale in [255.0f32, 100.0] {
            for &p in &values {
                let (got, want) = (scaled_round(p, scale), reference(p, scale));
                assert!(got == want || (want.is_nan() && got == 0.0), "p {p:e} scale {scale}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn occupancy_grid_is_transposed() {
        let s = seg();
        let g = segmentation_to_occupancy_grids(&s, Default::default());
        assert_eq!(g.len(), 2);
        assert_eq!((g[1].info.width, g[1].info.height), (4, 2));
        // cell x index 3, y index 1 -> data[1 * width + 3]
        assert_eq!(g[1].data[4 + 3], (s.prob(1, 3, 1) * 100.0).round() as i8);
    }
}
