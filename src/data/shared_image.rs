//! A camera image shared without copying, whoever owns its bytes.
//!
//! A frame, the pipeline's input and the node's newest-image store hold the same pixels (a
//! 1600x900 image is 4.3 MB). The bytes are either a `Vec` (decoded files, the synthetic
//! world, converted messages) or a buffer someone else owns, kept alive as long as the image:
//! the ROS node's raw `rgb8` images keep the middleware's own message, so the pixels are
//! copied once on their way in (by the middleware) instead of twice.

use image::{ImageBuffer, Rgb, RgbImage};
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// Bytes that somebody else allocated and that live as long as this value (read-only).
/// `bytes` must return the same bytes on every call: an image checks their length once, when
/// it is made ([`share_external`]).
pub trait ExternalBytes: Send + Sync {
    fn bytes(&self) -> &[u8];
}

/// The storage of an [`RgbPixels`] image.
#[derive(Clone)]
pub enum PixelBytes {
    Owned(Vec<u8>),
    External(Arc<dyn ExternalBytes>),
}

impl Deref for PixelBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            PixelBytes::Owned(v) => v,
            PixelBytes::External(e) => e.bytes(),
        }
    }
}

impl AsRef<[u8]> for PixelBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl<'a> IntoIterator for &'a PixelBytes {
    type Item = &'a u8;
    type IntoIter = std::slice::Iter<'a, u8>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl PartialEq for PixelBytes {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl fmt::Debug for PixelBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            PixelBytes::Owned(_) => "owned",
            PixelBytes::External(_) => "external",
        };
        write!(f, "PixelBytes({kind}, {} bytes)", self.len())
    }
}

/// An RGB image (8 bits a channel, rows packed) over [`PixelBytes`]. All of `image`'s
/// read-only API works on it (`dimensions`, `get_pixel`, `as_raw`, encoders, `imageops`).
pub type RgbPixels = ImageBuffer<Rgb<u8>, PixelBytes>;

/// A camera image shared without copying.
pub type SharedImage = Arc<RgbPixels>;

/// Share an owned image (its buffer moves, nothing is copied).
pub fn share(img: RgbImage) -> SharedImage {
    let (w, h) = img.dimensions();
    Arc::new(RgbPixels::from_raw(w, h, PixelBytes::Owned(img.into_raw())).expect("an RgbImage's buffer fits its size"))
}

/// Share `width` x `height` packed RGB pixels that `bytes` owns; None unless it holds
/// exactly `width * height * 3` bytes.
pub fn share_external(width: u32, height: u32, bytes: Arc<dyn ExternalBytes>) -> Option<SharedImage> {
    let want = (width as usize).checked_mul(height as usize)?.checked_mul(3)?;
    if bytes.bytes().len() != want {
        return None;
    }
    RgbPixels::from_raw(width, height, PixelBytes::External(bytes)).map(Arc::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Held(Vec<u8>);
    impl ExternalBytes for Held {
        fn bytes(&self) -> &[u8] {
            &self.0
        }
    }

    #[test]
    fn owned_and_external_images_read_alike_without_copies() {
        let img = RgbImage::from_fn(4, 3, |x, y| Rgb([x as u8, y as u8, 9]));
        let copy = img.clone();
        let ptr = copy.as_raw().as_ptr();
        let owned = share(copy);
        assert_eq!(owned.as_raw().as_ptr(), ptr, "sharing moves the buffer");
        let held = Arc::new(Held(img.as_raw().clone()));
        let held_ptr = held.0.as_ptr();
        let external = share_external(4, 3, held).expect("4 x 3 x 3 bytes");
        assert_eq!(external.as_raw().as_ptr(), held_ptr, "the external buffer is the image");
        assert_eq!(*owned, *external);
        assert_eq!(external.get_pixel(3, 2).0, [3, 2, 9]);
        assert_eq!(external.dimensions(), (4, 3));
        assert!(share_external(4, 4, Arc::new(Held(vec![0; 36]))).is_none(), "wrong size is refused");
        assert!(format!("{:?}", external.as_raw()).contains("external, 36 bytes"));
    }
}
