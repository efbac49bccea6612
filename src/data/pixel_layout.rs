//! The byte layouts of 8-bit camera images, and their conversion to RGB.
//!
//! Camera drivers send `bgr8` more often than `rgb8`, and some send four channels or grey.
//! An image is kept in the layout it arrived in ([`super::shared_image`]); the model's input
//! is resized straight from those bytes and picks its R, G and B at normalisation
//! ([`crate::model::batch`]), so nothing converts a whole camera image per frame. Whoever
//! needs RGB pixels (a bag writer, a render) gets them through [`convert_to_rgb`], once.

/// How one pixel is stored: channel order and count, one byte a channel, no padding within a
/// pixel. Names and byte orders are ROS's (`sensor_msgs/image_encodings.hpp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PixelLayout {
    Rgb8,
    Bgr8,
    Rgba8,
    Bgra8,
    Mono8,
}

impl PixelLayout {
    pub const ALL: [PixelLayout; 5] =
        [PixelLayout::Rgb8, PixelLayout::Bgr8, PixelLayout::Rgba8, PixelLayout::Bgra8, PixelLayout::Mono8];

    /// The layout of a ROS `encoding` string; None for any other encoding.
    pub fn from_encoding(encoding: &str) -> Option<PixelLayout> {
        PixelLayout::ALL.into_iter().find(|l| l.encoding() == encoding)
    }

    /// The ROS `encoding` string.
    pub fn encoding(self) -> &'static str {
        match self {
            PixelLayout::Rgb8 => "rgb8",
            PixelLayout::Bgr8 => "bgr8",
            PixelLayout::Rgba8 => "rgba8",
            PixelLayout::Bgra8 => "bgra8",
            PixelLayout::Mono8 => "mono8",
        }
    }

    /// Bytes per pixel.
    pub fn channels(self) -> usize {
        match self {
            PixelLayout::Rgb8 | PixelLayout::Bgr8 => 3,
            PixelLayout::Rgba8 | PixelLayout::Bgra8 => 4,
            PixelLayout::Mono8 => 1,
        }
    }

    /// For red, green and blue: the byte of a pixel that holds it (grey: the one byte).
    pub fn rgb_offsets(self) -> [usize; 3] {
        match self {
            PixelLayout::Rgb8 | PixelLayout::Rgba8 => [0, 1, 2],
            PixelLayout::Bgr8 | PixelLayout::Bgra8 => [2, 1, 0],
            PixelLayout::Mono8 => [0, 0, 0],
        }
    }
}

/// Convert `width` x `rows` pixels of `layout`, rows `step` bytes apart in `src` (`step >=
/// width * channels`; `src` holds every row), to packed RGB in `out` (`width * rows * 3`
/// bytes). Runs the loop compiled for AVX2 where the CPU has it (the compiler vectorises the
/// channel shuffles there: one 1600x900 `bgr8` image took 0.2-0.3 ms against 1.2 ms with the
/// x86-64 baseline's SSE2, in a micro-benchmark on the development VM).
pub fn convert_to_rgb(layout: PixelLayout, width: usize, step: usize, src: &[u8], out: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above)
        unsafe { convert_rows_avx2(layout, width, step, src, out) };
        return;
    }
    convert_rows(layout, width, step, src, out)
}

/// [`convert_rows`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn convert_rows_avx2(layout: PixelLayout, width: usize, step: usize, src: &[u8], out: &mut [u8]) {
    convert_rows(layout, width, step, src, out)
}

/// The conversion loop: pixel by pixel into a buffer of the final size, straight loops the
/// compiler can vectorise.
#[inline(always)]
fn convert_rows(layout: PixelLayout, width: usize, step: usize, src: &[u8], out: &mut [u8]) {
    let w = width;
    for (r, dst) in out.chunks_exact_mut(w * 3).enumerate() {
        let row = &src[r * step..];
        match layout {
            PixelLayout::Rgb8 => dst.copy_from_slice(&row[..w * 3]),
            PixelLayout::Bgr8 => dst.chunks_exact_mut(3).zip(row[..w * 3].chunks_exact(3)).for_each(|(d, p)| {
                d[0] = p[2];
                d[1] = p[1];
                d[2] = p[0];
            }),
            PixelLayout::Rgba8 => dst.chunks_exact_mut(3).zip(row[..w * 4].chunks_exact(4)).for_each(|(d, p)| {
                d[0] = p[0];
                d[1] = p[1];
                d[2] = p[2];
            }),
            PixelLayout::Bgra8 => dst.chunks_exact_mut(3).zip(row[..w * 4].chunks_exact(4)).for_each(|(d, p)| {
                d[0] = p[2];
                d[1] = p[1];
                d[2] = p[0];
            }),
            PixelLayout::Mono8 => dst.chunks_exact_mut(3).zip(&row[..w]).for_each(|(d, &v)| d.fill(v)),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use image::RgbImage;

    /// `img`'s pixels in `layout`, rows `pad` bytes longer than the pixels (alpha 1; grey =
    /// the green channel).
    pub(crate) fn encode(img: &RgbImage, layout: PixelLayout, pad: usize) -> (Vec<u8>, usize) {
        let ch = layout.channels();
        let step = img.width() as usize * ch + pad;
        let mut data = vec![0u8; step * img.height() as usize];
        for (x, y, p) in img.enumerate_pixels() {
            let [r, g, b] = p.0;
            let px: &[u8] = match layout {
                PixelLayout::Rgb8 => &[r, g, b],
                PixelLayout::Bgr8 => &[b, g, r],
                PixelLayout::Rgba8 => &[r, g, b, 1],
                PixelLayout::Bgra8 => &[b, g, r, 1],
                PixelLayout::Mono8 => &[g],
            };
            let o = y as usize * step + x as usize * ch;
            data[o..o + ch].copy_from_slice(px);
        }
        (data, step)
    }

    #[test]
    fn encodings_name_their_layouts() {
        for l in PixelLayout::ALL {
            assert_eq!(PixelLayout::from_encoding(l.encoding()), Some(l));
        }
        assert_eq!(PixelLayout::from_encoding("rgb16"), None);
        assert_eq!(PixelLayout::from_encoding("BGR8"), None, "ROS encodings are lower case");
    }

    #[test]
    fn the_baseline_and_the_avx2_conversions_agree() {
        // convert_to_rgb takes the AVX2 path where the CPU has it; the plain loop is what other
        // CPUs run: both must give the same pixels (odd width, padding, every layout)
        let big = RgbImage::from_fn(37, 5, |x, y| image::Rgb([(x * 7) as u8, (y * 40 + x) as u8, (255 - x) as u8]));
        for layout in PixelLayout::ALL {
            let (data, step) = encode(&big, layout, 2);
            let mut plain = vec![0u8; 37 * 5 * 3];
            convert_rows(layout, 37, step, &data, &mut plain);
            let mut dispatched = vec![1u8; 37 * 5 * 3];
            convert_to_rgb(layout, 37, step, &data, &mut dispatched);
            assert_eq!(dispatched, plain, "{layout:?}");
            if layout == PixelLayout::Mono8 {
                let grey = RgbImage::from_fn(37, 5, |x, y| {
                    let g = big.get_pixel(x, y).0[1];
                    image::Rgb([g, g, g])
                });
                assert_eq!(plain, grey.into_raw());
            } else {
                assert_eq!(plain, big.as_raw().clone(), "{layout:?}");
            }
        }
    }
}
