//! One procedural driving scene: a road layout placed in the global frame, the ego's drive
//! through it, the objects (with their motion over the whole scene), the scenery, and the
//! scene's weather/sensor conditions. Everything is drawn from a ChaCha RNG seeded by
//! (dataset seed, scene index), so a scene is a pure function of those two numbers.
//!
//! Placement rules (layout frame, traffic keeps right):
//! - vehicles drive in lanes at one speed per lane (so they never run into each other),
//!   queue behind stop lines at a red light, park in parking lanes and car-park bays;
//! - the main road has green unless the ego is stopped at the junction, then the side road
//!   has green; pedestrians cross only where their light is green and wait at the kerb
//!   otherwise; they walk along sidewalk tracks, stand near buildings, walk in car parks;
//! - cyclists ride in bike lanes; bicycles and motorcycles also stand parked on sidewalks;
//! - road works close one lane with cones or barriers along it, barriers across its ends, a
//!   construction vehicle and workers inside;
//! - buildings line the sidewalks, with street lights and trees; all of them occlude.
//!
//! Motion is piecewise linear ([`Motion`]): constant velocity between a start and a stop
//! time (pedestrians cross and then stand). Ground-truth velocities are computed from the
//! annotated positions exactly as the nuScenes devkit does (see `world.rs`).

use crate::data::layout::{JunctionKind, LaneKind, Layout, LayoutParams, Rect};
use crate::data::map_raster::RasterGeometry;
use crate::data::objects::{build_parts, build_prop, Part, PropKind, Variant};
use crate::data::snapshot::{Conditions, LidarCondition, SimBox, Snapshot, Weather, NO_OWNER};
use crate::data::tokens::Hasher128;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::f64::consts::{FRAC_PI_2, PI};

/// nuScenes-era capture time of the first scene (2018-08-01 UTC), microseconds.
pub const BASE_TIMESTAMP_US: i64 = 1_533_081_600_000_000;
/// Resolution of the global map rasters (metres per pixel, as the nuScenes map masks).
pub const MAP_RESOLUTION: f64 = 0.1;
/// Ego body extent from its origin (rear axle on the ground): rear and front overhang.
pub const EGO_REAR: f64 = 1.0;
pub const EGO_FRONT: f64 = 3.7;

/// How often scenes get each degradation (mutually exclusive; the rest are clean).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConditionMix {
    pub night: f64,
    pub fog: f64,
    pub lidar_degraded: f64,
}

impl Default for ConditionMix {
    fn default() -> Self {
        ConditionMix {
            night: 0.12,
            fog: 0.12,
            lidar_degraded: 0.15,
        }
    }
}

impl ConditionMix {
    /// Every scene clean.
    pub fn clean() -> Self {
        ConditionMix {
            night: 0.0,
            fog: 0.0,
            lidar_degraded: 0.0,
        }
    }
}

/// Piecewise-linear motion in the layout frame: at `p0` until `t_start`, then moving with
/// velocity `v` until `t_stop`, then standing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Motion {
    pub p0: [f64; 2],
    pub v: [f64; 2],
    pub t_start: f64,
    pub t_stop: f64,
}

impl Motion {
    pub fn still(x: f64, y: f64) -> Motion {
        Motion {
            p0: [x, y],
            v: [0.0, 0.0],
            t_start: 0.0,
            t_stop: 0.0,
        }
    }
    pub fn linear(x: f64, y: f64, vx: f64, vy: f64) -> Motion {
        Motion {
            p0: [x, y],
            v: [vx, vy],
            t_start: f64::NEG_INFINITY,
            t_stop: f64::INFINITY,
        }
    }
    /// Position at time `t` (seconds since the scene start).
    pub fn at(&self, t: f64) -> [f64; 2] {
        if self.v == [0.0, 0.0] {
            return self.p0;
        }
        let tau = if self.t_start.is_finite() {
            t.clamp(self.t_start, self.t_stop) - self.t_start
        } else {
            t.min(self.t_stop)
        };
        [self.p0[0] + self.v[0] * tau, self.p0[1] + self.v[1] * tau]
    }
    /// Whether the object is moving at time `t`.
    pub fn moving(&self, t: f64) -> bool {
        self.v != [0.0, 0.0] && t >= self.t_start && t < self.t_stop
    }
}

/// An annotated object.
#[derive(Clone, Debug)]
pub struct Actor {
    pub variant: Variant,
    /// width, length, height.
    pub size: [f64; 3],
    /// Heading in the layout frame.
    pub yaw: f64,
    pub motion: Motion,
    pub parts: Vec<Part>,
    /// Parked (vehicles): attribute `vehicle.parked` instead of stopped.
    pub parked: bool,
}

impl Actor {
    /// nuScenes attribute at time `t` (empty for barriers and cones).
    pub fn attribute(&self, t: f64) -> &'static str {
        let v = self.variant;
        if v.is_vehicle() {
            if self.motion.moving(t) {
                "vehicle.moving"
            } else if self.parked {
                "vehicle.parked"
            } else {
                "vehicle.stopped"
            }
        } else if let Variant::Motorcycle { rider } | Variant::Bicycle { rider } = v {
            if rider {
                "cycle.with_rider"
            } else {
                "cycle.without_rider"
            }
        } else if v.is_pedestrian() {
            if self.motion.moving(t) {
                "pedestrian.moving"
            } else {
                "pedestrian.standing"
            }
        } else {
            ""
        }
    }
}

/// Unannotated scenery.
#[derive(Clone, Debug)]
pub struct Prop {
    pub kind: PropKind,
    /// Layout-frame centre of its footprint, on the ground.
    pub x: f64,
    pub y: f64,
    pub yaw: f64,
    pub size: [f64; 3],
    pub parts: Vec<Part>,
}

/// A whole scene.
#[derive(Clone, Debug)]
pub struct Scene {
    pub seed: u64,
    pub index: usize,
    pub layout: Layout,
    /// Layout to global: rotate by `theta`, then add `offset`.
    pub theta: f64,
    pub offset: [f64; 2],
    /// Ego origin (layout frame) at t = 0 and its speed along +x.
    pub ego_x0: f64,
    pub ego_y: f64,
    pub ego_speed: f64,
    pub actors: Vec<Actor>,
    pub props: Vec<Prop>,
    pub conditions: Conditions,
    /// The global map raster of this scene's log.
    pub raster: RasterGeometry,
    pub frames: usize,
    pub hz: f64,
    pub start_us: i64,
}

