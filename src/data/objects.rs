//! What the objects of the synthetic world look like: nuScenes size priors, the boxes
//! ("parts") each object is built from, per-class colour palettes with per-instance jitter,
//! and LiDAR reflectivity. Also the unannotated scenery (buildings, street lights, trees).
//!
//! Complementarity is designed in here: classes that nuScenes confuses by shape are built
//! with similar geometry and LiDAR reflectivity but distinct colours (truck vs construction
//! vehicle, bus vs trailer, bicycle vs motorcycle), so the camera separates them and the
//! LiDAR mostly cannot; vehicle paint reflectivity is drawn from one distribution for every
//! vehicle class, so intensity does not give the class away.
//!
//! Part coordinates are in the object's frame: x along its length (heading), y to its left,
//! z up, relative to the annotation box centre (the box bottom is at z = -h/2).

use crate::classes::detection_class_index;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// One axis-aligned (in the object frame) box of an object.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Part {
    pub center: [f64; 3],
    /// Half extents along the object's x (length), y (width), z (height).
    pub half: [f64; 3],
    pub color: [u8; 3],
    /// LiDAR reflectivity on the nuScenes 0..255 scale.
    pub intensity: f32,
}

/// Variant of a class: which nuScenes category it is annotated as, and how it is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Car,
    Truck,
    /// A semi-trailer tractor (annotated as truck), short, pulls a trailer.
    Tractor,
    DumpTruck,
    Excavator,
    BusRigid,
    BusBendy,
    Trailer,
    BarrierPlastic,
    BarrierConcrete,
    Motorcycle {
        rider: bool,
    },
    Bicycle {
        rider: bool,
    },
    Adult,
    Child,
    Worker,
    Cone,
}

impl Variant {
    /// Index into [`crate::classes::DETECTION_CLASSES`].
    pub fn class(self) -> usize {
        let name = match self {
            Variant::Car => "car",
            Variant::Truck | Variant::Tractor => "truck",
            Variant::DumpTruck | Variant::Excavator => "construction_vehicle",
            Variant::BusRigid | Variant::BusBendy => "bus",
            Variant::Trailer => "trailer",
            Variant::BarrierPlastic | Variant::BarrierConcrete => "barrier",
            Variant::Motorcycle { .. } => "motorcycle",
            Variant::Bicycle { .. } => "bicycle",
            Variant::Adult | Variant::Child | Variant::Worker => "pedestrian",
            Variant::Cone => "traffic_cone",
        };
        detection_class_index(name).expect("known class")
    }

