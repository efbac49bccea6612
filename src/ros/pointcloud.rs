//! `sensor_msgs/PointCloud2` <-> [`Points`] (x, y, z, intensity, ring).
//!
//! Reading accepts any field order and offsets, `x`/`y`/`z` as float32 or float64, an
//! `intensity` (or `i`) and a `ring` field of any numeric type or absent (0 then), either
//! byte order (`is_bigendian` is honoured), and row padding (`row_step > width * point_step`).
//! Points with a NaN/Inf coordinate or intensity are skipped and counted. The layout is
//! validated before any byte is read: `point_step` must hold every field, `row_step` every
//! row, `data` must be exactly `row_step * height` bytes, and the cloud must not exceed the
//! configured capacity.
//!
//! Clouds are read through a [`RawCloudView`], from r2r's `PointCloud2` (bags, replay) or
//! from the middleware's C message (the node, [`super::native_cloud`]) alike.

use super::convert::ConvertError;
use crate::data::{Points, POINT_DIMS};
use r2r::sensor_msgs::msg::{PointCloud2, PointField};
use r2r::std_msgs::msg::Header;

/// `sensor_msgs/PointField` datatypes.
pub mod datatype {
    pub const INT8: u8 = 1;
    pub const UINT8: u8 = 2;
    pub const INT16: u8 = 3;
    pub const UINT16: u8 = 4;
    pub const INT32: u8 = 5;
    pub const UINT32: u8 = 6;
    pub const FLOAT32: u8 = 7;
    pub const FLOAT64: u8 = 8;

    /// Size in bytes of one element, or None for an unknown datatype.
    pub fn size(dt: u8) -> Option<usize> {
        match dt {
            INT8 | UINT8 => Some(1),
            INT16 | UINT16 => Some(2),
            INT32 | UINT32 | FLOAT32 => Some(4),
            FLOAT64 => Some(8),
            _ => None,
        }
    }

    pub fn name(dt: u8) -> &'static str {
        match dt {
            INT8 => "int8",
            UINT8 => "uint8",
            INT16 => "int16",
            UINT16 => "uint16",
            INT32 => "int32",
            UINT32 => "uint32",
            FLOAT32 => "float32",
            FLOAT64 => "float64",
            _ => "unknown",
        }
    }
}

/// Where one used field lives inside a point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FieldSpec {
    pub offset: usize,
    pub datatype: u8,
}

/// A validated cloud layout.
#[derive(Clone, Debug, PartialEq)]
pub struct CloudLayout {
    pub x: FieldSpec,
    pub y: FieldSpec,
    pub z: FieldSpec,
    pub intensity: Option<FieldSpec>,
    pub ring: Option<FieldSpec>,
    pub width: usize,
    pub height: usize,
    pub point_step: usize,
    pub row_step: usize,
    pub big_endian: bool,
}

impl CloudLayout {
    /// Number of points the message holds (`width * height`).
    pub fn num_points(&self) -> usize {
        self.width * self.height
    }
}

/// The fields of a `sensor_msgs/PointCloud2` that reading it needs, borrowed from either
/// message form.
#[derive(Clone, Copy, Debug)]
pub struct RawCloudView<'a> {
    pub header: &'a Header,
    pub height: u32,
    pub width: u32,
    pub fields: &'a [PointField],
    pub is_bigendian: bool,
    pub point_step: u32,
    pub row_step: u32,
    pub data: &'a [u8],
}

impl<'a> From<&'a PointCloud2> for RawCloudView<'a> {
    fn from(m: &'a PointCloud2) -> Self {
        RawCloudView {
            header: &m.header,
            height: m.height,
            width: m.width,
            fields: &m.fields,
            is_bigendian: m.is_bigendian,
            point_step: m.point_step,
            row_step: m.row_step,
            data: &m.data,
        }
    }
}

/// Result of a conversion: the finite points and how many were skipped.
#[derive(Clone, Debug, PartialEq)]
pub struct CloudConversion {
    pub points: Points,
    /// Points skipped for a NaN/Inf coordinate or intensity.
    pub skipped_nonfinite: usize,
}

