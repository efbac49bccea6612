//! A camera image shared without copying, whoever owns its bytes.
//!
//! A frame, the pipeline's input and the node's newest-image store hold the same pixels (a
//! 1600x900 image is 4.3 MB). The bytes are either a `Vec` (decoded files, the synthetic
//! world, converted messages) or a buffer someone else owns, kept alive as long as the image:
//! the ROS node's raw images keep the middleware's own message, so the pixels are copied once
//! on their way in (by the middleware) instead of twice.
//!
//! An image is stored in the layout it arrived in ([`PixelLayout`]: a camera driver's `bgr8`
//! stays `bgr8`). The model's input is resized straight from the stored bytes; anything that
//! reads the image as RGB converts it then, once.

use super::pixel_layout::{convert_to_rgb, PixelLayout};
use image::{ImageBuffer, Rgb, RgbImage};
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

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
pub type SharedImage = Arc<StoredImage>;

/// A camera image as it is stored: packed rows of any [`PixelLayout`], as they arrived.
/// It reads as an [`RgbPixels`] (`Deref`): an image stored in another layout is converted on
/// first use, once, and the RGB copy kept. Its size ([`Self::dimensions`]) and its stored
/// bytes ([`Self::stored`]) never convert: the model's input is built from the stored bytes.
pub struct StoredImage {
    storage: Storage,
}

enum Storage {
    Rgb(RgbPixels),
    Other { width: u32, height: u32, layout: PixelLayout, bytes: PixelBytes, rgb: OnceLock<RgbPixels> },
}

impl StoredImage {
    pub fn dimensions(&self) -> (u32, u32) {
        match &self.storage {
            Storage::Rgb(img) => img.dimensions(),
            Storage::Other { width, height, .. } => (*width, *height),
        }
    }

    pub fn width(&self) -> u32 {
        self.dimensions().0
    }

    pub fn height(&self) -> u32 {
        self.dimensions().1
    }

    /// The layout of the stored bytes.
    pub fn layout(&self) -> PixelLayout {
        self.stored().0
    }

    /// The stored bytes (packed rows of [`Self::layout`]) and their layout.
    pub fn stored(&self) -> (PixelLayout, &[u8]) {
        match &self.storage {
            Storage::Rgb(img) => (PixelLayout::Rgb8, img.as_raw()),
            Storage::Other { layout, bytes, .. } => (*layout, bytes),
        }
    }

    /// The image in RGB (converted on the first call when stored in another layout).
    pub fn rgb(&self) -> &RgbPixels {
        match &self.storage {
            Storage::Rgb(img) => img,
            Storage::Other { width, height, layout, bytes, rgb } => rgb.get_or_init(|| {
                let (w, h) = (*width as usize, *height as usize);
                let mut out = vec![0u8; w * h * 3];
                convert_to_rgb(*layout, w, w * layout.channels(), bytes, &mut out);
                RgbPixels::from_raw(*width, *height, PixelBytes::Owned(out)).expect("sized for width x height RGB")
            }),
        }
    }

    /// Whether the RGB image exists already (stored as RGB, or converted since).
    pub fn has_rgb(&self) -> bool {
        match &self.storage {
            Storage::Rgb(_) => true,
            Storage::Other { rgb, .. } => rgb.get().is_some(),
        }
    }
}

impl Deref for StoredImage {
    type Target = RgbPixels;
    fn deref(&self) -> &RgbPixels {
        self.rgb()
    }
}

/// Two images are equal when their RGB pixels are (whatever layout they are stored in).
impl PartialEq for StoredImage {
    fn eq(&self, other: &Self) -> bool {
        self.dimensions() == other.dimensions() && (self.stored() == other.stored() || self.rgb() == other.rgb())
    }
}

impl fmt::Debug for StoredImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (w, h) = self.dimensions();
        let (layout, bytes) = self.stored();
        let owner = match &self.storage {
            Storage::Rgb(img) => img.as_raw(),
            Storage::Other { bytes, .. } => bytes,
        };
        let owner = match owner {
            PixelBytes::Owned(_) => "owned",
            PixelBytes::External(_) => "external",
        };
        write!(f, "StoredImage({w}x{h} {}, {owner}, {} bytes)", layout.encoding(), bytes.len())
    }
}