    /// Full nuScenes category name.
    pub fn category(self) -> &'static str {
        match self {
            Variant::Car => "vehicle.car",
            Variant::Truck | Variant::Tractor => "vehicle.truck",
            Variant::DumpTruck | Variant::Excavator => "vehicle.construction",
            Variant::BusRigid => "vehicle.bus.rigid",
            Variant::BusBendy => "vehicle.bus.bendy",
            Variant::Trailer => "vehicle.trailer",
            Variant::BarrierPlastic | Variant::BarrierConcrete => "movable_object.barrier",
            Variant::Motorcycle { .. } => "vehicle.motorcycle",
            Variant::Bicycle { .. } => "vehicle.bicycle",
            Variant::Adult => "human.pedestrian.adult",
            Variant::Child => "human.pedestrian.child",
            Variant::Worker => "human.pedestrian.construction_worker",
            Variant::Cone => "movable_object.trafficcone",
        }
    }

    pub fn is_vehicle(self) -> bool {
        matches!(
            self,
            Variant::Car
                | Variant::Truck
                | Variant::Tractor
                | Variant::DumpTruck
                | Variant::Excavator
                | Variant::BusRigid
                | Variant::BusBendy
                | Variant::Trailer
        )
    }
    pub fn is_cycle(self) -> bool {
        matches!(self, Variant::Motorcycle { .. } | Variant::Bicycle { .. })
    }
    pub fn is_pedestrian(self) -> bool {
        matches!(self, Variant::Adult | Variant::Child | Variant::Worker)
    }

    /// Size prior `(mean, std)` of `[width, length, height]`, after nuScenes statistics.
    pub fn size_prior(self) -> ([f64; 3], [f64; 3]) {
        match self {
            Variant::Car => ([1.95, 4.6, 1.72], [0.12, 0.35, 0.14]),
            Variant::Truck => ([2.5, 7.0, 2.95], [0.18, 1.1, 0.3]),
            Variant::Tractor => ([2.5, 5.8, 3.2], [0.12, 0.4, 0.2]),
            Variant::DumpTruck => ([2.6, 6.8, 3.0], [0.2, 0.9, 0.3]),
            Variant::Excavator => ([2.8, 6.2, 3.3], [0.2, 0.8, 0.3]),
            Variant::BusRigid => ([2.95, 11.0, 3.4], [0.08, 0.8, 0.15]),
            Variant::BusBendy => ([2.95, 17.5, 3.35], [0.08, 0.6, 0.12]),
            Variant::Trailer => ([2.9, 11.5, 3.6], [0.12, 1.4, 0.25]),
            Variant::BarrierPlastic => ([2.2, 0.5, 1.0], [0.3, 0.08, 0.08]),
            Variant::BarrierConcrete => ([2.6, 0.6, 0.95], [0.3, 0.08, 0.06]),
            Variant::Motorcycle { rider: true } => ([0.8, 2.1, 1.6], [0.08, 0.15, 0.08]),
            Variant::Motorcycle { rider: false } => ([0.75, 2.05, 1.2], [0.08, 0.15, 0.08]),
            Variant::Bicycle { rider: true } => ([0.62, 1.75, 1.72], [0.06, 0.1, 0.08]),
            Variant::Bicycle { rider: false } => ([0.58, 1.7, 1.08], [0.06, 0.1, 0.06]),
            Variant::Adult => ([0.66, 0.72, 1.76], [0.07, 0.1, 0.09]),
            Variant::Child => ([0.5, 0.52, 1.28], [0.05, 0.06, 0.1]),
            Variant::Worker => ([0.7, 0.75, 1.78], [0.06, 0.08, 0.08]),
            Variant::Cone => ([0.42, 0.42, 0.9], [0.04, 0.04, 0.15]),
        }
    }

    /// Draw a size from the prior (clamped to +-2 sigma).
    pub fn sample_size(self, rng: &mut ChaCha8Rng) -> [f64; 3] {
        let (m, s) = self.size_prior();
        let mut out = [0.0; 3];
        for k in 0..3 {
            let z: f64 = Normal::new(0.0, 1.0).expect("valid normal").sample(rng);
            out[k] = m[k] + s[k] * z.clamp(-2.0, 2.0);
        }
        out
    }
}

/// Colour jitter: scale brightness and each channel a little.
fn jitter(rng: &mut ChaCha8Rng, c: [u8; 3], amount: f64) -> [u8; 3] {
    let b = 1.0 + rng.random_range(-amount..amount);
    let mut out = [0u8; 3];
    for k in 0..3 {
        let ch = 1.0 + rng.random_range(-amount / 2.0..amount / 2.0);
        out[k] = (c[k] as f64 * b * ch).round().clamp(0.0, 255.0) as u8;
    }
    out
}

/// A jittered colour from a weighted palette.
fn palette(rng: &mut ChaCha8Rng, items: &[([u8; 3], u32)], amount: f64) -> [u8; 3] {
    let c = pick(rng, items);
    jitter(rng, c, amount)
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|i| i.1).sum();
    let mut r = rng.random_range(0..total);
    for &(v, w) in items {
        if r < w {
            return v;
        }
        r -= w;
    }
    items[items.len() - 1].0
}

const TYRE: [u8; 3] = [28, 28, 30];
const GLASS: [u8; 3] = [38, 48, 60];
const I_TYRE: f32 = 4.0;
const I_GLASS: f32 = 6.0;

/// Builds parts from full sizes; `z0` is the bottom of the box.
struct Parts {
    w: f64,
    l: f64,
    h: f64,
    out: Vec<Part>,
}

