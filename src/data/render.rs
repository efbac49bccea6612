//! PNG montage of one frame: every camera image with the annotated 3D boxes projected into
//! it, and a bird's-eye view with the map layers, the LiDAR points (coloured by height) and
//! the boxes. Used by `altermoma render` and for eyeballing the synthetic world.

use crate::classes::{DETECTION_CLASSES, MAP_CLASSES};
use crate::data::frame::{CameraFrame, Frame};
use crate::geometry::{BevGrid, Box3D};
use anyhow::Result;
use image::{Rgb, RgbImage};
use nalgebra::{Point3, Vector3};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

/// Montage options.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    /// Width of each camera panel in pixels (images are rescaled).
    pub camera_width: u32,
    /// Side of the BEV panel in pixels.
    pub bev_size: u32,
    /// BEV extent when the frame has no map (metres, +- around the LiDAR).
    pub bev_range: f64,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            camera_width: 400,
            bev_size: 640,
            bev_range: 40.0,
        }
    }
}

/// Colour of a detection class.
pub fn class_color(label: usize) -> Rgb<u8> {
    const C: [[u8; 3]; 10] = [
        [255, 158, 0],   // car
        [255, 99, 71],   // truck
        [233, 150, 70],  // construction_vehicle
        [255, 69, 0],    // bus
        [255, 140, 0],   // trailer
        [170, 170, 255], // barrier
        [255, 61, 99],   // motorcycle
        [220, 20, 60],   // bicycle
        [0, 0, 230],     // pedestrian
        [0, 230, 230],   // traffic_cone
    ];
    Rgb(C[label % C.len()])
}

fn map_color(k: usize) -> [f32; 3] {
    match MAP_CLASSES[k] {
        "drivable_area" => [110.0, 110.0, 120.0],
        "ped_crossing" => [230.0, 230.0, 230.0],
        "walkway" => [190.0, 150.0, 100.0],
        "stop_line" => [230.0, 40.0, 40.0],
        "carpark_area" => [150.0, 110.0, 190.0],
        _ => [250.0, 220.0, 40.0], // divider
    }
}

fn draw_line(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), c: Rgb<u8>, thick: i64) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let n = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as i64).clamp(1, 20_000);
    for s in 0..=n {
        let t = s as f64 / n as f64;
        let x = (a.0 + t * (b.0 - a.0)).round() as i64;
        let y = (a.1 + t * (b.1 - a.1)).round() as i64;
        for dx in 0..thick {
            for dy in 0..thick {
                let (px, py) = (x + dx - thick / 2, y + dy - thick / 2);
                if px >= 0 && py >= 0 && px < w && py < h {
                    img.put_pixel(px as u32, py as u32, c);
                }
            }
        }
    }
}

/// Project the box edges into a camera image (already scaled by `scale`).
fn draw_box_in_camera(img: &mut RgbImage, cam: &CameraFrame, b: &Box3D, scale: f64) {
    let lidar_to_cam = cam.calib.cam_to_lidar.inverse();
    let k = cam.calib.intrinsics;
    let corners: Vec<Vector3<f64>> = b
        .corners()
        .iter()
        .map(|c| (lidar_to_cam * Point3::new(c[0], c[1], c[2])).coords)
        .collect();
    const EDGES: [(usize, usize); 12] = [
        (0, 1),
        (1, 2),
        (2, 3),
        (3, 0),
        (4, 5),
        (5, 6),
        (6, 7),
        (7, 4),
        (0, 4),
        (1, 5),
        (2, 6),
        (3, 7),
    ];
    let near = 0.1;
    let project = |p: Vector3<f64>| {
        (
            (k[(0, 0)] * p.x / p.z + k[(0, 2)]) * scale,
            (k[(1, 1)] * p.y / p.z + k[(1, 2)]) * scale,
        )
    };
    let color = class_color(b.label);
    for (i, j) in EDGES {
        let (mut p, mut q) = (corners[i], corners[j]);
        if p.z < near && q.z < near {
            continue;
        }
        if p.z < near {
            p = q + (p - q) * ((q.z - near) / (q.z - p.z));
        } else if q.z < near {
            q = p + (q - p) * ((p.z - near) / (p.z - q.z));
        }
        draw_line(img, project(p), project(q), color, 2);
    }
    // Mark the front face with a cross.
    let (f0, f1, f2, f3) = (corners[0], corners[3], corners[7], corners[4]);
    if [f0, f1, f2, f3].iter().all(|p| p.z > near) {
        draw_line(img, project(f0), project(f2), color, 1);
        draw_line(img, project(f1), project(f3), color, 1);
    }
}

