//! A `sensor_msgs/PointCloud2` read where the middleware delivered it.
//!
//! r2r's typed subscription copies every cloud twice: the middleware deserialises it into a
//! C message, then r2r copies that into the Rust `PointCloud2` (a fresh `Vec` of the whole
//! cloud: 8 MB for 260,000 points of a 128-beam LiDAR at 32 bytes a point) and frees the C
//! one. The node converts a cloud to points on its spin thread, as soon as it is taken, so it
//! subscribes with `subscribe_native` and reads the C message's bytes instead: each cloud is
//! copied once by the middleware, then read once into the points. Only the header and the
//! few `fields` are copied out.

use super::native_image::c_sequence;
use super::pointcloud::RawCloudView;
use r2r::sensor_msgs::msg::{PointCloud2, PointField};
use r2r::std_msgs::msg::Header;
use r2r::{NativeMsg as WrappedNativeMsg, WrappedTypesupport};

/// A cloud message in its C form, with its header and fields copied out. It is read where it
/// was taken and dropped there; a loaned message (the middleware's own memory, which Fast DDS
/// lends only for fixed-size types) goes back to the middleware when this is dropped, while
/// the subscription still exists.
pub struct NativeCloud {
    msg: WrappedNativeMsg<PointCloud2>,
    header: Header,
    fields: Vec<PointField>,
}

impl NativeCloud {
    pub fn new(msg: WrappedNativeMsg<PointCloud2>) -> NativeCloud {
        let header = Header::from_native(&msg.header);
        // SAFETY: the sequence belongs to `msg`, which is not written while it is read here
        let fields = unsafe { c_sequence(msg.fields.data, msg.fields.size) };
        let fields = fields.iter().map(PointField::from_native).collect();
        NativeCloud { msg, header, fields }
    }

    /// The cloud's fields; the point bytes are the C message's.
    pub fn view(&self) -> RawCloudView<'_> {
        let m = &self.msg;
        RawCloudView {
            header: &self.header,
            height: m.height,
            width: m.width,
            fields: &self.fields,
            is_bigendian: m.is_bigendian,
            point_step: m.point_step,
            row_step: m.row_step,
            // SAFETY: the message is owned by `self` and not written after `new`, so the bytes
            // live and stay unchanged as long as the returned borrow
            data: unsafe { c_sequence(m.data.data, m.data.size) },
        }
    }
}

impl<'a> From<&'a NativeCloud> for RawCloudView<'a> {
    fn from(c: &'a NativeCloud) -> Self {
        c.view()
    }
}

impl std::fmt::Debug for NativeCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.view();
        write!(f, "NativeCloud({}x{}, point_step {}, {} bytes)", v.width, v.height, v.point_step, v.data.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Points;
    use crate::ros::pointcloud::{datatype, points_to_pointcloud, pointcloud_to_points};

    fn native(msg: &PointCloud2) -> NativeCloud {
        // the same C message a native subscription delivers, filled by r2r instead of rmw
        NativeCloud::new(WrappedNativeMsg::<PointCloud2>::from(msg))
    }

    #[test]
    fn the_c_message_reads_as_the_r2r_one() {
        let points = Points { data: vec![1.0, 2.0, 3.0, 40.0, 5.0, -1.5, f32::NAN, 1e3, 0.0, 31.0, 7.0, 8.0, 9.0, 1.0, 2.0] };
        let mut msg = points_to_pointcloud(&points, crate::ros::convert::header(1_700_000_000_123_456_789, "lidar_top"));
        let n = native(&msg);
        let v = n.view();
        assert_eq!(v.header, &msg.header);
        assert_eq!(v.fields, &msg.fields[..]);
        assert_eq!((v.width, v.height, v.point_step, v.row_step, v.is_bigendian), (3, 1, 20, 60, false));
        assert_eq!(v.data, &msg.data[..]);
        assert_eq!(pointcloud_to_points(&n, 10).unwrap(), pointcloud_to_points(&msg, 10).unwrap());
        assert_eq!(pointcloud_to_points(&n, 10).unwrap().skipped_nonfinite, 1);
        // a layout error names the same field from either form
        msg.fields[2].datatype = datatype::INT16;
        msg.data.truncate(50);
        for e in [pointcloud_to_points(&native(&msg), 10).unwrap_err(), pointcloud_to_points(&msg, 10).unwrap_err()] {
            assert_eq!(e.field, "fields[2] (z).datatype", "{e}");
        }
        msg.fields[2].datatype = datatype::FLOAT32;
        assert_eq!(pointcloud_to_points(&native(&msg), 10).unwrap_err().field, "data");
        // an empty cloud with no fields: empty slices, not null pointers
        let empty = PointCloud2::default();
        let n = native(&empty);
        assert!(n.view().data.is_empty() && n.view().fields.is_empty());
        assert_eq!(pointcloud_to_points(&n, 10).unwrap_err().field, "fields");
    }
}