impl Parts {
    fn new(size: [f64; 3]) -> Self {
        Parts {
            w: size[0],
            l: size[1],
            h: size[2],
            out: Vec::new(),
        }
    }
    /// A part spanning x in [x0, x1], y in [y0, y1], z in [z0, z1] measured from the box's
    /// rear-right-bottom corner (x0 = 0 is the rear, y0 = 0 the right side, z0 = 0 the ground).
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        x0: f64,
        x1: f64,
        y0: f64,
        y1: f64,
        z0: f64,
        z1: f64,
        color: [u8; 3],
        intensity: f32,
    ) {
        let (l, w, h) = (self.l, self.w, self.h);
        let c = [
            0.5 * (x0 + x1) - l / 2.0,
            0.5 * (y0 + y1) - w / 2.0,
            0.5 * (z0 + z1) - h / 2.0,
        ];
        let half = [
            0.5 * (x1 - x0).abs(),
            0.5 * (y1 - y0).abs(),
            0.5 * (z1 - z0).abs(),
        ];
        if half.iter().all(|&v| v > 1e-3) {
            self.out.push(Part {
                center: c,
                half,
                color,
                intensity,
            });
        }
    }
    /// A part centred on the box's long axis.
    #[allow(clippy::too_many_arguments)]
    fn mid(
        &mut self,
        x0: f64,
        x1: f64,
        width: f64,
        z0: f64,
        z1: f64,
        color: [u8; 3],
        intensity: f32,
    ) {
        let w = self.w;
        self.add(
            x0,
            x1,
            (w - width) / 2.0,
            (w + width) / 2.0,
            z0,
            z1,
            color,
            intensity,
        );
    }
    fn wheel_pair(&mut self, x: f64, d: f64, t: f64) {
        let w = self.w;
        self.add(x - d / 2.0, x + d / 2.0, 0.0, t, 0.0, d, TYRE, I_TYRE);
        self.add(x - d / 2.0, x + d / 2.0, w - t, w, 0.0, d, TYRE, I_TYRE);
    }
}

/// Vehicle paint reflectivity: one distribution for every vehicle class.
fn paint_intensity(rng: &mut ChaCha8Rng) -> f32 {
    rng.random_range(14.0..48.0)
}

