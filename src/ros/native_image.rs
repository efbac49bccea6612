//! A raw `sensor_msgs/Image` kept as the middleware delivered it.
//!
//! r2r's typed subscription copies every message twice: the middleware deserialises it into
//! a C message, then r2r copies that into the Rust `Image` (a fresh 4.3 MB `Vec` for a
//! 1600x900 `rgb8` image, page faults included) and frees the C one. The node subscribes to
//! raw images with `subscribe_native` instead and keeps the C message: a packed `rgb8` image
//! *is* the pixels the pipeline reads ([`crate::data::share_external`]), and any other
//! encoding is converted straight from it. So each image is copied once, by the middleware.

use super::image::RawImageView;
use crate::data::ExternalBytes;
use r2r::sensor_msgs::msg::Image;
use r2r::std_msgs::msg::Header;
use r2r::{NativeMsg as WrappedNativeMsg, WrappedTypesupport};

/// An image message owned in its C form.
pub struct NativeImage {
    msg: WrappedNativeMsg<Image>,
    header: Header,
}

// SAFETY: `msg` is a message that r2r allocated with `sensor_msgs__msg__Image__create` and the
// middleware filled (`new` refuses loaned messages, whose return to the middleware is tied to
// the subscription); it is owned by this value alone and freed by its destroy function, which
// has no thread affinity. After `new`, it is only read, through `&self`.
unsafe impl Send for NativeImage {}
unsafe impl Sync for NativeImage {}

impl NativeImage {
    /// Take over a message from a native subscription. A loaned message (the middleware's
    /// zero-copy memory; Fast DDS lends only fixed-size types, which `Image` is not) is given
    /// back as an r2r copy instead, since it must be returned while the subscription exists.
    pub fn new(msg: WrappedNativeMsg<Image>) -> Result<NativeImage, Image> {
        if msg.is_loaned {
            return Err(Image::from_native(&msg));
        }
        let header = Header::from_native(&msg.header);
        Ok(NativeImage { msg, header })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The image's fields; the bytes are the C message's.
    pub fn view(&self) -> RawImageView<'_> {
        RawImageView {
            width: self.msg.width,
            height: self.msg.height,
            step: self.msg.step,
            encoding: if self.msg.encoding.data.is_null() { "" } else { self.msg.encoding.to_str() },
            data: self.bytes(),
        }
    }
}

impl ExternalBytes for NativeImage {
    fn bytes(&self) -> &[u8] {
        // SAFETY: the message is owned by `self` and not written after `new`, so the bytes
        // live and stay unchanged as long as the returned borrow.
        unsafe { c_sequence(self.msg.data.data, self.msg.data.size) }
    }
}

/// The elements of a rosidl C sequence (`data`, `size`) as a slice; empty when `data` is null.
///
/// # Safety
/// `data` must be null or point to `size` initialised elements that live, unchanged, for `'a`
/// (a sequence of a C message that the caller owns and does not write while the slice exists).
pub(super) unsafe fn c_sequence<'a, T>(data: *const T, size: usize) -> &'a [T] {
    if data.is_null() || size == 0 {
        return &[];
    }
    // SAFETY: as the caller promised
    unsafe { std::slice::from_raw_parts(data, size) }
}

impl std::fmt::Debug for NativeImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.view();
        write!(f, "NativeImage({}x{} {}, {} bytes)", v.width, v.height, v.encoding, v.data.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ros::image::{image_to_rgb, rgb_to_image};

    fn native(msg: &Image) -> NativeImage {
        // the same C message a native subscription delivers, filled by r2r instead of rmw
        NativeImage::new(WrappedNativeMsg::<Image>::from(msg)).expect("not loaned")
    }

    #[test]
    fn the_c_message_reads_as_the_r2r_one() {
        let img = image::RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8 * 30, y as u8 * 50, 3]));
        let mut msg = rgb_to_image(&img, crate::ros::convert::header(1_700_000_000_123_456_789, "cam_front"));
        let n = native(&msg);
        assert_eq!(n.header(), &msg.header);
        let v = n.view();
        assert_eq!((v.width, v.height, v.step, v.encoding), (7, 5, 21, "rgb8"));
        assert_eq!(v.data, &msg.data[..]);
        assert_eq!(v.packed_layout(), Some(crate::data::PixelLayout::Rgb8));
        assert_eq!(image_to_rgb(v).unwrap(), img);
        // other encodings and layouts are read as they are
        msg.encoding = "bgr8".into();
        msg.data.chunks_mut(3).for_each(|p| p.swap(0, 2));
        let n = native(&msg);
        assert_eq!(n.view().packed_layout(), Some(crate::data::PixelLayout::Bgr8));
        assert_eq!(image_to_rgb(n.view()).unwrap(), img);
        msg.data.clear();
        let n = native(&msg);
        assert_eq!(n.bytes(), &[] as &[u8]);
        assert_eq!(image_to_rgb(n.view()).unwrap_err().field, "data");
        // the image can go to another thread and be freed there
        let n = std::sync::Arc::new(native(&rgb_to_image(&img, Default::default())));
        let len = std::thread::spawn(move || n.bytes().len()).join().unwrap();
        assert_eq!(len, 7 * 5 * 3);
    }
}