fn find_field(
    fields: &[PointField],
    names: &[&str],
    point_step: usize,
    float_only: bool,
) -> Result<Option<FieldSpec>, ConvertError> {
    let Some((idx, f)) = fields.iter().enumerate().find(|(_, f)| names.contains(&f.name.as_str())) else {
        return Ok(None);
    };
    let field = format!("fields[{idx}] ({})", f.name);
    let size = datatype::size(f.datatype).ok_or_else(|| {
        ConvertError::new(format!("{field}.datatype"), format!("unknown PointField datatype {}", f.datatype))
    })?;
    if float_only && !matches!(f.datatype, datatype::FLOAT32 | datatype::FLOAT64) {
        return Err(ConvertError::new(
            format!("{field}.datatype"),
            format!("coordinates must be float32 or float64, not {}", datatype::name(f.datatype)),
        ));
    }
    let offset = f.offset as usize;
    let end = offset.checked_add(size).filter(|&e| e <= point_step).ok_or_else(|| {
        ConvertError::new(
            "point_step",
            format!(
                "point_step {point_step} is smaller than field `{}` needs (offset {offset} + {size} bytes of {})",
                f.name,
                datatype::name(f.datatype)
            ),
        )
    })?;
    let _ = end;
    Ok(Some(FieldSpec { offset, datatype: f.datatype }))
}

/// Validate a cloud's layout without reading its points. `capacity` is the largest number of
/// points accepted.
pub fn cloud_layout(msg: &RawCloudView, capacity: usize) -> Result<CloudLayout, ConvertError> {
    let point_step = msg.point_step as usize;
    let width = msg.width as usize;
    let height = msg.height as usize;
    let n = width
        .checked_mul(height)
        .ok_or_else(|| ConvertError::new("width", format!("width {width} x height {height} overflows")))?;
    if n > capacity {
        return Err(ConvertError::new(
            "width",
            format!("cloud has {n} points (width {width} x height {height}), more than the capacity of {capacity}"),
        ));
    }
    let need = |names: &[&str], what: &str| -> Result<FieldSpec, ConvertError> {
        find_field(msg.fields, names, point_step, true)?.ok_or_else(|| {
            let have: Vec<_> = msg.fields.iter().map(|f| f.name.as_str()).collect();
            ConvertError::new("fields", format!("no `{what}` field (fields: [{}])", have.join(", ")))
        })
    };
    let x = need(&["x"], "x")?;
    let y = need(&["y"], "y")?;
    let z = need(&["z"], "z")?;
    let intensity = find_field(msg.fields, &["intensity", "i"], point_step, false)?;
    let ring = find_field(msg.fields, &["ring"], point_step, false)?;
    let row_bytes =
        width.checked_mul(point_step).ok_or_else(|| ConvertError::new("row_step", "width x point_step overflows"))?;
    let row_step = msg.row_step as usize;
    if row_step < row_bytes {
        return Err(ConvertError::new(
            "row_step",
            format!("row_step {row_step} is smaller than width {width} x point_step {point_step} = {row_bytes}"),
        ));
    }
    let total =
        row_step.checked_mul(height).ok_or_else(|| ConvertError::new("row_step", "row_step x height overflows"))?;
    if msg.data.len() != total {
        let what = if msg.data.len() < total { "truncated" } else { "too long" };
        return Err(ConvertError::new(
            "data",
            format!(
                "{what}: {} bytes, but row_step {row_step} x height {height} = {total} (width {width}, point_step {point_step})",
                msg.data.len()
            ),
        ));
    }
    Ok(CloudLayout { x, y, z, intensity, ring, width, height, point_step, row_step, big_endian: msg.is_bigendian })
}