/// Build the parts of an object of `variant` with the given size.
pub fn build_parts(variant: Variant, size: [f64; 3], rng: &mut ChaCha8Rng) -> Vec<Part> {
    let mut p = Parts::new(size);
    let (w, l, h) = (size[0], size[1], size[2]);
    match variant {
        Variant::Car => {
            let body = palette(
                rng,
                &[
                    ([225, 225, 222], 22),
                    ([25, 25, 28], 18),
                    ([150, 152, 156], 18),
                    ([95, 97, 100], 12),
                    ([30, 60, 140], 10),
                    ([150, 25, 25], 10),
                    ([25, 80, 45], 5),
                    ([200, 180, 140], 5),
                ],
                0.08,
            );
            let pi = paint_intensity(rng);
            let d = 0.64;
            p.wheel_pair(0.85, d, 0.24);
            p.wheel_pair(l - 0.85, d, 0.24);
            let belt = 0.58 * h;
            p.mid(0.0, l, w - 0.04, 0.26, belt, body, pi);
            let c0 = 0.22 * l;
            let c1 = 0.74 * l;
            p.mid(c0, c1, w - 0.22, belt, h - 0.07, GLASS, I_GLASS);
            p.mid(c0 + 0.1, c1 - 0.1, w - 0.26, h - 0.07, h, body, pi);
            // Lights: front white, rear red.
            p.add(
                l - 0.05,
                l,
                0.15,
                0.45,
                belt - 0.22,
                belt - 0.08,
                [240, 240, 220],
                60.0,
            );
            p.add(
                l - 0.05,
                l,
                w - 0.45,
                w - 0.15,
                belt - 0.22,
                belt - 0.08,
                [240, 240, 220],
                60.0,
            );
            p.add(
                0.0,
                0.05,
                0.15,
                0.45,
                belt - 0.22,
                belt - 0.08,
                [200, 20, 20],
                60.0,
            );
            p.add(
                0.0,
                0.05,
                w - 0.45,
                w - 0.15,
                belt - 0.22,
                belt - 0.08,
                [200, 20, 20],
                60.0,
            );
        }
        Variant::Truck | Variant::Tractor | Variant::DumpTruck => {
            let construction = variant == Variant::DumpTruck;
            let cab = if construction {
                palette(rng, &[([240, 190, 20], 6), ([235, 120, 20], 4)], 0.08)
            } else {
                palette(
                    rng,
                    &[
                        ([228, 228, 228], 6),
                        ([40, 70, 150], 2),
                        ([170, 30, 30], 2),
                        ([90, 95, 100], 2),
                    ],
                    0.08,
                )
            };
            let cargo = if construction {
                palette(
                    rng,
                    &[([240, 190, 20], 5), ([90, 90, 85], 3), ([235, 120, 20], 2)],
                    0.08,
                )
            } else {
                palette(
                    rng,
                    &[
                        ([235, 235, 232], 6),
                        ([185, 188, 192], 3),
                        ([60, 100, 160], 1),
                        ([200, 120, 40], 1),
                    ],
                    0.06,
                )
            };
            let pi = paint_intensity(rng);
            let cab_l = (0.3 * l).clamp(1.8, 2.4);
            let d = 1.0;
            p.wheel_pair(l - 1.1, d, 0.3);
            p.wheel_pair(1.3, d, 0.3);
            if l > 6.0 {
                p.wheel_pair(2.6, d, 0.3);
            }
            // Chassis.
            p.mid(0.0, l, w - 0.7, 0.45, 1.05, [35, 35, 38], 10.0);
            // Cab with windscreen.
            let cab_top = if variant == Variant::Tractor {
                h
            } else {
                0.86 * h
            };
            p.mid(l - cab_l, l, w, 0.5, cab_top, cab, pi);
            p.mid(l - 0.08, l, w - 0.3, 0.6 * h, 0.83 * h, GLASS, I_GLASS);
            if construction {
                // Warning beacon on the cab roof.
                p.mid(
                    l - cab_l / 2.0 - 0.15,
                    l - cab_l / 2.0 + 0.15,
                    0.3,
                    0.86 * h,
                    0.86 * h + 0.15,
                    [255, 140, 0],
                    90.0,
                );
            }
            if variant != Variant::Tractor {
                // Cargo body.
                p.mid(0.0, l - cab_l - 0.15, w, 1.05, h, cargo, pi);
            } else {
                // Fifth wheel plate.
                p.mid(0.3, l - cab_l - 0.2, w - 0.6, 1.05, 1.3, [50, 50, 50], 12.0);
            }
        }
        Variant::Excavator => {
            let yellow = palette(rng, &[([240, 185, 20], 7), ([235, 120, 25], 3)], 0.08);
            let pi = paint_intensity(rng);
            // Tracks.
            p.add(0.3, l - 1.6, 0.0, 0.7, 0.0, 0.9, [40, 40, 40], 8.0);
            p.add(0.3, l - 1.6, w - 0.7, w, 0.0, 0.9, [40, 40, 40], 8.0);
            // Upper body and cab.
            p.mid(0.0, l - 2.0, w, 0.9, 0.62 * h, yellow, pi);
            p.add(l - 3.6, l - 2.0, 0.1, 1.2, 0.62 * h, h, GLASS, I_GLASS);
            p.add(l - 3.55, l - 2.05, 0.12, 1.18, h - 0.08, h, yellow, pi);
            // Boom and bucket.
            p.mid(l - 2.0, l - 0.4, 0.5, 0.55 * h, 0.75 * h, yellow, pi);
            p.mid(l - 0.9, l, 1.2, 0.05, 0.55 * h, [70, 70, 70], 20.0);
        }
        Variant::BusRigid | Variant::BusBendy => {
            let body = palette(
                rng,
                &[
                    ([200, 35, 35], 4),
                    ([30, 90, 175], 3),
                    ([30, 140, 70], 2),
                    ([235, 235, 235], 1),
                ],
                0.06,
            );
            let pi = paint_intensity(rng);
            let d = 1.0;
            p.wheel_pair(l - 2.4, d, 0.3);
            p.wheel_pair(2.6, d, 0.3);
            if variant == Variant::BusBendy {
                p.wheel_pair(l / 2.0 - 1.0, d, 0.3);
            }
            p.mid(0.0, l, w, 0.3, h, body, pi);
            // Window band along both sides and the windscreen.
            p.mid(0.6, l - 0.4, w + 0.04, 0.5 * h, 0.86 * h, GLASS, I_GLASS);
            p.mid(
                l - 0.06,
                l + 0.02,
                w - 0.3,
                0.35 * h,
                0.88 * h,
                GLASS,
                I_GLASS,
            );
            // Destination sign.
            p.mid(
                l - 0.05,
                l + 0.03,
                w - 0.8,
                0.89 * h,
                0.96 * h,
                [255, 170, 20],
                70.0,
            );
        }
        Variant::Trailer => {
            let body = palette(
                rng,
                &[
                    ([200, 202, 205], 5),
                    ([150, 152, 155], 3),
                    ([110, 120, 135], 2),
                    ([160, 120, 80], 1),
                ],
                0.06,
            );
            let pi = paint_intensity(rng);
            let d = 1.0;
            p.wheel_pair(1.2, d, 0.3);
            p.wheel_pair(2.4, d, 0.3);
            p.mid(0.0, l, w - 0.7, 0.45, 1.05, [35, 35, 38], 10.0);
            p.mid(0.0, l, w, 1.1, h, body, pi);
            // Landing legs.
            p.add(l - 2.5, l - 2.3, 0.3, 0.5, 0.0, 1.1, [60, 60, 60], 15.0);
            p.add(
                l - 2.5,
                l - 2.3,
                w - 0.5,
                w - 0.3,
                0.0,
                1.1,
                [60, 60, 60],
                15.0,
            );
        }
        Variant::BarrierPlastic => {
            // Red and white stripes across its width (the long side), retro-reflective white.
            let n = 4;
            let red = jitter(rng, [205, 30, 30], 0.08);
            for k in 0..n {
                let (c, i) = if k % 2 == 0 {
                    (red, 45.0)
                } else {
                    ([238, 238, 238], 150.0)
                };
                p.add(
                    0.0,
                    l,
                    w * k as f64 / n as f64,
                    w * (k + 1) as f64 / n as f64,
                    0.12,
                    h,
                    c,
                    i,
                );
            }
            p.add(0.05, l - 0.05, 0.1, 0.4, 0.0, 0.12, [40, 40, 40], 8.0);
            p.add(
                0.05,
                l - 0.05,
                w - 0.4,
                w - 0.1,
                0.0,
                0.12,
                [40, 40, 40],
                8.0,
            );
        }
        Variant::BarrierConcrete => {
            let grey = jitter(rng, [160, 158, 150], 0.08);
            p.add(0.0, l, 0.0, w, 0.0, 0.35 * h, grey, 32.0);
            p.add(0.15 * l, 0.85 * l, 0.0, w, 0.35 * h, h, grey, 32.0);
        }
        Variant::Motorcycle { rider } => {
            let body = palette(
                rng,
                &[
                    ([30, 30, 32], 4),
                    ([160, 20, 25], 3),
                    ([30, 50, 140], 2),
                    ([210, 210, 210], 1),
                ],
                0.08,
            );
            let pi = paint_intensity(rng);
            let d = 0.62;
            p.mid(0.0, d, 0.12, 0.0, d, TYRE, I_TYRE);
            p.mid(l - d, l, 0.12, 0.0, d, TYRE, I_TYRE);
            p.mid(0.35, l - 0.35, 0.34, 0.35, 0.8, body, pi);
            p.mid(0.55, l - 0.75, 0.28, 0.3, 0.45, [170, 170, 175], 90.0); // engine, chrome
            p.mid(l - 0.55, l - 0.4, w, 0.95, 1.05, [60, 60, 60], 40.0); // handlebar
            if rider {
                let jacket = palette(
                    rng,
                    &[([30, 30, 30], 5), ([120, 30, 30], 2), ([40, 40, 90], 2)],
                    0.1,
                );
                p.mid(0.45, 1.0, 0.5, 0.75, 1.35, jacket, 20.0);
                p.mid(0.55, 0.85, 0.28, 1.3, h, [240, 240, 240], 60.0); // helmet
            } else {
                p.mid(0.35, 0.95, 0.3, 0.8, 0.92, [25, 25, 25], 10.0); // seat
                p.mid(l - 0.62, l - 0.5, 0.4, 0.9, h, GLASS, I_GLASS); // windscreen
            }
        }
        Variant::Bicycle { rider } => {
            let frame = palette(
                rng,
                &[
                    ([30, 190, 200], 3),
                    ([120, 210, 40], 3),
                    ([220, 40, 160], 2),
                    ([250, 220, 30], 2),
                ],
                0.08,
            );
            let d = 0.68;
            p.mid(0.0, d, 0.06, 0.0, d, TYRE, I_TYRE);
            p.mid(l - d, l, 0.06, 0.0, d, TYRE, I_TYRE);
            p.mid(0.35, l - 0.35, 0.07, 0.45, 0.58, frame, 30.0);
            p.mid(0.55, 0.62, 0.07, 0.3, 0.85, frame, 30.0);
            if rider {
                p.mid(l - 0.5, l - 0.42, 0.55, 0.95, 1.02, [60, 60, 60], 40.0);
                let shirt = palette(
                    rng,
                    &[
                        ([200, 60, 40], 2),
                        ([40, 90, 180], 2),
                        ([230, 230, 230], 2),
                        ([50, 50, 50], 2),
                    ],
                    0.1,
                );
                p.mid(0.5, 0.8, 0.3, 0.35, 0.9, [40, 40, 70], 15.0); // legs
                p.mid(0.45, 0.95, 0.42, 0.9, 1.45, shirt, 22.0);
                p.mid(0.6, 0.85, 0.22, 1.45, h, [200, 160, 130], 18.0);
            } else {
                p.mid(l - 0.5, l - 0.42, 0.55, h - 0.07, h, [60, 60, 60], 40.0);
            }
        }
        Variant::Adult | Variant::Child | Variant::Worker => {
            let skin = palette(
                rng,
                &[
                    ([235, 195, 160], 3),
                    ([190, 140, 100], 3),
                    ([120, 80, 55], 2),
                ],
                0.05,
            );
            let (shirt, shirt_i) = if variant == Variant::Worker {
                (
                    palette(rng, &[([250, 230, 20], 1), ([255, 130, 20], 1)], 0.04),
                    160.0,
                )
            } else {
                (
                    palette(
                        rng,
                        &[
                            ([200, 40, 40], 2),
                            ([40, 80, 170], 2),
                            ([235, 235, 235], 2),
                            ([40, 40, 40], 3),
                            ([60, 130, 60], 1),
                            ([220, 180, 60], 1),
                            ([140, 60, 140], 1),
                        ],
                        0.1,
                    ),
                    22.0,
                )
            };
            let pants = palette(
                rng,
                &[
                    ([35, 40, 70], 3),
                    ([30, 30, 30], 3),
                    ([150, 130, 95], 2),
                    ([90, 90, 95], 1),
                ],
                0.08,
            );
            let legs = 0.47 * h;
            let torso_top = 0.82 * h;
            let lw = 0.16_f64.min(w / 3.0);
            p.add(
                l / 2.0 - 0.09,
                l / 2.0 + 0.09,
                w / 2.0 - 0.03 - lw,
                w / 2.0 - 0.03,
                0.0,
                legs,
                pants,
                15.0,
            );
            p.add(
                l / 2.0 - 0.09,
                l / 2.0 + 0.09,
                w / 2.0 + 0.03,
                w / 2.0 + 0.03 + lw,
                0.0,
                legs,
                pants,
                15.0,
            );
            p.add(
                l / 2.0 - 0.14,
                l / 2.0 + 0.14,
                w * 0.12,
                w * 0.88,
                legs,
                torso_top,
                shirt,
                shirt_i,
            );
            let head = 0.11 * (h / 1.75).max(0.7);
            p.add(
                l / 2.0 - head,
                l / 2.0 + head,
                w / 2.0 - head,
                w / 2.0 + head,
                torso_top,
                h - 0.02,
                skin,
                18.0,
            );
            if variant == Variant::Worker {
                p.add(
                    l / 2.0 - head - 0.03,
                    l / 2.0 + head + 0.03,
                    w / 2.0 - head - 0.03,
                    w / 2.0 + head + 0.03,
                    h - 0.1,
                    h,
                    [250, 250, 250],
                    80.0,
                );
            }
        }
        Variant::Cone => {
            let orange = jitter(rng, [250, 110, 20], 0.06);
            p.add(0.0, l, 0.0, w, 0.0, 0.05, [30, 30, 30], 10.0);
            p.mid(0.12 * l, 0.88 * l, 0.76 * w, 0.05, 0.45 * h, orange, 55.0);
            p.mid(
                0.2 * l,
                0.8 * l,
                0.6 * w,
                0.45 * h,
                0.65 * h,
                [245, 245, 245],
                200.0,
            );
            p.mid(0.3 * l, 0.7 * l, 0.4 * w, 0.65 * h, h, orange, 55.0);
        }
    }
    p.out
}

