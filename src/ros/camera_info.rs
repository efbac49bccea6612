//! `sensor_msgs/CameraInfo` <-> pinhole intrinsics.
//!
//! The model assumes rectified (undistorted) images: non-zero distortion coefficients are
//! reported as a warning, not applied. A region of interest shifts the principal point and
//! binning scales the intrinsics, as the CameraInfo definition prescribes.

use super::convert::ConvertError;
use crate::data::CameraCalib;
use nalgebra::Matrix3;
use r2r::sensor_msgs::msg::CameraInfo;

/// Intrinsics and image size of the images that go with a CameraInfo.
#[derive(Clone, Debug, PartialEq)]
pub struct Intrinsics {
    pub width: u32,
    pub height: u32,
    pub k: Matrix3<f64>,
    /// Problems that do not prevent use (distortion present, ...).
    pub warnings: Vec<String>,
}

/// Read the intrinsics of a CameraInfo.
pub fn camera_info_to_intrinsics(msg: &CameraInfo) -> Result<Intrinsics, ConvertError> {
    if msg.k.len() != 9 {
        return Err(ConvertError::new("k", format!("{} values, expected 9", msg.k.len())));
    }
    if let Some(i) = msg.k.iter().position(|v| !v.is_finite()) {
        return Err(ConvertError::new(format!("k[{i}]"), "NaN/Inf"));
    }
    let mut k = Matrix3::from_row_slice(&msg.k);
    if k[(0, 0)] <= 0.0 || k[(1, 1)] <= 0.0 {
        return Err(ConvertError::new(
            "k",
            format!("focal lengths must be positive (fx {}, fy {}): uncalibrated camera?", k[(0, 0)], k[(1, 1)]),
        ));
    }
    if k[(1, 0)] != 0.0 || k[(2, 0)] != 0.0 || k[(2, 1)] != 0.0 || (k[(2, 2)] - 1.0).abs() > 1e-9 {
        return Err(ConvertError::new("k", "not an upper-triangular camera matrix with k[8] = 1"));
    }
    if msg.width == 0 || msg.height == 0 {
        return Err(ConvertError::new("width", format!("zero image size {}x{}", msg.width, msg.height)));
    }
    let mut warnings = Vec::new();
    if msg.d.iter().any(|v| *v != 0.0) {
        warnings.push(format!(
            "distortion `{}` with non-zero coefficients ignored: images are assumed rectified",
            msg.distortion_model
        ));
    }
    let (mut w, mut h) = (msg.width, msg.height);
    let roi = &msg.roi;
    if roi.width > 0 && roi.height > 0 && (roi.width, roi.height, roi.x_offset, roi.y_offset) != (w, h, 0, 0) {
        if roi.x_offset as u64 + roi.width as u64 > w as u64 || roi.y_offset as u64 + roi.height as u64 > h as u64 {
            return Err(ConvertError::new("roi", "region of interest exceeds the image"));
        }
        k[(0, 2)] -= roi.x_offset as f64;
        k[(1, 2)] -= roi.y_offset as f64;
        w = roi.width;
        h = roi.height;
    }
    let (bx, by) = (msg.binning_x.max(1), msg.binning_y.max(1));
    if bx > 1 || by > 1 {
        k[(0, 0)] /= bx as f64;
        k[(0, 1)] /= bx as f64;
        k[(0, 2)] /= bx as f64;
        k[(1, 1)] /= by as f64;
        k[(1, 2)] /= by as f64;
        w /= bx;
        h /= by;
        if w == 0 || h == 0 {
            return Err(ConvertError::new("binning_x", "binning leaves an empty image"));
        }
    }
    Ok(Intrinsics { width: w, height: h, k, warnings })
}

/// A CameraInfo for a calibration (no distortion, no binning, no ROI; P = [K | 0]).
pub fn calib_to_camera_info(calib: &CameraCalib, header: r2r::std_msgs::msg::Header) -> CameraInfo {
    let k: Vec<f64> = calib.intrinsics.transpose().iter().copied().collect(); // row-major
    let mut p = vec![0.0; 12];
    for r in 0..3 {
        for c in 0..3 {
            p[r * 4 + c] = calib.intrinsics[(r, c)];
        }
    }
    CameraInfo {
        header,
        height: calib.height,
        width: calib.width,
        distortion_model: "plumb_bob".into(),
        d: vec![0.0; 5],
        k,
        r: vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p,
        binning_x: 0,
        binning_y: 0,
        roi: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calib() -> CameraCalib {
        crate::pipeline::frame_input::neutral_calib("CAM_FRONT")
    }

    #[test]
    fn round_trip_is_exact() {
        let c = calib();
        let i = camera_info_to_intrinsics(&calib_to_camera_info(&c, Default::default())).unwrap();
        assert_eq!(i.k, c.intrinsics);
        assert_eq!((i.width, i.height), (1600, 900));
        assert!(i.warnings.is_empty());
    }

    #[test]
    fn roi_and_binning_adjust_intrinsics() {
        let mut m = calib_to_camera_info(&calib(), Default::default());
        m.roi.x_offset = 100;
        m.roi.y_offset = 50;
        m.roi.width = 800;
        m.roi.height = 400;
        m.binning_x = 2;
        m.binning_y = 2;
        m.d[0] = 0.1;
        let i = camera_info_to_intrinsics(&m).unwrap();
        assert_eq!((i.width, i.height), (400, 200));
        assert_eq!(i.k[(0, 2)], (800.0 - 100.0) / 2.0);
        assert_eq!(i.k[(0, 0)], 633.0);
        assert_eq!(i.warnings.len(), 1);
    }

    #[test]
    fn bad_camera_info_is_named() {
        let good = calib_to_camera_info(&calib(), Default::default());
        let mut m = good.clone();
        m.k = vec![0.0; 9];
        assert!(camera_info_to_intrinsics(&m).unwrap_err().message.contains("uncalibrated"));
        let mut m = good.clone();
        m.k[2] = f64::NAN;
        assert_eq!(camera_info_to_intrinsics(&m).unwrap_err().field, "k[2]");
        let mut m = good.clone();
        m.k.truncate(4);
        assert_eq!(camera_info_to_intrinsics(&m).unwrap_err().field, "k");
        let mut m = good;
        m.width = 0;
        assert_eq!(camera_info_to_intrinsics(&m).unwrap_err().field, "width");
    }
}