/// Share an owned RGB image (its buffer moves, nothing is copied).
pub fn share(img: RgbImage) -> SharedImage {
    let (w, h) = img.dimensions();
    let rgb = RgbPixels::from_raw(w, h, PixelBytes::Owned(img.into_raw())).expect("an RgbImage's buffer fits its size");
    Arc::new(StoredImage { storage: Storage::Rgb(rgb) })
}

/// Share `width` x `height` pixels of `layout` (packed rows) that `bytes` owns; None unless
/// it holds exactly `width * height * layout.channels()` bytes.
pub fn share_external(width: u32, height: u32, layout: PixelLayout, bytes: Arc<dyn ExternalBytes>) -> Option<SharedImage> {
    share_bytes(width, height, layout, PixelBytes::External(bytes))
}

/// Share `width` x `height` pixels of `layout` (packed rows) in `bytes` (moved, not copied);
/// None unless it holds exactly `width * height * layout.channels()` bytes.
pub fn share_bytes(width: u32, height: u32, layout: PixelLayout, bytes: PixelBytes) -> Option<SharedImage> {
    let want = (width as usize).checked_mul(height as usize)?.checked_mul(layout.channels())?;
    if bytes.len() != want {
        return None;
    }
    let storage = match layout {
        PixelLayout::Rgb8 => Storage::Rgb(RgbPixels::from_raw(width, height, bytes)?),
        _ => Storage::Other { width, height, layout, bytes, rgb: OnceLock::new() },
    };
    Some(Arc::new(StoredImage { storage }))
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
        let external = share_external(4, 3, PixelLayout::Rgb8, held).expect("4 x 3 x 3 bytes");
        assert_eq!(external.as_raw().as_ptr(), held_ptr, "the external buffer is the image");
        assert_eq!(*owned, *external);
        assert_eq!(external.get_pixel(3, 2).0, [3, 2, 9]);
        assert_eq!(external.dimensions(), (4, 3));
        assert!(share_external(4, 4, PixelLayout::Rgb8, Arc::new(Held(vec![0; 36]))).is_none(), "wrong size is refused");
        assert!(format!("{:?}", external.as_raw()).contains("external, 36 bytes"));
    }

    #[test]
    fn an_image_in_another_layout_reads_as_rgb_converted_once() {
        use crate::data::pixel_layout::tests::encode;
        let img = RgbImage::from_fn(5, 3, |x, y| Rgb([x as u8 * 40, y as u8 * 70, 200 - x as u8]));
        let rgb = share(img.clone());
        for layout in PixelLayout::ALL {
            let (bytes, _) = encode(&img, layout, 0);
            let ptr = bytes.as_ptr();
            let stored = share_bytes(5, 3, layout, PixelBytes::Owned(bytes)).expect("5 x 3 pixels");
            assert_eq!(stored.dimensions(), (5, 3));
            assert_eq!(stored.layout(), layout);
            assert_eq!(stored.stored().1.as_ptr(), ptr, "{layout:?}: the bytes are kept as they came");
            assert_eq!(stored.has_rgb(), layout == PixelLayout::Rgb8, "{layout:?}: size and bytes do not convert");
            if layout == PixelLayout::Mono8 {
                assert_eq!(stored.get_pixel(4, 2).0, [140, 140, 140], "grey is the green channel here");
                continue;
            }
            assert_eq!(*stored, *rgb, "{layout:?}");
            assert!(stored.has_rgb());
            let first = stored.as_raw().as_ptr();
            assert_eq!(stored.get_pixel(4, 2).0, [160, 140, 196]);
            assert_eq!(stored.as_raw().as_ptr(), first, "{layout:?}: converted once");
            assert!(format!("{stored:?}").contains(layout.encoding()));
        }
        assert!(share_bytes(5, 3, PixelLayout::Bgra8, PixelBytes::Owned(vec![0; 45])).is_none(), "3 bytes a pixel is not bgra8");
    }
}