fn camera_panel(frame: &Frame, cam: &CameraFrame, width: u32) -> RgbImage {
    let scale = width as f64 / cam.calib.width as f64;
    let height = ((cam.calib.height as f64) * scale).round().max(1.0) as u32;
    let mut img = match &cam.image {
        Some(im) => {
            image::imageops::resize(im.rgb(), width, height, image::imageops::FilterType::Triangle)
        }
        None => RgbImage::from_pixel(width, height, Rgb([40, 0, 0])),
    };
    for a in &frame.annotations {
        draw_box_in_camera(&mut img, cam, &a.bbox, scale);
    }
    img
}

fn bev_panel(frame: &Frame, size: u32, fallback_range: f64) -> (RgbImage, BevGrid) {
    let grid = frame.map.as_ref().map(|m| m.grid).unwrap_or(BevGrid {
        x_min: -fallback_range,
        x_max: fallback_range,
        y_min: -fallback_range,
        y_max: fallback_range,
        resolution: 0.5,
    });
    let mut img = RgbImage::from_pixel(size, size, Rgb([20, 22, 28]));
    let sx = size as f64 / (grid.x_max - grid.x_min);
    let sy = size as f64 / (grid.y_max - grid.y_min);
    // Image: up = +x (forward), right = -y (right of the car).
    let to_px = |x: f64, y: f64| ((grid.y_max - y) * sy, (grid.x_max - x) * sx);
    if let Some(m) = &frame.map {
        let (nx, ny) = (m.grid.nx(), m.grid.ny());
        for py in 0..size {
            for px in 0..size {
                let x = grid.x_max - (py as f64 + 0.5) / sx;
                let y = grid.y_max - (px as f64 + 0.5) / sy;
                if let Some((i, j)) = m.grid.cell(x, y) {
                    let mut c = [20.0f32, 22.0, 28.0];
                    for k in 0..MAP_CLASSES.len() {
                        if m.data[k * nx * ny + i * ny + j] != 0 {
                            let mc = map_color(k);
                            let alpha = if MAP_CLASSES[k] == "drivable_area" {
                                0.6
                            } else {
                                0.75
                            };
                            for ch in 0..3 {
                                c[ch] = c[ch] * (1.0 - alpha) + mc[ch] * alpha;
                            }
                        }
                    }
                    img.put_pixel(px, py, Rgb([c[0] as u8, c[1] as u8, c[2] as u8]));
                }
            }
        }
    }
    if let Some(points) = &frame.points {
        for p in points.iter() {
            let (u, v) = to_px(p[0] as f64, p[1] as f64);
            if u < 0.0 || v < 0.0 || u >= size as f64 || v >= size as f64 {
                continue;
            }
            // Height above the LiDAR's ground (~ -1.8 m) to a blue-green-red ramp.
            let t = ((p[2] as f64 + 2.0) / 3.0).clamp(0.0, 1.0);
            let c = Rgb([
                (255.0 * t) as u8,
                (255.0 * (1.0 - (2.0 * t - 1.0).abs())) as u8,
                (255.0 * (1.0 - t)) as u8,
            ]);
            img.put_pixel(u as u32, v as u32, c);
        }
    }
    for a in &frame.annotations {
        let c = a.bbox.bev_corners();
        let color = class_color(a.bbox.label);
        for k in 0..4 {
            let (p, q) = (c[k], c[(k + 1) % 4]);
            draw_line(&mut img, to_px(p[0], p[1]), to_px(q[0], q[1]), color, 2);
        }
        // Heading: centre to the middle of the front edge.
        let front = ((c[0][0] + c[3][0]) / 2.0, (c[0][1] + c[3][1]) / 2.0);
        draw_line(
            &mut img,
            to_px(a.bbox.center[0], a.bbox.center[1]),
            to_px(front.0, front.1),
            color,
            1,
        );
    }
    // Ego LiDAR.
    let (u, v) = to_px(0.0, 0.0);
    draw_line(
        &mut img,
        (u - 4.0, v),
        (u + 4.0, v),
        Rgb([255, 255, 255]),
        2,
    );
    draw_line(
        &mut img,
        (u, v - 6.0),
        (u, v + 4.0),
        Rgb([255, 255, 255]),
        2,
    );
    (img, grid)
}