impl Scene {
    /// Capture time of frame `k`, microseconds.
    pub fn timestamp_us(&self, k: usize) -> i64 {
        self.start_us + (k as f64 * 1e6 / self.hz).round() as i64
    }
    /// Seconds since the scene start at frame `k`.
    pub fn time(&self, k: usize) -> f64 {
        (self.timestamp_us(k) - self.start_us) as f64 * 1e-6
    }
    /// Ego origin in the layout frame at time `t`.
    pub fn ego_at(&self, t: f64) -> [f64; 2] {
        [self.ego_x0 + self.ego_speed * t, self.ego_y]
    }
    pub fn layout_to_global(&self, x: f64, y: f64) -> [f64; 2] {
        let (s, c) = self.theta.sin_cos();
        [
            c * x - s * y + self.offset[0],
            s * x + c * y + self.offset[1],
        ]
    }
    pub fn global_to_layout(&self, gx: f64, gy: f64) -> [f64; 2] {
        let (s, c) = self.theta.sin_cos();
        let (dx, dy) = (gx - self.offset[0], gy - self.offset[1]);
        [c * dx + s * dy, -s * dx + c * dy]
    }
    /// Map-class bits of a global raster pixel (evaluated at the pixel's centre).
    pub fn map_bits_at_pixel(&self, col: u32, row: u32) -> u8 {
        self.pixel_bits(self.theta.sin_cos(), col, row)
    }

    #[inline]
    fn pixel_bits(&self, (s, c): (f64, f64), col: u32, row: u32) -> u8 {
        let (gx, gy) = self.raster.pixel_center(col, row);
        let (dx, dy) = (gx - self.offset[0], gy - self.offset[1]);
        self.layout.map_bits(c * dx + s * dy, -s * dx + c * dy)
    }

    /// One row of the global map raster (class bits per pixel), as [`Self::map_bits_at_pixel`].
    pub fn map_row(&self, row: u32) -> Vec<u8> {
        let sc = self.theta.sin_cos();
        (0..self.raster.width)
            .map(|col| self.pixel_bits(sc, col, row))
            .collect()
    }

    /// Ego pose at frame `k` as a nuScenes record: translation and `[w, x, y, z]` rotation.
    pub fn ego_pose_record(&self, k: usize) -> ([f64; 3], [f64; 4]) {
        let [x, y] = self.ego_at(self.time(k));
        let [gx, gy] = self.layout_to_global(x, y);
        let h = 0.5 * self.theta;
        ([gx, gy, 0.0], [h.cos(), 0.0, 0.0, h.sin()])
    }
    /// Annotation box of actor `a` at time `t` in the layout frame: centre and yaw.
    pub fn actor_pose(&self, a: usize, t: f64) -> ([f64; 3], f64) {
        let act = &self.actors[a];
        let [x, y] = act.motion.at(t);
        let z = self.layout.height(x, y) + act.size[2] / 2.0;
        ([x, y, z], act.yaw)
    }