/// Unannotated scenery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropKind {
    Building,
    StreetLight,
    Tree,
}

/// Build a prop of size `[width, length, height]` (length along its local x).
pub fn build_prop(kind: PropKind, size: [f64; 3], rng: &mut ChaCha8Rng) -> Vec<Part> {
    let mut p = Parts::new(size);
    let (w, l, h) = (size[0], size[1], size[2]);
    match kind {
        PropKind::Building => {
            let wall = palette(
                rng,
                &[
                    ([200, 185, 160], 3),
                    ([150, 70, 55], 3),
                    ([175, 175, 170], 3),
                    ([225, 220, 210], 2),
                    ([110, 115, 125], 1),
                ],
                0.06,
            );
            let wi = rng.random_range(30.0..60.0);
            p.add(0.0, l, 0.0, w, 0.0, h, wall, wi);
            // Window bands on every floor, slightly proud of the facade.
            let floors = ((h - 1.0) / 3.2).floor() as usize;
            for f in 0..floors {
                let z0 = 1.2 + f as f64 * 3.2;
                p.add(
                    0.8,
                    l - 0.8,
                    -0.03,
                    w + 0.03,
                    z0,
                    z0 + 1.4,
                    [55, 70, 90],
                    8.0,
                );
                p.add(
                    -0.03,
                    l + 0.03,
                    0.8,
                    w - 0.8,
                    z0,
                    z0 + 1.4,
                    [55, 70, 90],
                    8.0,
                );
            }
        }
        PropKind::StreetLight => {
            p.mid(
                l / 2.0 - 0.1,
                l / 2.0 + 0.1,
                0.2,
                0.0,
                h,
                [110, 112, 115],
                45.0,
            );
            p.mid(
                l / 2.0 - 0.25,
                l / 2.0 + 0.25,
                0.5,
                h - 0.25,
                h,
                [235, 235, 200],
                70.0,
            );
        }
        PropKind::Tree => {
            p.mid(
                l / 2.0 - 0.15,
                l / 2.0 + 0.15,
                0.3,
                0.0,
                0.45 * h,
                [95, 70, 45],
                15.0,
            );
            let green = jitter(rng, [55, 110, 45], 0.12);
            p.mid(0.0, l, w, 0.4 * h, h, green, 12.0);
        }
    }
    p.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const ALL: [Variant; 18] = [
        Variant::Car,
        Variant::Truck,
        Variant::Tractor,
        Variant::DumpTruck,
        Variant::Excavator,
        Variant::BusRigid,
        Variant::BusBendy,
        Variant::Trailer,
        Variant::BarrierPlastic,
        Variant::BarrierConcrete,
        Variant::Motorcycle { rider: true },
        Variant::Motorcycle { rider: false },
        Variant::Bicycle { rider: true },
        Variant::Bicycle { rider: false },
        Variant::Adult,
        Variant::Child,
        Variant::Worker,
        Variant::Cone,
    ];

    #[test]
    fn parts_stay_inside_their_box_and_categories_map_to_classes() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut classes = std::collections::BTreeSet::new();
        for v in ALL {
            classes.insert(v.class());
            assert_eq!(
                crate::data::nuscenes_tables::category_to_detection_name(v.category()),
                Some(crate::classes::DETECTION_CLASSES[v.class()])
            );
            for _ in 0..20 {
                let size = v.sample_size(&mut rng);
                let parts = build_parts(v, size, &mut rng);
                assert!(!parts.is_empty());
                let half = [size[1] / 2.0, size[0] / 2.0, size[2] / 2.0];
                for p in &parts {
                    for k in 0..3 {
                        // Thin decorations may stand proud of the box by a few centimetres.
                        assert!(
                            p.center[k].abs() + p.half[k] <= half[k] + 0.05,
                            "{v:?} part {p:?} size {size:?}"
                        );
                    }
                }
                // The parts fill the box's height: something touches the ground and the top.
                let bottom = parts
                    .iter()
                    .map(|p| p.center[2] - p.half[2])
                    .fold(f64::INFINITY, f64::min);
                let top = parts
                    .iter()
                    .map(|p| p.center[2] + p.half[2])
                    .fold(f64::NEG_INFINITY, f64::max);
                assert!(
                    (bottom + size[2] / 2.0).abs() < 0.02,
                    "{v:?} bottom {bottom}"
                );
                assert!((top - size[2] / 2.0).abs() < 0.06, "{v:?} top {top}");
            }
        }
        assert_eq!(classes.len(), 10);
    }
}
