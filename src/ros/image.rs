//! `sensor_msgs/Image` and `sensor_msgs/CompressedImage` <-> `image::RgbImage`.
//!
//! Raw images: encodings `rgb8`, `bgr8`, `rgba8`, `bgra8` and `mono8`; `step` must hold a row
//! (`step >= width * channels`, padding allowed) and `data` must be exactly `step * height`
//! bytes. Compressed images: JPEG or PNG (named in `format`, as image_transport writes it,
//! e.g. `bgr8; jpeg compressed bgr8`, or detected from the bytes), decoded with the `image`
//! crate (colour conversion to RGB included).

use super::convert::ConvertError;
use crate::data::pixel_layout::{convert_to_rgb, PixelLayout};
use image::RgbImage;
use r2r::sensor_msgs::msg::{CompressedImage, Image};

/// A raw image's fields, wherever its bytes live: an r2r [`Image`], or the middleware's own
/// C message ([`super::native_image::NativeImage`]).
#[derive(Clone, Copy, Debug)]
pub struct RawImageView<'a> {
    pub width: u32,
    pub height: u32,
    pub step: u32,
    pub encoding: &'a str,
    pub data: &'a [u8],
}

impl<'a> From<&'a Image> for RawImageView<'a> {
    fn from(msg: &'a Image) -> Self {
        RawImageView { width: msg.width, height: msg.height, step: msg.step, encoding: &msg.encoding, data: &msg.data }
    }
}

impl RawImageView<'_> {
    /// The layout of a valid image without row padding: its bytes can be taken as they are
    /// ([`crate::data::share_bytes`]). None for an invalid or padded image.
    pub fn packed_layout(&self) -> Option<PixelLayout> {
        check_image(*self).ok().filter(|l| self.step as usize == self.width as usize * l.channels())
    }

    /// [`check_image`], then the size.
    pub fn checked_size(self) -> Result<(u32, u32), ConvertError> {
        check_image(self).map(|_| (self.width, self.height))
    }
}

/// Check a raw image's geometry without converting it; the layout of its encoding.
pub fn check_image<'a>(msg: impl Into<RawImageView<'a>>) -> Result<PixelLayout, ConvertError> {
    let msg = msg.into();
    let layout = PixelLayout::from_encoding(msg.encoding).ok_or_else(|| {
        ConvertError::new(
            "encoding",
            format!("unsupported encoding `{}` (supported: rgb8, bgr8, rgba8, bgra8, mono8)", msg.encoding),
        )
    })?;
    let ch = layout.channels();
    if msg.width == 0 || msg.height == 0 {
        return Err(ConvertError::new("width", format!("zero-size image {}x{}", msg.width, msg.height)));
    }
    let (w, h, step) = (msg.width as usize, msg.height as usize, msg.step as usize);
    let row = w.checked_mul(ch).ok_or_else(|| ConvertError::new("width", "width x channels overflows"))?;
    if step < row {
        return Err(ConvertError::new(
            "step",
            format!("step {step} is smaller than width {w} x {ch} bytes ({}) = {row}", msg.encoding),
        ));
    }
    let total = step.checked_mul(h).ok_or_else(|| ConvertError::new("step", "step x height overflows"))?;
    if msg.data.len() != total {
        let what = if msg.data.len() < total { "truncated" } else { "too long" };
        return Err(ConvertError::new(
            "data",
            format!("{what}: {} bytes, but step {step} x height {h} = {total}", msg.data.len()),
        ));
    }
    Ok(layout)
}

/// Convert a raw image to RGB.
pub fn image_to_rgb<'a>(msg: impl Into<RawImageView<'a>>) -> Result<RgbImage, ConvertError> {
    let msg = msg.into();
    let layout = check_image(msg)?;
    let mut out = vec![0u8; msg.width as usize * msg.height as usize * 3];
    convert_to_rgb(layout, msg.width as usize, msg.step as usize, msg.data, &mut out);
    Ok(RgbImage::from_raw(msg.width, msg.height, out).expect("buffer size matches"))
}