/// Write field `spec` of every point into column `col` of `out` (`POINT_DIMS` floats per
/// point, point `k` at row `k`), as f32; an absent field leaves the column as it is (zeros:
/// the output starts zeroed). One tight loop per datatype and byte order, so nothing is
/// decided per point.
fn fill_column(data: &[u8], l: &CloudLayout, spec: Option<FieldSpec>, col: usize, out: &mut [f32]) {
    let Some(spec) = spec else {
        return;
    };
    let rows = (0..l.height).map(|r| &data[r * l.row_step..r * l.row_step + l.width * l.point_step]);
    let points = rows.flat_map(|row| row.chunks_exact(l.point_step));
    macro_rules! col {
        ($t:ty, $n:literal) => {{
            let o = spec.offset;
            let get = |p: &[u8]| -> [u8; $n] { p[o..o + $n].try_into().expect("size checked") };
            let dst = out.chunks_exact_mut(POINT_DIMS).map(|row| &mut row[col]);
            if l.big_endian {
                points.zip(dst).for_each(|(p, d)| *d = <$t>::from_be_bytes(get(p)) as f32);
            } else {
                points.zip(dst).for_each(|(p, d)| *d = <$t>::from_le_bytes(get(p)) as f32);
            }
        }};
    }
    match spec.datatype {
        datatype::INT8 => col!(i8, 1),
        datatype::UINT8 => col!(u8, 1),
        datatype::INT16 => col!(i16, 2),
        datatype::UINT16 => col!(u16, 2),
        datatype::INT32 => col!(i32, 4),
        datatype::UINT32 => col!(u32, 4),
        datatype::FLOAT32 => col!(f32, 4),
        datatype::FLOAT64 => col!(f64, 8),
        _ => unreachable!("datatype validated by cloud_layout"),
    }
}

/// Columns x, y, z of `out` from little-endian float32 fields, in one pass.
fn fill_xyz_f32_le(data: &[u8], l: &CloudLayout, out: &mut [f32]) {
    let offsets = [l.x.offset, l.y.offset, l.z.offset];
    let rows = (0..l.height).map(|r| &data[r * l.row_step..r * l.row_step + l.width * l.point_step]);
    for (p, dst) in rows.flat_map(|row| row.chunks_exact(l.point_step)).zip(out.chunks_exact_mut(POINT_DIMS)) {
        for (d, o) in dst.iter_mut().zip(offsets) {
            *d = f32::from_le_bytes(p[o..o + 4].try_into().expect("size checked"));
        }
    }
}

/// Convert a cloud to points; see the module documentation for what is accepted. Each field
/// is read straight into its column of the output; points with a NaN/Inf value are then
/// squeezed out in place (nothing moves when there are none).
pub fn pointcloud_to_points<'a>(
    msg: impl Into<RawCloudView<'a>>,
    capacity: usize,
) -> Result<CloudConversion, ConvertError> {
    let msg = msg.into();
    let l = cloud_layout(&msg, capacity)?;
    let n = l.num_points();
    let mut data = vec![0f32; n * POINT_DIMS];
    let xyz_f32_le = !l.big_endian && [l.x, l.y, l.z].iter().all(|f| f.datatype == datatype::FLOAT32);
    if xyz_f32_le {
        // the usual layout: x, y, z in one pass
        fill_xyz_f32_le(msg.data, &l, &mut data);
    } else {
        for (col, spec) in [l.x, l.y, l.z].into_iter().enumerate() {
            fill_column(msg.data, &l, Some(spec), col, &mut data);
        }
    }
    fill_column(msg.data, &l, l.intensity, 3, &mut data);
    fill_column(msg.data, &l, l.ring, 4, &mut data);
    // `fold` rather than `all`: no early exit, so the check compiles to straight-line code.
    let finite = |k: usize, data: &[f32]| data[k * POINT_DIMS..k * POINT_DIMS + 4].iter().fold(true, |a, v| a & v.is_finite());
    let mut kept = 0;
    for k in 0..n {
        if finite(k, &data) {
            if kept != k {
                data.copy_within(k * POINT_DIMS..(k + 1) * POINT_DIMS, kept * POINT_DIMS);
            }
            kept += 1;
        }
    }
    data.truncate(kept * POINT_DIMS);
    Ok(CloudConversion { points: Points { data }, skipped_nonfinite: n - kept })
}

/// Bytes per point of the clouds [`points_to_pointcloud`] writes.
pub const WRITTEN_POINT_STEP: usize = 20;