fn init_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// Build the montage image.
pub fn montage(frame: &Frame, opts: &RenderOptions) -> Result<RgbImage> {
    init_font();
    // nuScenes-style arrangement when the channel names allow it.
    let order = [
        "CAM_FRONT_LEFT",
        "CAM_FRONT",
        "CAM_FRONT_RIGHT",
        "CAM_BACK_LEFT",
        "CAM_BACK",
        "CAM_BACK_RIGHT",
    ];
    let mut cams: Vec<&CameraFrame> = order
        .iter()
        .filter_map(|n| frame.cameras.iter().find(|c| c.calib.name == *n))
        .collect();
    for c in &frame.cameras {
        if !cams.iter().any(|x| x.calib.name == c.calib.name) {
            cams.push(c);
        }
    }
    let panels: Vec<(String, RgbImage)> = cams
        .iter()
        .map(|c| {
            (
                c.calib.name.clone(),
                camera_panel(frame, c, opts.camera_width),
            )
        })
        .collect();
    let per_row = 3usize.min(panels.len().max(1));
    let rows = panels.len().div_ceil(per_row);
    let ph = panels.iter().map(|p| p.1.height()).max().unwrap_or(0);
    let title_h = 26u32;
    let cams_w = per_row as u32 * opts.camera_width;
    let cams_h = rows as u32 * (ph + title_h);
    let (bev, _) = bev_panel(frame, opts.bev_size, opts.bev_range);
    let legend_h = 24 * 4;
    let width = cams_w + opts.bev_size + 10;
    let height = (cams_h).max(opts.bev_size + title_h + legend_h) + 4;
    let mut out = RgbImage::from_pixel(width, height, Rgb([12, 12, 16]));
    for (i, (_, p)) in panels.iter().enumerate() {
        let (r, c) = (i / per_row, i % per_row);
        image::imageops::overlay(
            &mut out,
            p,
            (c as u32 * opts.camera_width) as i64,
            (r as u32 * (ph + title_h) + title_h) as i64,
        );
    }
    image::imageops::overlay(&mut out, &bev, (cams_w + 10) as i64, title_h as i64);

    // Text: panel titles and the class legend.
    let (w, h) = (out.width(), out.height());
    {
        let buf: &mut [u8] = &mut out;
        let root = BitMapBackend::with_buffer(buf, (w, h)).into_drawing_area();
        let style = TextStyle::from(("sans-serif", 16).into_font()).color(&WHITE);
        let draw = |s: &str, x: i32, y: i32, st: &TextStyle| {
            root.draw(&Text::new(s.to_string(), (x, y), st.clone()))
                .map_err(|e| anyhow::anyhow!("drawing text: {e}"))
        };
        for (i, (name, _)) in panels.iter().enumerate() {
            let (r, c) = (i / per_row, i % per_row);
            draw(
                name,
                (c as u32 * opts.camera_width + 4) as i32,
                (r as u32 * (ph + title_h) + 5) as i32,
                &style,
            )?;
        }
        let boxes = frame.annotations.len();
        let npts = frame.points.as_ref().map(|p| p.len()).unwrap_or(0);
        draw(
            &format!(
                "BEV: {boxes} boxes, {npts} points, sample {}",
                &frame.token[..frame.token.len().min(8)]
            ),
            (cams_w + 12) as i32,
            5,
            &style,
        )?;
        let small = TextStyle::from(("sans-serif", 13).into_font()).color(&WHITE);
        let y0 = (title_h + opts.bev_size + 6) as i32;
        for (k, name) in DETECTION_CLASSES.iter().enumerate() {
            let c = class_color(k).0;
            let (col, row) = ((k % 4) as i32, (k / 4) as i32);
            let (x, y) = ((cams_w + 12) as i32 + col * 160, y0 + row * 20);
            root.draw(&Rectangle::new(
                [(x, y + 2), (x + 12, y + 14)],
                RGBColor(c[0], c[1], c[2]).filled(),
            ))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            draw(name, x + 16, y, &small)?;
        }
        for (k, name) in MAP_CLASSES.iter().enumerate() {
            let c = map_color(k);
            let (col, row) = ((k % 4) as i32, 3 + (k / 4) as i32);
            let (x, y) = ((cams_w + 12) as i32 + col * 160, y0 + row * 20 - 4);
            root.draw(&Rectangle::new(
                [(x, y + 2), (x + 12, y + 14)],
                RGBColor(c[0] as u8, c[1] as u8, c[2] as u8).filled(),
            ))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            draw(name, x + 16, y, &small)?;
        }
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(out)
}

/// Write the montage of `frame` to `path` (PNG, atomically).
pub fn save_montage(frame: &Frame, path: impl AsRef<Path>, opts: &RenderOptions) -> Result<()> {
    let img = montage(frame, opts)?;
    crate::io::atomic_write_via_path(path, |tmp| {
        img.save_with_format(tmp, image::ImageFormat::Png)
            .map_err(Into::into)
    })
}