/// Compressed formats we decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompressedFormat {
    Jpeg,
    Png,
}

impl CompressedFormat {
    fn image_format(self) -> image::ImageFormat {
        match self {
            CompressedFormat::Jpeg => image::ImageFormat::Jpeg,
            CompressedFormat::Png => image::ImageFormat::Png,
        }
    }
    /// The `format` string image_transport's compressed publisher writes for an RGB image.
    pub fn ros_format(self) -> &'static str {
        match self {
            CompressedFormat::Jpeg => "rgb8; jpeg compressed bgr8",
            CompressedFormat::Png => "rgb8; png compressed bgr8",
        }
    }
}

/// The compression named in a `format` string, or guessed from the bytes when the string
/// is empty.
pub fn compressed_format(msg: &CompressedImage) -> Result<CompressedFormat, ConvertError> {
    let f = msg.format.to_ascii_lowercase();
    if msg.data.is_empty() {
        return Err(ConvertError::new("data", "empty compressed image"));
    }
    if f.contains("jpeg") || f.contains("jpg") {
        Ok(CompressedFormat::Jpeg)
    } else if f.contains("png") {
        Ok(CompressedFormat::Png)
    } else if f.trim().is_empty() {
        match image::guess_format(&msg.data) {
            Ok(image::ImageFormat::Jpeg) => Ok(CompressedFormat::Jpeg),
            Ok(image::ImageFormat::Png) => Ok(CompressedFormat::Png),
            _ => Err(ConvertError::new("format", "empty format and the data is neither JPEG nor PNG")),
        }
    } else {
        Err(ConvertError::new(
            "format",
            format!("unsupported compressed format `{}` (supported: jpeg, png)", msg.format),
        ))
    }
}

/// Image size read from the compressed header only (cheap), after checking the format.
pub fn compressed_dimensions(msg: &CompressedImage) -> Result<(u32, u32), ConvertError> {
    let fmt = compressed_format(msg)?;
    let reader = image::ImageReader::with_format(std::io::Cursor::new(&msg.data), fmt.image_format());
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| ConvertError::new("data", format!("cannot read the {fmt:?} header: {e}")))?;
    if w == 0 || h == 0 {
        return Err(ConvertError::new("data", format!("zero-size image {w}x{h}")));
    }
    Ok((w, h))
}

/// Decode a compressed image to RGB.
pub fn compressed_to_rgb(msg: &CompressedImage) -> Result<RgbImage, ConvertError> {
    let fmt = compressed_format(msg)?;
    let img = image::load_from_memory_with_format(&msg.data, fmt.image_format())
        .map_err(|e| ConvertError::new("data", format!("cannot decode {fmt:?}: {e}")))?;
    if img.width() == 0 || img.height() == 0 {
        return Err(ConvertError::new("data", "zero-size image"));
    }
    Ok(img.to_rgb8())
}

/// An `rgb8` raw image message.
pub fn rgb_to_image<C: std::ops::Deref<Target = [u8]>>(
    img: &image::ImageBuffer<image::Rgb<u8>, C>,
    header: r2r::std_msgs::msg::Header,
) -> Image {
    Image {
        header,
        height: img.height(),
        width: img.width(),
        encoding: "rgb8".into(),
        is_bigendian: 0,
        step: img.width() * 3,
        data: img.as_raw().to_vec(),
    }
}