    /// Freeze the scene at frame `k` for the sensors mounted with `lidar_translation` (ego
    /// frame); boxes further than `range` from the LiDAR are left out.
    pub fn snapshot(
        &self,
        k: usize,
        lidar_translation: [f64; 3],
        range: f64,
        noise_seed: u64,
    ) -> Snapshot<'_> {
        let t = self.time(k);
        let [ex, ey] = self.ego_at(t);
        let lidar_xy = [ex + lidar_translation[0], ey + lidar_translation[1]];
        let lh = lidar_translation[2];
        let mut boxes = Vec::new();
        let mut push =
            |x: f64, y: f64, z_bottom: f64, yaw: f64, parts: &[Part], owner: u32, reach: f64| {
                let (lx, ly) = (x - lidar_xy[0], y - lidar_xy[1]);
                if lx.hypot(ly) - reach > range {
                    return;
                }
                let (s, c) = yaw.sin_cos();
                for p in parts {
                    let px = lx + c * p.center[0] - s * p.center[1];
                    let py = ly + s * p.center[0] + c * p.center[1];
                    boxes.push(SimBox {
                        center: [px, py, z_bottom - lh + p.center[2]],
                        half: p.half,
                        cos: c,
                        sin: s,
                        color: p.color,
                        intensity: p.intensity,
                        owner,
                    });
                }
            };
        for (i, a) in self.actors.iter().enumerate() {
            let ([x, y, zc], yaw) = self.actor_pose(i, t);
            // Parts are relative to the box centre.
            push(
                x,
                y,
                zc,
                yaw,
                &a.parts,
                i as u32,
                0.5 * a.size[0].hypot(a.size[1]),
            );
        }
        for p in &self.props {
            let base = self.layout.height(p.x, p.y);
            // Prop parts are relative to the centre of a box of the prop's size.
            push(
                p.x,
                p.y,
                base + p.size[2] / 2.0,
                p.yaw,
                &p.parts,
                NO_OWNER,
                0.5 * p.size[0].hypot(p.size[1]),
            );
        }
        Snapshot {
            layout: &self.layout,
            lidar_xy,
            lidar_height: lh,
            boxes,
            conditions: self.conditions,
            noise_seed,
        }
    }

    /// Generate scene `index` of the dataset with `seed`.
    pub fn generate(seed: u64, index: usize, frames: usize, hz: f64, mix: &ConditionMix) -> Scene {
        let (s0, _) = Hasher128::new()
            .str("scene")
            .u64(seed)
            .u64(index as u64)
            .finish();
        let mut rng = ChaCha8Rng::seed_from_u64(s0);
        let duration = (frames.max(1) - 1) as f64 / hz;

        // Ego behaviour: stopped (at a junction or in a jam) or cruising.
        let stopped = rng.random_bool(0.18);
        let ego_speed = if stopped {
            0.0
        } else {
            rng.random_range(3.0..11.0)
        };
        let path = ego_speed * duration;
        let junction_x = if stopped {
            rng.random_range(18.0..34.0)
        } else {
            rng.random_range(0.3..0.8) * path + rng.random_range(-5.0..30.0)
        };
        let layout = Layout::generate(
            &mut rng,
            &LayoutParams {
                path_length: path,
                junction_x,
                margin: 75.0,
            },
        );

        // Conditions. Every draw happens whatever the outcome, so the same scene generated
        // with another condition mix has the same layout and objects.
        let u: f64 = rng.random();
        let fog_visibility = rng.random_range(12.0..25.0);
        let lidar_kind = rng.random_range(0..3);
        let (p_drop, beyond, keep) = (
            rng.random_range(0.4..0.6),
            rng.random_range(15.0..25.0),
            rng.random_range(0.1..0.25),
        );
        let (weather, lidar) = if u < mix.night {
            (Weather::Night, LidarCondition::Normal)
        } else if u < mix.night + mix.fog {
            (
                Weather::Fog {
                    visibility: fog_visibility,
                },
                LidarCondition::Normal,
            )
        } else if u < mix.night + mix.fog + mix.lidar_degraded {
            let l = match lidar_kind {
                0 => LidarCondition::Dropout { p: p_drop },
                1 => LidarCondition::SparseFar { beyond, keep },
                _ => LidarCondition::BeamLoss,
            };
            (Weather::Clear, l)
        } else {
            (Weather::Clear, LidarCondition::Normal)
        };
        let (el, az) = (
            rng.random_range(20f64..65.0).to_radians(),
            rng.random_range(0.0..2.0 * PI),
        );
        let conditions = Conditions {
            weather,
            lidar,
            sun: [el.cos() * az.cos(), el.cos() * az.sin(), el.sin()],
        };

        let mut b = Placer {
            rng,
            layout: &layout,
            duration,
            actors: Vec::new(),
            props: Vec::new(),
            occupied: Vec::new(),
        };
        let (ego_x0, ego_y) = b.traffic(stopped, ego_speed);
        b.parked_and_carpark();
        b.roadworks();
        b.kerbside_obstacles(ego_x0, path);
        b.pedestrians(stopped, ego_x0, path);
        b.scenery(ego_x0, path);
        let Placer {
            mut rng,
            actors,
            props,
            ..
        } = b;

        // Place the layout in the global frame: a random rotation, all coordinates positive.
        let theta = rng.random_range(0.0..2.0 * PI);
        let bd = layout.bounds;
        let (s, c) = theta.sin_cos();
        let corners = [
            (bd.x0, bd.y0),
            (bd.x1, bd.y0),
            (bd.x0, bd.y1),
            (bd.x1, bd.y1),
        ];
        let rx: Vec<f64> = corners.iter().map(|&(x, y)| c * x - s * y).collect();
        let ry: Vec<f64> = corners.iter().map(|&(x, y)| s * x + c * y).collect();
        let (min_x, max_x) = (
            rx.iter().cloned().fold(f64::INFINITY, f64::min),
            rx.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        );
        let (min_y, max_y) = (
            ry.iter().cloned().fold(f64::INFINITY, f64::min),
            ry.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        );
        let margin = 10.0;
        let offset = [margin - min_x, margin - min_y];
        let raster = RasterGeometry {
            width: ((max_x - min_x + 2.0 * margin) / MAP_RESOLUTION).ceil() as u32,
            height: ((max_y - min_y + 2.0 * margin) / MAP_RESOLUTION).ceil() as u32,
            resolution: MAP_RESOLUTION,
        };
        let start_us = BASE_TIMESTAMP_US
            + index as i64 * 3_600_000_000
            + (seed % 1000) as i64 * 86_400_000_000;
        Scene {
            seed,
            index,
            layout,
            theta,
            offset,
            ego_x0,
            ego_y,
            ego_speed,
            actors,
            props,
            conditions,
            raster,
            frames,
            hz,
            start_us,
        }
    }

    /// nuScenes `scene.description`.
    pub fn description(&self) -> String {
        let mut parts = vec![self.layout.kind.name().to_string()];
        if self.layout.carpark.is_some() {
            parts.push("car park".into());
        }
        if self.layout.roadworks.is_some() {
            parts.push("road works".into());
        }
        if self.ego_speed == 0.0 {
            parts.push("ego stopped".into());
        }
        format!("{}; {}", parts.join(", "), self.conditions.describe())
    }
}

/// Footprint for overlap tests: centre, half length/width, yaw.
#[derive(Clone, Copy, Debug)]
struct Footprint {
    x: f64,
    y: f64,
    hl: f64,
    hw: f64,
    yaw: f64,
}

impl Footprint {
    fn overlaps(&self, o: &Footprint) -> bool {
        // Separating-axis test for two oriented rectangles.
        let axes = [self.yaw, self.yaw + FRAC_PI_2, o.yaw, o.yaw + FRAC_PI_2];
        let (dx, dy) = (o.x - self.x, o.y - self.y);
        for a in axes {
            let (s, c) = a.sin_cos();
            let proj = |f: &Footprint| {
                let (fs, fc) = f.yaw.sin_cos();
                f.hl * (fc * c + fs * s).abs() + f.hw * (-fs * c + fc * s).abs()
            };
            if (dx * c + dy * s).abs() > proj(self) + proj(o) {
                return false;
            }
        }
        true
    }
}

struct Placer<'a> {
    rng: ChaCha8Rng,
    layout: &'a Layout,
    duration: f64,
    actors: Vec<Actor>,
    props: Vec<Prop>,
    occupied: Vec<Footprint>,
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