/// A dense, little-endian cloud with float32 `x`, `y`, `z`, `intensity` and uint16 `ring`
/// ([`WRITTEN_POINT_STEP`] bytes a point, `height` 1). Rings are rounded to the nearest integer.
pub fn points_to_pointcloud(points: &Points, header: r2r::std_msgs::msg::Header) -> PointCloud2 {
    let n = points.len();
    let mut data = Vec::with_capacity(n * WRITTEN_POINT_STEP);
    for p in points.iter() {
        for v in &p[..4] {
            data.extend_from_slice(&v.to_le_bytes());
        }
        data.extend_from_slice(&(p[4].round().clamp(0.0, u16::MAX as f32) as u16).to_le_bytes());
        data.extend_from_slice(&[0, 0]);
    }
    let field = |name: &str, offset: u32, dt: u8| PointField { name: name.into(), offset, datatype: dt, count: 1 };
    PointCloud2 {
        header,
        height: 1,
        width: n as u32,
        fields: vec![
            field("x", 0, datatype::FLOAT32),
            field("y", 4, datatype::FLOAT32),
            field("z", 8, datatype::FLOAT32),
            field("intensity", 12, datatype::FLOAT32),
            field("ring", 16, datatype::UINT16),
        ],
        is_bigendian: false,
        point_step: WRITTEN_POINT_STEP as u32,
        row_step: (WRITTEN_POINT_STEP * n) as u32,
        data,
        is_dense: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts() -> Points {
        Points { data: vec![1.0, 2.0, 3.0, 40.0, 5.0, -1.5, 0.25, 1e3, 0.0, 31.0] }
    }

    #[test]
    fn round_trip_is_exact() {
        let msg = points_to_pointcloud(&pts(), Default::default());
        let c = pointcloud_to_points(&msg, 100).unwrap();
        assert_eq!(c.points, pts());
        assert_eq!(c.skipped_nonfinite, 0);
    }

    /// Build a cloud with arbitrary field layout: (name, offset, datatype) and a writer per point.
    fn custom(
        fields: &[(&str, u32, u8)],
        step: usize,
        rows: &[Vec<f64>],
        be: bool,
        pad: usize,
        height: usize,
    ) -> PointCloud2 {
        let width = rows.len() / height;
        let row_step = width * step + pad;
        let mut data = vec![0u8; row_step * height];
        for (k, vals) in rows.iter().enumerate() {
            let (r, c) = (k / width, k % width);
            let base = r * row_step + c * step;
            for ((_, off, dt), v) in fields.iter().zip(vals) {
                let o = base + *off as usize;
                macro_rules! put {
                    ($t:ty) => {{
                        let b = if be { (*v as $t).to_be_bytes() } else { (*v as $t).to_le_bytes() };
                        data[o..o + b.len()].copy_from_slice(&b);
                    }};
                }
                match *dt {
                    datatype::INT8 => put!(i8),
                    datatype::UINT8 => put!(u8),
                    datatype::INT16 => put!(i16),
                    datatype::UINT16 => put!(u16),
                    datatype::INT32 => put!(i32),
                    datatype::UINT32 => put!(u32),
                    datatype::FLOAT32 => put!(f32),
                    datatype::FLOAT64 => put!(f64),
                    _ => unreachable!(),
                }
            }
        }
        PointCloud2 {
            header: Default::default(),
            height: height as u32,
            width: width as u32,
            fields: fields
                .iter()
                .map(|(n, o, d)| PointField { name: n.to_string(), offset: *o, datatype: *d, count: 1 })
                .collect(),
            is_bigendian: be,
            point_step: step as u32,
            row_step: row_step as u32,
            data,
            is_dense: false,
        }
    }

    #[test]
    fn any_field_order_float64_big_endian_padding_and_integer_intensity() {
        use datatype::*;
        let fields =
            [("intensity", 0, UINT8), ("z", 4, FLOAT64), ("ring", 12, UINT16), ("x", 16, FLOAT64), ("y", 24, FLOAT32)];
        let rows = vec![vec![200.0, 3.0, 7.0, 1.0, 2.0], vec![5.0, -1.0, 2.0, 0.5, -0.25]];
        for be in [false, true] {
            let msg = custom(&fields, 32, &rows, be, 8, 2);
            let c = pointcloud_to_points(&msg, 10).unwrap();
            assert_eq!(c.points.data, vec![1.0, 2.0, 3.0, 200.0, 7.0, 0.5, -0.25, -1.0, 5.0, 2.0], "be={be}");
        }
    }

    #[test]
    fn float32_xyz_in_any_order_reads_the_same_in_both_byte_orders() {
        // little-endian float32 x/y/z take the one-pass path, big-endian the per-field one
        use datatype::*;
        let fields = [("y", 0, FLOAT32), ("ring", 4, UINT16), ("z", 8, FLOAT32), ("x", 12, FLOAT32), ("i", 16, INT16)];
        let rows: Vec<Vec<f64>> = (0..6)
            .map(|k| {
                let k = k as f64;
                vec![k * 0.5 - 1.0, k, if k == 3.0 { f64::NAN } else { 2.0 - k }, k * 1.25, -k * 3.0]
            })
            .collect();
        let le = pointcloud_to_points(&custom(&fields, 20, &rows, false, 4, 2), 100).unwrap();
        let be = pointcloud_to_points(&custom(&fields, 20, &rows, true, 4, 2), 100).unwrap();
        assert_eq!(le, be);
        assert_eq!(le.skipped_nonfinite, 1);
        assert_eq!(&le.points.data[..5], &[0.0, -1.0, 2.0, 0.0, 0.0]);
        assert_eq!(&le.points.data[15..20], &[5.0, 1.0, -2.0, -12.0, 4.0]);
    }

    #[test]
    fn intensity_absent_is_zero_and_nonfinite_points_are_skipped() {
        use datatype::*;
        let fields = [("x", 0, FLOAT32), ("y", 4, FLOAT32), ("z", 8, FLOAT32)];
        let rows =
            vec![vec![1.0, 2.0, 3.0], vec![f64::NAN, 0.0, 0.0], vec![0.0, f64::INFINITY, 0.0], vec![4.0, 5.0, 6.0]];
        let msg = custom(&fields, 12, &rows, false, 0, 1);
        let c = pointcloud_to_points(&msg, 10).unwrap();
        assert_eq!(c.points.data, vec![1.0, 2.0, 3.0, 0.0, 0.0, 4.0, 5.0, 6.0, 0.0, 0.0]);
        assert_eq!(c.skipped_nonfinite, 2);
    }

    fn err(msg: &PointCloud2) -> ConvertError {
        pointcloud_to_points(msg, 1000).unwrap_err()
    }

    #[test]
    fn malformed_layouts_are_named() {
        let good = points_to_pointcloud(&pts(), Default::default());
        let mut m = good.clone();
        m.data.truncate(m.data.len() - 3);
        let e = err(&m);
        assert_eq!(e.field, "data");
        assert!(e.message.contains("truncated"), "{e}");

        let mut m = good.clone();
        m.point_step = 8;
        m.row_step = 16;
        let e = err(&m);
        assert_eq!(e.field, "point_step");
        assert!(e.message.contains("`z`") || e.message.contains("`x`"), "{e}");

        let mut m = good.clone();
        m.width = 3;
        let e = err(&m);
        assert_eq!(e.field, "row_step", "{e}");

        let mut m = good.clone();
        m.height = 2;
        assert_eq!(err(&m).field, "data");

        let mut m = good.clone();
        m.fields.retain(|f| f.name != "y");
        let e = err(&m);
        assert_eq!(e.field, "fields");
        assert!(e.message.contains("`y`"), "{e}");

        let mut m = good.clone();
        m.fields[0].datatype = datatype::INT16;
        assert!(err(&m).message.contains("float32 or float64"));

        let mut m = good.clone();
        m.fields[3].datatype = 42;
        let e = err(&m);
        assert!(e.field.contains("intensity") && e.message.contains("unknown"), "{e}");

        let mut m = good.clone();
        m.fields[4].offset = 19;
        assert_eq!(err(&m).field, "point_step");

        let e = pointcloud_to_points(&good, 1).unwrap_err();
        assert!(e.message.contains("capacity"), "{e}");

        let mut m = good;
        m.width = u32::MAX;
        m.height = u32::MAX;
        assert!(pointcloud_to_points(&m, usize::MAX).is_err());
    }

    #[test]
    fn empty_cloud_is_valid_and_empty() {
        let msg = points_to_pointcloud(&Points::default(), Default::default());
        let c = pointcloud_to_points(&msg, 10).unwrap();
        assert!(c.points.is_empty());
    }
}