/// A compressed image message (JPEG at `quality` 1..=100, or lossless PNG).
pub fn rgb_to_compressed<C: std::ops::Deref<Target = [u8]>>(
    img: &image::ImageBuffer<image::Rgb<u8>, C>,
    format: CompressedFormat,
    quality: u8,
    header: r2r::std_msgs::msg::Header,
) -> anyhow::Result<CompressedImage> {
    let mut data = Vec::new();
    match format {
        CompressedFormat::Jpeg => {
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut data, quality.clamp(1, 100)).encode_image(img)?
        }
        CompressedFormat::Png => img.write_to(&mut std::io::Cursor::new(&mut data), image::ImageFormat::Png)?,
    }
    Ok(CompressedImage { header, format: format.ros_format().into(), data })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RgbImage {
        RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 40, y as u8 * 70, 200 - x as u8 * 10]))
    }

    fn raw(enc: &str, pad: usize) -> Image {
        let layout = PixelLayout::from_encoding(enc).unwrap();
        let (data, step) = crate::data::pixel_layout::tests::encode(&sample(), layout, pad);
        Image {
            header: Default::default(),
            height: 3,
            width: 5,
            encoding: enc.into(),
            is_bigendian: 0,
            step: step as u32,
            data,
        }
    }

    #[test]
    fn every_encoding_converts_with_padding() {
        for enc in ["rgb8", "bgr8", "rgba8", "bgra8"] {
            for pad in [0, 3] {
                assert_eq!(image_to_rgb(&raw(enc, pad)).unwrap(), sample(), "{enc} pad {pad}");
            }
        }
        // `raw` writes grey as the green channel: 70 at row 1
        let mono = image_to_rgb(&raw("mono8", 1)).unwrap();
        assert_eq!(mono.get_pixel(2, 1).0, [70, 70, 70]);
    }

    #[test]
    fn rgb8_round_trip() {
        let m = rgb_to_image(&sample(), Default::default());
        assert_eq!(image_to_rgb(&m).unwrap(), sample());
    }

    #[test]
    fn png_is_lossless_and_jpeg_close() {
        let png = rgb_to_compressed(&sample(), CompressedFormat::Png, 90, Default::default()).unwrap();
        assert_eq!(compressed_to_rgb(&png).unwrap(), sample());
        assert_eq!(compressed_dimensions(&png).unwrap(), (5, 3));
        let big = RgbImage::from_pixel(32, 16, image::Rgb([10, 200, 30]));
        let jpg = rgb_to_compressed(&big, CompressedFormat::Jpeg, 95, Default::default()).unwrap();
        let back = compressed_to_rgb(&jpg).unwrap();
        let p = back.get_pixel(8, 8).0;
        assert!((p[0] as i32 - 10).abs() < 8 && (p[1] as i32 - 200).abs() < 8 && (p[2] as i32 - 30).abs() < 8, "{p:?}");
        let mut anon = jpg.clone();
        anon.format.clear();
        assert_eq!(compressed_format(&anon).unwrap(), CompressedFormat::Jpeg);
    }

    #[test]
    fn malformed_images_are_named() {
        let mut m = raw("rgb8", 0);
        m.encoding = "yuv422".into();
        assert_eq!(image_to_rgb(&m).unwrap_err().field, "encoding");
        let mut m = raw("rgb8", 0);
        m.encoding = "rgb16".into();
        assert!(image_to_rgb(&m).unwrap_err().message.contains("rgb16"));
        let mut m = raw("rgb8", 0);
        m.width = 0;
        assert!(image_to_rgb(&m).unwrap_err().message.contains("zero-size"));
        let mut m = raw("rgb8", 0);
        m.step = 14;
        assert_eq!(image_to_rgb(&m).unwrap_err().field, "step");
        let mut m = raw("rgb8", 0);
        m.data.pop();
        assert!(image_to_rgb(&m).unwrap_err().message.contains("truncated"));
        let c = CompressedImage { header: Default::default(), format: "jpeg".into(), data: vec![1, 2, 3, 4] };
        assert_eq!(compressed_to_rgb(&c).unwrap_err().field, "data");
        assert!(compressed_dimensions(&c).is_err());
        let c = CompressedImage { header: Default::default(), format: "webp".into(), data: vec![1] };
        assert_eq!(compressed_to_rgb(&c).unwrap_err().field, "format");
        let c = CompressedImage { header: Default::default(), format: "png".into(), data: vec![] };
        assert!(compressed_to_rgb(&c).unwrap_err().message.contains("empty"));
    }
}