impl Placer<'_> {
    fn make(&mut self, variant: Variant) -> (Variant, [f64; 3], Vec<Part>) {
        let size = variant.sample_size(&mut self.rng);
        let parts = build_parts(variant, size, &mut self.rng);
        (variant, size, parts)
    }

    fn add_actor(
        &mut self,
        variant: Variant,
        size: [f64; 3],
        parts: Vec<Part>,
        yaw: f64,
        motion: Motion,
        parked: bool,
    ) {
        self.actors.push(Actor {
            variant,
            size,
            yaw,
            motion,
            parts,
            parked,
        });
    }

    /// Add a static actor if its footprint (plus `clearance`) is free; returns success.
    #[allow(clippy::too_many_arguments)]
    fn add_static(
        &mut self,
        variant: Variant,
        size: [f64; 3],
        parts: Vec<Part>,
        x: f64,
        y: f64,
        yaw: f64,
        parked: bool,
        clearance: f64,
    ) -> bool {
        let fp = Footprint {
            x,
            y,
            hl: size[1] / 2.0 + clearance,
            hw: size[0] / 2.0 + clearance,
            yaw,
        };
        if self.occupied.iter().any(|o| o.overlaps(&fp)) {
            return false;
        }
        self.occupied.push(Footprint {
            hl: size[1] / 2.0,
            hw: size[0] / 2.0,
            ..fp
        });
        self.add_actor(variant, size, parts, yaw, Motion::still(x, y), parked);
        true
    }

    fn driving_variant(&mut self) -> Variant {
        pick(
            &mut self.rng,
            &[
                (Variant::Car, 64),
                (Variant::Truck, 10),
                (Variant::BusRigid, 8),
                (Variant::BusBendy, 2),
                (Variant::Motorcycle { rider: true }, 4),
                (Variant::DumpTruck, 4),
                (Variant::Tractor, 8),
            ],
        )
    }

    /// Place one vehicle (or a tractor with its trailer) with its front at lane coordinate
    /// `front`; returns the lane coordinate of the rear of the whole group.
    fn lane_vehicle(&mut self, li: usize, front: f64, speed: f64, variant: Variant) -> f64 {
        let lane = self.layout.lanes[li].clone();
        let (v, size, parts) = self.make(variant);
        let lat = lane.center + self.rng.random_range(-0.2..0.2);
        let mut group = vec![(v, size, parts, front - lane.dir * size[1] / 2.0)];
        let mut rear = front - lane.dir * size[1];
        if v == Variant::Tractor {
            let (tv, tsize, tparts) = self.make(Variant::Trailer);
            // The trailer's front overhangs the tractor's fifth wheel by 1.5 m.
            let tfront = rear + lane.dir * 1.5;
            group.push((tv, tsize, tparts, tfront - lane.dir * tsize[1] / 2.0));
            rear = tfront - lane.dir * tsize[1];
        }
        for (v, size, parts, u) in group {
            let (x, y) = if lane.axis_x { (u, lat) } else { (lat, u) };
            let yaw = match (lane.axis_x, lane.dir > 0.0) {
                (true, true) => 0.0,
                (true, false) => PI,
                (false, true) => FRAC_PI_2,
                (false, false) => -FRAC_PI_2,
            };
            let (vx, vy) = if lane.axis_x {
                (lane.dir * speed, 0.0)
            } else {
                (0.0, lane.dir * speed)
            };
            let motion = if speed > 0.0 {
                Motion::linear(x, y, vx, vy)
            } else {
                Motion::still(x, y)
            };
            if speed == 0.0 {
                self.occupied.push(Footprint {
                    x,
                    y,
                    hl: size[1] / 2.0,
                    hw: size[0] / 2.0,
                    yaw,
                });
            }
            self.add_actor(v, size, parts, yaw, motion, false);
        }
        rear
    }

    /// Fill a lane with traffic moving at `speed` (0 = a standing jam): every vehicle whose
    /// trajectory over the scene touches `region` (lane coordinates). With `keep_inside`,
    /// whole trajectories must stay inside it; vehicles overlapping `exclude` at t = 0 are
    /// left out (the ego's spot).
    fn moving_lane(
        &mut self,
        li: usize,
        speed: f64,
        region: (f64, f64),
        keep_inside: Option<(f64, f64)>,
        exclude: Option<(f64, f64)>,
        mean_gap: f64,
    ) {
        let lane = self.layout.lanes[li].clone();
        let d = lane.dir;
        // Work in s = d * u: the coordinate along the direction of travel.
        let sorted = |a: f64, b: f64| (a.min(b), a.max(b));
        let (r0, r1) = sorted(d * region.0, d * region.1);
        let inside = keep_inside.map(|(a, b)| sorted(d * a, d * b));
        let excl = exclude.map(|(a, b)| sorted(d * a, d * b));
        let travel = speed * self.duration;
        let mut s_front = r1 - self.rng.random_range(0.0..mean_gap);
        for _ in 0..500 {
            if s_front + travel < r0 {
                break;
            }
            let variant = if lane.kind == LaneKind::Bike {
                if self.rng.random_bool(0.75) {
                    Variant::Bicycle { rider: true }
                } else {
                    Variant::Motorcycle { rider: true }
                }
            } else {
                self.driving_variant()
            };
            let prior = variant.size_prior().0[1]
                + if variant == Variant::Tractor {
                    11.0
                } else {
                    0.0
                };
            let s_rear_est = s_front - (prior + 1.5);
            let ok = inside.is_none_or(|(a, b)| s_rear_est >= a && s_front + travel <= b);
            let blocked = excl.is_some_and(|(a, b)| s_rear_est < b && a < s_front);
            let s_rear = if ok && !blocked {
                d * self.lane_vehicle(li, d * s_front, speed, variant)
            } else {
                s_rear_est
            };
            let gap = if speed > 0.0 {
                6.0 + self.rng.random_range(0.0..2.0 * mean_gap)
            } else {
                self.rng.random_range(1.5..5.0)
            };
            s_front = s_rear - gap;
        }
    }

    /// Queue up to `n` vehicles behind lane coordinate `stop_at`; returns the coordinate of
    /// the last rear (where the queue ends).
    fn queue(&mut self, li: usize, stop_at: f64, n: usize) -> f64 {
        let lane = self.layout.lanes[li].clone();
        let mut front = stop_at - lane.dir * self.rng.random_range(0.4..2.0);
        for _ in 0..n {
            let v = if lane.kind == LaneKind::Bike {
                Variant::Bicycle { rider: true }
            } else {
                let v = self.driving_variant();
                if v == Variant::Tractor {
                    Variant::Truck
                } else {
                    v
                }
            };
            let rear = self.lane_vehicle(li, front, 0.0, v);
            front = rear - lane.dir * self.rng.random_range(1.5..3.0);
        }
        front
    }

    /// All lane traffic and the ego. Returns the ego's start (x, y).
    fn traffic(&mut self, stopped: bool, ego_speed: f64) -> (f64, f64) {
        let layout = self.layout;
        let lanes = layout.lanes.clone();
        let main_red = stopped && layout.kind != JunctionKind::Straight;
        // Ego lane: an open ego-direction driving lane.
        let cands: Vec<usize> = lanes
            .iter()
            .enumerate()
            .filter(|(_, l)| l.ego_direction && l.kind == LaneKind::Driving && !l.closed)
            .map(|(i, _)| i)
            .collect();
        let ego_li = cands[self.rng.random_range(0..cands.len())];
        let ego_y = lanes[ego_li].center;
        let x_lo = layout.bounds.x0;
        let x_hi = layout.bounds.x1;
        let far = 400.0;

        // The ego's own lane.
        let ego_x0 = if stopped {
            let stop = if main_red {
                lanes[ego_li].stop_at.unwrap_or(20.0)
            } else {
                self.rng.random_range(10.0..22.0)
            };
            let ahead = self.rng.random_range(0..=2usize) + usize::from(!main_red);
            let end = self.queue(ego_li, stop, ahead);
            let x0 = end - EGO_FRONT;
            // Cars queued behind the ego.
            let behind = self.rng.random_range(0..=3usize);
            self.queue(ego_li, x0 - EGO_REAR, behind);
            x0
        } else {
            let x0 = 0.0;
            let ex = (x0 - EGO_REAR - 8.0, x0 + EGO_FRONT + 8.0);
            // Same speed as the ego: the gap to the ego never changes.
            self.moving_lane(ego_li, ego_speed, (x_lo, x_hi), None, Some(ex), 18.0);
            x0
        };

        for (li, lane) in lanes.iter().enumerate() {
            if li == ego_li || lane.closed || lane.kind == LaneKind::Parking {
                continue;
            }
            let region = if lane.axis_x {
                (x_lo, x_hi)
            } else {
                (lane.lo, lane.hi)
            };
            // Side-road lanes that start at a T junction keep their traffic beyond it.
            let keep = (!lane.axis_x && lane.lo > layout.bounds.y0 + 1.0).then_some((lane.lo, far));
            let main_lane = lane.axis_x;
            if main_lane {
                if main_red {
                    if let Some(s) = lane.stop_at {
                        let n = self
                            .rng
                            .random_range(0..=if lane.kind == LaneKind::Bike { 2 } else { 5 });
                        self.queue(li, s, n);
                    }
                } else if stopped && lane.ego_direction {
                    // A jam on a straight road: everything in our direction stands.
                    self.moving_lane(li, 0.0, region, None, None, 4.0);
                } else {
                    let speed = if lane.kind == LaneKind::Bike {
                        self.rng.random_range(3.0..6.0)
                    } else {
                        self.rng.random_range(4.0..13.0)
                    };
                    let gap = if lane.kind == LaneKind::Bike {
                        25.0
                    } else {
                        16.0
                    };
                    self.moving_lane(li, speed, region, None, None, gap);
                }
            } else {
                // Side road.
                let speed = self.rng.random_range(4.0..10.0);
                if main_red {
                    if lane.dead_end {
                        if let Some(s) = lane.stop_at {
                            let n = self.rng.random_range(0..=3);
                            self.queue(li, s, n);
                        }
                    } else {
                        self.moving_lane(li, speed, region, keep, None, 18.0);
                    }
                } else {
                    if let Some(s) = lane.stop_at {
                        let n = self.rng.random_range(0..=4);
                        self.queue(li, s, n);
                    }
                    // Traffic that already turned off, driving away from the junction.
                    let clear = 4.0;
                    let window = if lane.dir > 0.0 {
                        (
                            (layout.kerb_left + layout.sidewalk_width + clear).max(lane.lo),
                            far,
                        )
                    } else if !lane.dead_end && lane.lo < layout.kerb_right {
                        (-far, layout.kerb_right - layout.sidewalk_width - clear)
                    } else {
                        continue;
                    };
                    self.moving_lane(li, speed, region, Some(window), None, 22.0);
                }
            }
        }
        (ego_x0, ego_y)
    }

    /// Parked vehicles in parking lanes and car parks, plus stray cones and barriers.
    fn parked_and_carpark(&mut self) {
        let layout = self.layout;
        let entrance = layout.carpark.as_ref().map(|c| c.entrance);
        let rw = layout.roadworks.as_ref().map(|r| r.rect);
        for lane in layout.lanes.iter().filter(|l| l.kind == LaneKind::Parking) {
            let fill = self.rng.random_range(0.3..0.85);
            let mut u = lane.lo + self.rng.random_range(0.0..4.0);
            while u < lane.hi - 3.0 {
                let v = pick(
                    &mut self.rng,
                    &[
                        (Variant::Car, 84),
                        (Variant::Truck, 5),
                        (Variant::Trailer, 6),
                        (Variant::Motorcycle { rider: false }, 5),
                        (Variant::BusRigid, 1),
                    ],
                );
                let (v, size, parts) = self.make(v);
                let x = u + size[1] / 2.0;
                let fp = Rect::new(
                    u,
                    u + size[1],
                    lane.center - size[0] / 2.0,
                    lane.center + size[0] / 2.0,
                );
                let blocked = entrance.is_some_and(|e| e.grow(1.0).intersects(&fp))
                    || rw.is_some_and(|r| r.grow(1.0).intersects(&fp))
                    || u + size[1] > lane.hi;
                if !blocked && self.rng.random_bool(fill) {
                    let yaw =
                        if lane.dir > 0.0 { 0.0 } else { PI } + self.rng.random_range(-0.03..0.03);
                    let y = lane.center + self.rng.random_range(-0.15..0.15);
                    self.add_static(v, size, parts, x, y, yaw, true, 0.1);
                }
                u += size[1] + self.rng.random_range(0.8..5.0);
            }
        }
        if let Some(cp) = layout.carpark.as_ref() {
            let fill = self.rng.random_range(0.35..0.9);
            for bay in &cp.bays {
                if !self.rng.random_bool(fill) {
                    continue;
                }
                let v = pick(
                    &mut self.rng,
                    &[
                        (Variant::Car, 90),
                        (Variant::Truck, 3),
                        (Variant::Motorcycle { rider: false }, 5),
                        (Variant::Bicycle { rider: false }, 2),
                    ],
                );
                let (v, mut size, mut parts) = self.make(v);
                if size[1] > 5.4 {
                    size[1] = 5.4;
                    parts = build_parts(v, size, &mut self.rng);
                }
                let flip = if self.rng.random_bool(0.3) { PI } else { 0.0 };
                let yaw = bay.yaw + flip + self.rng.random_range(-0.05..0.05);
                let x = bay.x + self.rng.random_range(-0.15..0.15);
                let y = bay.y + self.rng.random_range(-0.15..0.15);
                self.add_static(v, size, parts, x, y, yaw, true, 0.05);
            }
            // A line of concrete barriers along the far edge, sometimes.
            if self.rng.random_bool(0.6) {
                let far_y = if cp.rect.cy() > 0.0 {
                    cp.rect.y1 - 0.5
                } else {
                    cp.rect.y0 + 0.5
                };
                let mut x = cp.rect.x0 + 1.5;
                while x < cp.rect.x1 - 1.5 {
                    let (v, size, parts) = self.make(Variant::BarrierConcrete);
                    // A barrier's long side is its width: across its heading.
                    self.add_static(v, size, parts, x, far_y, FRAC_PI_2, false, 0.0);
                    x += size[0] + 0.1;
                }
            }
            // Stray cones in the aisles.
            for _ in 0..self.rng.random_range(0..=3) {
                let a = cp.aisles[self.rng.random_range(0..cp.aisles.len())];
                let (x, y) = (
                    self.rng.random_range(a.x0 + 1.0..a.x1 - 1.0),
                    self.rng.random_range(a.y0 + 0.8..a.y1 - 0.8),
                );
                let (v, size, parts) = self.make(Variant::Cone);
                let yaw = self.rng.random_range(-PI..PI);
                self.add_static(v, size, parts, x, y, yaw, false, 0.3);
            }
        }
    }

    /// Stray cones and short barrier fences at the kerb: in the parking lane where there is
    /// one, else on the sidewalk's kerb edge (clear of the walkers' tracks), so cones and
    /// barriers appear outside road works too.
    fn kerbside_obstacles(&mut self, ego_x0: f64, path: f64) {
        let layout = self.layout;
        for _ in 0..self.rng.random_range(0..=2) {
            let side = if self.rng.random_bool(0.5) { 1.0 } else { -1.0 };
            let kerb = if side > 0.0 {
                layout.kerb_left
            } else {
                layout.kerb_right
            };
            let parking = layout
                .lanes
                .iter()
                .find(|l| l.kind == LaneKind::Parking && l.center * side > 0.0)
                .map(|l| l.center);
            let y = parking.unwrap_or(kerb + side * 0.45);
            let x0 = ego_x0 + self.rng.random_range(-30.0..path + 30.0);
            if self.rng.random_bool(0.6) {
                // A cluster of cones.
                for k in 0..self.rng.random_range(2..=5) {
                    let (v, size, parts) = self.make(Variant::Cone);
                    let yaw = self.rng.random_range(-PI..PI);
                    self.add_static(v, size, parts, x0 + 1.2 * k as f64, y, yaw, false, 0.1);
                }
            } else {
                // A short fence of plastic barriers along the kerb.
                let mut x = x0;
                for _ in 0..self.rng.random_range(2..=4) {
                    let (v, size, parts) = self.make(Variant::BarrierPlastic);
                    self.add_static(v, size, parts, x + size[0] / 2.0, y, FRAC_PI_2, false, 0.05);
                    x += size[0] + 0.2;
                }
            }
        }
    }

    fn roadworks(&mut self) {
        let Some(rw) = self.layout.roadworks.clone() else {
            return;
        };
        let r = rw.rect;
        let edge_y = if rw.open_side > 0.0 {
            r.y1 - 0.3
        } else {
            r.y0 + 0.3
        };
        let use_barriers = self.rng.random_bool(0.35);
        // Along the open side: cones (or barriers) every few metres.
        let mut x = r.x0 + 0.5;
        let spacing = self.rng.random_range(2.5..4.0);
        while x <= r.x1 - 0.5 {
            if use_barriers {
                let (v, size, parts) = self.make(Variant::BarrierPlastic);
                if self.add_static(
                    v,
                    size,
                    parts,
                    x + size[0] / 2.0,
                    edge_y - rw.open_side * 0.1,
                    FRAC_PI_2,
                    false,
                    0.0,
                ) {
                    x += size[0] + 0.3;
                } else {
                    x += 1.0;
                }
            } else {
                let (v, size, parts) = self.make(Variant::Cone);
                let yaw = self.rng.random_range(-PI..PI);
                self.add_static(v, size, parts, x, edge_y, yaw, false, 0.0);
                x += spacing;
            }
        }
        // Barriers across both ends of the closed stretch.
        for end_x in [r.x0 + 0.4, r.x1 - 0.4] {
            let mut y = r.y0 + 0.3;
            while y < r.y1 - 1.0 {
                let (v, size, _) = self.make(Variant::BarrierPlastic);
                let w = size[0].min(r.y1 - 0.3 - y);
                if w < 1.0 {
                    break;
                }
                let size = [w, size[1], size[2]];
                let parts = build_parts(v, size, &mut self.rng);
                self.add_static(v, size, parts, end_x, y + w / 2.0, 0.0, false, 0.0);
                y += w + 0.1;
            }
        }
        // The machine and the crew.
        let machine = if self.rng.random_bool(0.5) {
            Variant::DumpTruck
        } else {
            Variant::Excavator
        };
        let (v, size, parts) = self.make(machine);
        if size[1] + 4.0 < r.w() {
            let x = self
                .rng
                .random_range(r.x0 + 2.0 + size[1] / 2.0..r.x1 - 2.0 - size[1] / 2.0);
            let yaw = if self.rng.random_bool(0.5) { 0.0 } else { PI };
            self.add_static(v, size, parts, x, r.cy(), yaw, true, 0.2);
        }
        for _ in 0..self.rng.random_range(1..=3) {
            let (v, size, parts) = self.make(Variant::Worker);
            for _ in 0..8 {
                let (x, y) = (
                    self.rng.random_range(r.x0 + 1.5..r.x1 - 1.5),
                    self.rng.random_range(r.y0 + 0.6..r.y1 - 0.6),
                );
                let yaw = self.rng.random_range(-PI..PI);
                if self.add_static(v, size, parts.clone(), x, y, yaw, false, 0.3) {
                    break;
                }
            }
        }
    }

    /// Sidewalk walkers, waiting and crossing pedestrians, car-park walkers, parked cycles.
    fn pedestrians(&mut self, stopped: bool, ego_x0: f64, path: f64) {
        let layout = self.layout;
        let main_red = stopped && layout.kind != JunctionKind::Straight;
        let t_end = self.duration;
        let near = |x: f64| x > ego_x0 - 75.0 && x < ego_x0 + path + 75.0;
        let density = self.rng.random_range(0.25..0.8);
        // Walkers along sidewalk tracks: one speed per track, so nobody walks through anybody.
        for w in layout.walks.clone() {
            let (lo, hi, width) = if w.axis_x {
                (w.rect.x0, w.rect.x1, w.rect.h())
            } else {
                (w.rect.y0, w.rect.y1, w.rect.w())
            };
            // Kerb side: towards the road the sidewalk borders.
            let kerb_at_low = if w.axis_x {
                w.rect.cy() > 0.0
            } else {
                w.rect.cx() > layout.junction.x
            };
            let offsets: Vec<f64> = if width < 3.2 {
                vec![width / 2.0]
            } else {
                vec![1.0, width - 1.0]
            };
            for off in offsets {
                let cross = if w.axis_x {
                    if kerb_at_low {
                        w.rect.y0 + off
                    } else {
                        w.rect.y1 - off
                    }
                } else if kerb_at_low {
                    w.rect.x0 + off
                } else {
                    w.rect.x1 - off
                };
                let dir = if self.rng.random_bool(0.5) { 1.0 } else { -1.0 };
                let speed = self.rng.random_range(0.9..1.5);
                let mut u = lo + self.rng.random_range(0.0..10.0);
                while u < hi {
                    let gap = self.rng.random_range(8.0..40.0) / density;
                    let end = u + dir * speed * t_end;
                    let inside = u > lo + 0.6 && u < hi - 0.6 && end > lo + 0.6 && end < hi - 0.6;
                    let (x, y) = if w.axis_x { (u, cross) } else { (cross, u) };
                    if inside && (!w.axis_x || near(x)) {
                        let v = if self.rng.random_bool(0.12) {
                            Variant::Child
                        } else {
                            Variant::Adult
                        };
                        let (v, size, parts) = self.make(v);
                        let (vx, vy, yaw) = if w.axis_x {
                            (dir * speed, 0.0, if dir > 0.0 { 0.0 } else { PI })
                        } else {
                            (
                                0.0,
                                dir * speed,
                                if dir > 0.0 { FRAC_PI_2 } else { -FRAC_PI_2 },
                            )
                        };
                        self.add_actor(v, size, parts, yaw, Motion::linear(x, y, vx, vy), false);
                    }
                    u += gap;
                }
            }
            // Standing people and parked cycles near the building side.
            let outer = |p: &mut Self, inset: f64| -> (f64, f64) {
                let u = p.rng.random_range(lo + 1.0..hi - 1.0);
                let c = if w.axis_x {
                    if kerb_at_low {
                        w.rect.y1 - inset
                    } else {
                        w.rect.y0 + inset
                    }
                } else if kerb_at_low {
                    w.rect.x1 - inset
                } else {
                    w.rect.x0 + inset
                };
                if w.axis_x {
                    (u, c)
                } else {
                    (c, u)
                }
            };
            let axis_yaw = if w.axis_x { 0.0 } else { FRAC_PI_2 };
            for _ in 0..(self.rng.random_range(0..=3) as f64 * density).round() as usize {
                let (v, size, parts) = self.make(Variant::Adult);
                let (x, y) = outer(self, 0.45);
                if near(x) {
                    let yaw = self.rng.random_range(-PI..PI);
                    self.add_static(v, size, parts, x, y, yaw, false, 0.15);
                }
            }
            for _ in 0..usize::from(self.rng.random_bool(0.35)) {
                let (x0, y0) = outer(self, 0.35);
                let n = self.rng.random_range(1..=3);
                let kind = if self.rng.random_bool(0.7) {
                    Variant::Bicycle { rider: false }
                } else {
                    Variant::Motorcycle { rider: false }
                };
                for k in 0..n {
                    let (v, size, parts) = self.make(kind);
                    let along = k as f64 * (size[1] + 0.4);
                    let (x, y) = if w.axis_x {
                        (x0 + along, y0)
                    } else {
                        (x0, y0 + along)
                    };
                    if near(x) {
                        self.add_static(v, size, parts, x, y, axis_yaw, false, 0.05);
                    }
                }
            }
        }
        // Crossings: people cross where their light is green, wait at the kerb otherwise.
        for c in layout.crossings.clone() {
            let open = if c.on_main_road { main_red } else { !main_red };
            let (lo, hi) = if c.walk_along_x {
                (c.rect.x0, c.rect.x1)
            } else {
                (c.rect.y0, c.rect.y1)
            };
            let (clo, chi) = if c.walk_along_x {
                (c.rect.y0 + 0.4, c.rect.y1 - 0.4)
            } else {
                (c.rect.x0 + 0.4, c.rect.x1 - 0.4)
            };
            if open {
                for _ in 0..self.rng.random_range(1..=4) {
                    let dir = if self.rng.random_bool(0.5) { 1.0 } else { -1.0 };
                    let speed = self.rng.random_range(1.0..1.5);
                    let (start, end) = if dir > 0.0 {
                        (lo - 1.0, hi + 1.0)
                    } else {
                        (hi + 1.0, lo - 1.0)
                    };
                    let dur = (end - start).abs() / speed;
                    let t0 = self
                        .rng
                        .random_range(-0.8 * dur..(t_end - 1.0).max(-0.5 * dur));
                    let cross = self.rng.random_range(clo..chi.max(clo + 0.01));
                    let who = if self.rng.random_bool(0.1) {
                        Variant::Child
                    } else {
                        Variant::Adult
                    };
                    let (v, size, parts) = self.make(who);
                    let (x, y, vx, vy, yaw) = if c.walk_along_x {
                        (
                            start,
                            cross,
                            dir * speed,
                            0.0,
                            if dir > 0.0 { 0.0 } else { PI },
                        )
                    } else {
                        (
                            cross,
                            start,
                            0.0,
                            dir * speed,
                            if dir > 0.0 { FRAC_PI_2 } else { -FRAC_PI_2 },
                        )
                    };
                    let motion = Motion {
                        p0: [x, y],
                        v: [vx, vy],
                        t_start: t0,
                        t_stop: t0 + dur,
                    };
                    self.add_actor(v, size, parts, yaw, motion, false);
                }
            } else {
                for end in [lo - 0.8, hi + 0.8] {
                    for _ in 0..self.rng.random_range(0..=2) {
                        let cross = self.rng.random_range(clo..chi.max(clo + 0.01));
                        let (x, y) = if c.walk_along_x {
                            (end, cross)
                        } else {
                            (cross, end)
                        };
                        let yaw = if c.walk_along_x {
                            if end < lo {
                                0.0
                            } else {
                                PI
                            }
                        } else if end < lo {
                            FRAC_PI_2
                        } else {
                            -FRAC_PI_2
                        };
                        let (v, size, parts) = self.make(Variant::Adult);
                        let yaw = yaw + self.rng.random_range(-0.3..0.3);
                        self.add_static(v, size, parts, x, y, yaw, false, 0.1);
                    }
                }
            }
        }
        // Car-park walkers along the aisles.
        if let Some(cp) = layout.carpark.clone() {
            for _ in 0..self.rng.random_range(0..=3) {
                let a = cp.aisles[self.rng.random_range(0..cp.aisles.len())];
                let speed = self.rng.random_range(0.9..1.4);
                let dir = if self.rng.random_bool(0.5) { 1.0 } else { -1.0 };
                let span = speed * t_end;
                if a.w() < span + 4.0 {
                    continue;
                }
                let x = if dir > 0.0 {
                    self.rng.random_range(a.x0 + 1.0..a.x1 - 1.0 - span)
                } else {
                    self.rng.random_range(a.x0 + 1.0 + span..a.x1 - 1.0)
                };
                let y = a.cy() + self.rng.random_range(-1.5..1.5);
                let (v, size, parts) = self.make(Variant::Adult);
                self.add_actor(
                    v,
                    size,
                    parts,
                    if dir > 0.0 { 0.0 } else { PI },
                    Motion::linear(x, y, dir * speed, 0.0),
                    false,
                );
            }
        }
    }

    /// Buildings, street lights and trees.
    fn scenery(&mut self, ego_x0: f64, path: f64) {
        let layout = self.layout;
        let near = |x: f64| x > ego_x0 - 90.0 && x < ego_x0 + path + 90.0;
        for (plot, side) in layout.plots.clone() {
            let mut x = plot.x0 + self.rng.random_range(0.0..4.0);
            while x < plot.x1 - 6.0 {
                let len = self.rng.random_range(8.0..30.0f64).min(plot.x1 - x);
                let depth = self.rng.random_range(8.0..18.0);
                let height = self.rng.random_range(5.0..25.0);
                let near_edge = if side > 0.0 { plot.y0 } else { plot.y1 };
                let y = near_edge + side * depth / 2.0;
                if len > 5.0 && near(x) {
                    let size = [depth, len, height];
                    let parts = build_prop(PropKind::Building, size, &mut self.rng);
                    self.props.push(Prop {
                        kind: PropKind::Building,
                        x: x + len / 2.0,
                        y,
                        yaw: 0.0,
                        size,
                        parts,
                    });
                }
                x += len + self.rng.random_range(0.0..6.0);
            }
        }
        let trees = self.rng.random_bool(0.55);
        let entrance = layout.carpark.as_ref().map(|c| c.entrance);
        for w in layout.walks.clone() {
            if !w.axis_x {
                continue;
            }
            let kerb_low = w.rect.cy() > 0.0;
            let light_y = if kerb_low {
                w.rect.y0 + 0.3
            } else {
                w.rect.y1 - 0.3
            };
            let tree_y = if kerb_low {
                w.rect.y1 - 0.45
            } else {
                w.rect.y0 + 0.45
            };
            let mut x = w.rect.x0 + self.rng.random_range(2.0..20.0);
            while x < w.rect.x1 - 2.0 {
                if near(x) && !entrance.is_some_and(|e| e.grow(1.0).contains(x, light_y)) {
                    let h = self.rng.random_range(6.0..8.0);
                    self.try_prop(PropKind::StreetLight, [0.5, 0.5, h], x, light_y);
                }
                x += self.rng.random_range(25.0..35.0);
            }
            if trees {
                let mut x = w.rect.x0 + self.rng.random_range(2.0..10.0);
                while x < w.rect.x1 - 2.0 {
                    if near(x) && !entrance.is_some_and(|e| e.grow(2.0).contains(x, tree_y)) {
                        let s = self.rng.random_range(2.5..4.0);
                        let h = self.rng.random_range(5.0..8.0);
                        self.try_prop(PropKind::Tree, [s, s, h], x, tree_y);
                    }
                    x += self.rng.random_range(8.0..16.0);
                }
            }
        }
    }

    /// Add a pole-like prop if its trunk (0.35 m square) is free.
    fn try_prop(&mut self, kind: PropKind, size: [f64; 3], x: f64, y: f64) {
        let fp = Footprint {
            x,
            y,
            hl: 0.35,
            hw: 0.35,
            yaw: 0.0,
        };
        if self.occupied.iter().any(|o| o.overlaps(&fp)) {
            return;
        }
        self.occupied.push(fp);
        let parts = build_prop(kind, size, &mut self.rng);
        self.props.push(Prop {
            kind,
            x,
            y,
            yaw: 0.0,
            size,
            parts,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footprints_overlap_like_rectangles() {
        let a = Footprint {
            x: 0.0,
            y: 0.0,
            hl: 2.0,
            hw: 1.0,
            yaw: 0.0,
        };
        assert!(a.overlaps(&Footprint {
            x: 3.9,
            y: 0.0,
            hl: 2.0,
            hw: 1.0,
            yaw: 0.0
        }));
        assert!(!a.overlaps(&Footprint {
            x: 4.1,
            y: 0.0,
            hl: 2.0,
            hw: 1.0,
            yaw: 0.0
        }));
        // Rotated 90 degrees: its length now runs along y.
        assert!(!a.overlaps(&Footprint {
            x: 3.1,
            y: 0.0,
            hl: 2.0,
            hw: 1.0,
            yaw: FRAC_PI_2
        }));
        assert!(a.overlaps(&Footprint {
            x: 2.9,
            y: 0.0,
            hl: 2.0,
            hw: 1.0,
            yaw: FRAC_PI_2
        }));
    }

    #[test]
    fn motion_starts_moves_and_stops() {
        let m = Motion {
            p0: [0.0, 0.0],
            v: [1.0, 0.0],
            t_start: 1.0,
            t_stop: 3.0,
        };
        assert_eq!(m.at(0.0), [0.0, 0.0]);
        assert_eq!(m.at(2.0), [1.0, 0.0]);
        assert_eq!(m.at(9.0), [2.0, 0.0]);
        assert!(!m.moving(0.5) && m.moving(2.0) && !m.moving(3.5));
        let l = Motion::linear(1.0, 1.0, 2.0, 0.0);
        assert_eq!(l.at(2.0), [5.0, 1.0]);
        assert!(l.moving(0.0));
    }

    #[test]
    fn scenes_are_deterministic_and_varied() {
        let mix = ConditionMix::default();
        let a = Scene::generate(5, 3, 20, 2.0, &mix);
        let b = Scene::generate(5, 3, 20, 2.0, &mix);
        assert_eq!(a.actors.len(), b.actors.len());
        assert_eq!(a.theta, b.theta);
        for (x, y) in a.actors.iter().zip(&b.actors) {
            assert_eq!(x.motion, y.motion);
            assert_eq!(x.size, y.size);
        }
        let c = Scene::generate(6, 3, 20, 2.0, &mix);
        assert_ne!(a.theta, c.theta);
        // Across a few scenes every detection class shows up.
        let mut seen = [0usize; 10];
        for i in 0..12 {
            let s = Scene::generate(11, i, 20, 2.0, &mix);
            assert!(s.raster.width > 100 && s.raster.height > 100);
            for a in &s.actors {
                seen[a.variant.class()] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
    }
}
