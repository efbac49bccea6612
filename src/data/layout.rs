//! Procedural road layouts: the ground surface (asphalt, paint, sidewalks, car parks, grass),
//! the six BEV map classes, and the structure actors are placed on (lanes, sidewalks,
//! crossings, parking bays, building plots, road works).
//!
//! A layout lives in its own *layout frame*: the main road runs along +x, the ego drives on
//! the right-hand side (y < 0) in the +x direction. Everything is made of axis-aligned
//! rectangles in that frame ("patches"), optionally dashed or striped, so a surface query is
//! exact and cheap (a uniform grid index keeps it to a handful of rectangle tests). The
//! scene places the layout in the global frame with a rotation and an offset.
//!
//! Kinds: a straight road, a mid-block pedestrian crossing, a four-way intersection, a
//! T-junction; each may have bike lanes, a kerbside parking lane, a car park behind the
//! sidewalk and a road-works zone closing one lane.

use crate::classes::map_class_index;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Height of sidewalks, kerbs and verges above the road surface (metres).
pub const KERB_HEIGHT: f64 = 0.15;

/// Ground materials: what the camera paints and what intensity the LiDAR returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Material {
    Grass,
    Asphalt,
    CarparkAsphalt,
    WhitePaint,
    YellowPaint,
    Sidewalk,
    Kerb,
}

impl Material {
    /// Raised surfaces sit [`KERB_HEIGHT`] above the road.
    pub fn raised(self) -> bool {
        matches!(self, Material::Grass | Material::Sidewalk | Material::Kerb)
    }
    pub fn is_paint(self) -> bool {
        matches!(self, Material::WhitePaint | Material::YellowPaint)
    }
}

/// Axis-aligned rectangle in the layout frame, half-open: `[x0, x1) x [y0, y1)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub x0: f64,
    pub x1: f64,
    pub y0: f64,
    pub y1: f64,
}

impl Rect {
    pub fn new(x0: f64, x1: f64, y0: f64, y1: f64) -> Rect {
        Rect {
            x0: x0.min(x1),
            x1: x0.max(x1),
            y0: y0.min(y1),
            y1: y0.max(y1),
        }
    }
    #[inline]
    pub fn contains(&self, x: f64, y: f64) -> bool {
        x >= self.x0 && x < self.x1 && y >= self.y0 && y < self.y1
    }
    pub fn intersects(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }
    pub fn grow(&self, d: f64) -> Rect {
        Rect {
            x0: self.x0 - d,
            x1: self.x1 + d,
            y0: self.y0 - d,
            y1: self.y1 + d,
        }
    }
    pub fn cx(&self) -> f64 {
        0.5 * (self.x0 + self.x1)
    }
    pub fn cy(&self) -> f64 {
        0.5 * (self.y0 + self.y1)
    }
    pub fn w(&self) -> f64 {
        self.x1 - self.x0
    }
    pub fn h(&self) -> f64 {
        self.y1 - self.y0
    }
}

/// Painted pattern inside a patch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pattern {
    Solid,
    /// On for `on` metres every `period` metres along x (or y), starting at `phase`.
    Dashes {
        along_x: bool,
        period: f64,
        on: f64,
        phase: f64,
    },
}

impl Pattern {
    #[inline]
    fn on(&self, x: f64, y: f64) -> bool {
        match *self {
            Pattern::Solid => true,
            Pattern::Dashes {
                along_x,
                period,
                on,
                phase,
            } => {
                let u = if along_x { x } else { y };
                (u - phase).rem_euclid(period) < on
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Patch {
    pub rect: Rect,
    pub material: Material,
    pub pattern: Pattern,
}

/// A rectangle of map classes (bit k = `MAP_CLASSES[k]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MapPatch {
    pub rect: Rect,
    pub bits: u8,
}

fn bit(name: &str) -> u8 {
    1u8 << map_class_index(name).expect("known map class")
}

/// What a lane carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaneKind {
    Driving,
    Bike,
    Parking,
}

/// A straight lane: traffic moves along `axis_x ? x : y` in direction `dir` (+1/-1), centred
/// at `center` on the other axis, between `lo` and `hi` along its axis.
#[derive(Clone, Debug, PartialEq)]
pub struct Lane {
    pub kind: LaneKind,
    pub axis_x: bool,
    pub dir: f64,
    pub center: f64,
    pub width: f64,
    pub lo: f64,
    pub hi: f64,
    /// On the main road and running with the ego.
    pub ego_direction: bool,
    /// Where traffic in this lane stops for a red light (coordinate along the axis of the
    /// stop line's near edge), if the lane ends at one.
    pub stop_at: Option<f64>,
    /// Closed by road works.
    pub closed: bool,
    /// Ends at a junction without a way on (a T junction's side road): queues only.
    pub dead_end: bool,
}

/// A sidewalk strip along an axis.
#[derive(Clone, Debug, PartialEq)]
pub struct Walk {
    pub rect: Rect,
    pub axis_x: bool,
}

/// A zebra crossing; pedestrians walk along `axis_x ? x : y` across it.
#[derive(Clone, Debug, PartialEq)]
pub struct Crossing {
    pub rect: Rect,
    pub walk_along_x: bool,
    /// Crosses the main road (else a side road).
    pub on_main_road: bool,
}

/// A parking bay: the car's centre and heading (layout frame).
#[derive(Clone, Debug, PartialEq)]
pub struct Bay {
    pub x: f64,
    pub y: f64,
    pub yaw: f64,
    pub width: f64,
    pub depth: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Carpark {
    pub rect: Rect,
    pub bays: Vec<Bay>,
    /// Driving aisles (for pedestrians walking to their cars).
    pub aisles: Vec<Rect>,
    /// The driveway from the road through the sidewalk.
    pub entrance: Rect,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Roadworks {
    /// The closed stretch of lane.
    pub rect: Rect,
    /// Index into [`Layout::lanes`].
    pub lane: usize,
    /// +1 when open traffic is on the +y side of the closed stretch, else -1.
    pub open_side: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JunctionKind {
    Straight,
    MidblockCrossing,
    Intersection,
    TJunction,
}

impl JunctionKind {
    pub fn name(self) -> &'static str {
        match self {
            JunctionKind::Straight => "straight road",
            JunctionKind::MidblockCrossing => "mid-block crossing",
            JunctionKind::Intersection => "intersection",
            JunctionKind::TJunction => "T junction",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Junction {
    pub kind: JunctionKind,
    pub x: f64,
    /// Half-width of the side road (0 without one).
    pub side_half_width: f64,
}

/// Inputs of [`Layout::generate`].
#[derive(Clone, Debug)]
pub struct LayoutParams {
    /// The ego drives from x = 0 to x = `path_length` on the main road.
    pub path_length: f64,
    /// Where the junction (if any) should be along x.
    pub junction_x: f64,
    /// Margin of road and scenery around the path (metres).
    pub margin: f64,
}

/// A generated layout with its query index.
#[derive(Clone, Debug)]
pub struct Layout {
    pub kind: JunctionKind,
    pub bounds: Rect,
    pub patches: Vec<Patch>,
    pub map_patches: Vec<MapPatch>,
    pub lanes: Vec<Lane>,
    pub walks: Vec<Walk>,
    pub crossings: Vec<Crossing>,
    pub carpark: Option<Carpark>,
    /// Strips beside the sidewalks where buildings may stand, and which side (+1 left).
    pub plots: Vec<(Rect, f64)>,
    pub roadworks: Option<Roadworks>,
    pub junction: Junction,
    /// Main-road edges: y of the right (negative) and left (positive) kerbs.
    pub kerb_right: f64,
    pub kerb_left: f64,
    pub sidewalk_width: f64,
    index: GridIndex,
}

#[derive(Clone, Debug, Default)]
struct GridIndex {
    x0: f64,
    y0: f64,
    cell: f64,
    nx: usize,
    ny: usize,
    patches: Vec<Vec<u32>>,
    maps: Vec<Vec<u32>>,
}

impl GridIndex {
    fn build(bounds: Rect, patches: &[Patch], maps: &[MapPatch]) -> GridIndex {
        let cell = 4.0;
        let nx = (bounds.w() / cell).ceil().max(1.0) as usize;
        let ny = (bounds.h() / cell).ceil().max(1.0) as usize;
        let mut g = GridIndex {
            x0: bounds.x0,
            y0: bounds.y0,
            cell,
            nx,
            ny,
            patches: vec![Vec::new(); nx * ny],
            maps: vec![Vec::new(); nx * ny],
        };
        let span = |g: &GridIndex, r: &Rect| {
            let i0 = (((r.x0 - g.x0) / g.cell).floor().max(0.0) as usize).min(g.nx - 1);
            let i1 = (((r.x1 - g.x0) / g.cell).floor().max(0.0) as usize).min(g.nx - 1);
            let j0 = (((r.y0 - g.y0) / g.cell).floor().max(0.0) as usize).min(g.ny - 1);
            let j1 = (((r.y1 - g.y0) / g.cell).floor().max(0.0) as usize).min(g.ny - 1);
            (i0, i1, j0, j1)
        };
        for (k, p) in patches.iter().enumerate() {
            let (i0, i1, j0, j1) = span(&g, &p.rect);
            for i in i0..=i1 {
                for j in j0..=j1 {
                    g.patches[i * ny + j].push(k as u32);
                }
            }
        }
        for (k, p) in maps.iter().enumerate() {
            let (i0, i1, j0, j1) = span(&g, &p.rect);
            for i in i0..=i1 {
                for j in j0..=j1 {
                    g.maps[i * ny + j].push(k as u32);
                }
            }
        }
        g
    }
    #[inline]
    fn cell_of(&self, x: f64, y: f64) -> Option<usize> {
        let fi = (x - self.x0) / self.cell;
        let fj = (y - self.y0) / self.cell;
        if fi < 0.0 || fj < 0.0 {
            return None;
        }
        let (i, j) = (fi as usize, fj as usize);
        (i < self.nx && j < self.ny).then_some(i * self.ny + j)
    }
}

impl Layout {
    /// Ground material at a layout-frame point (grass outside every patch).
    #[inline]
    pub fn material(&self, x: f64, y: f64) -> Material {
        let Some(c) = self.index.cell_of(x, y) else {
            return Material::Grass;
        };
        for &k in self.index.patches[c].iter().rev() {
            let p = &self.patches[k as usize];
            if p.rect.contains(x, y) && p.pattern.on(x, y) {
                return p.material;
            }
        }
        Material::Grass
    }

    /// Map-class bits at a layout-frame point (bit k = `MAP_CLASSES[k]`).
    #[inline]
    pub fn map_bits(&self, x: f64, y: f64) -> u8 {
        if !self.bounds.contains(x, y) {
            return 0;
        }
        let Some(c) = self.index.cell_of(x, y) else {
            return 0;
        };
        let mut bits = 0u8;
        for &k in &self.index.maps[c] {
            let p = &self.map_patches[k as usize];
            if p.rect.contains(x, y) {
                bits |= p.bits;
            }
        }
        bits
    }

    /// Height of the ground surface at a point.
    #[inline]
    pub fn height(&self, x: f64, y: f64) -> f64 {
        if self.material(x, y).raised() {
            KERB_HEIGHT
        } else {
            0.0
        }
    }

    /// Generate a layout around the ego's path.
    pub fn generate(rng: &mut ChaCha8Rng, params: &LayoutParams) -> Layout {
        Builder::new(rng, params).build()
    }
}

/// Accumulates patches while a layout is generated.
struct Builder<'a> {
    rng: &'a mut ChaCha8Rng,
    p: LayoutParams,
    patches: Vec<Patch>,
    maps: Vec<MapPatch>,
    lanes: Vec<Lane>,
    walks: Vec<Walk>,
    crossings: Vec<Crossing>,
    plots: Vec<(Rect, f64)>,
}

const LINE_W: f64 = 0.15;
const DIVIDER_MAP_W: f64 = 0.6;
const STOP_LINE_W: f64 = 0.6;

impl<'a> Builder<'a> {
    fn new(rng: &'a mut ChaCha8Rng, p: &LayoutParams) -> Self {
        Builder {
            rng,
            p: p.clone(),
            patches: Vec::new(),
            maps: Vec::new(),
            lanes: Vec::new(),
            walks: Vec::new(),
            crossings: Vec::new(),
            plots: Vec::new(),
        }
    }

    fn fill(&mut self, r: Rect, m: Material) {
        self.patches.push(Patch {
            rect: r,
            material: m,
            pattern: Pattern::Solid,
        });
    }
    fn paint(&mut self, r: Rect, m: Material, pattern: Pattern) {
        self.patches.push(Patch {
            rect: r,
            material: m,
            pattern,
        });
    }
    fn map(&mut self, r: Rect, class: &str) {
        self.maps.push(MapPatch {
            rect: r,
            bits: bit(class),
        });
    }

    /// A painted line along x (or y) from `a` to `b` at cross-coordinate `c`, with its
    /// divider map band.
    fn line(&mut self, along_x: bool, a: f64, b: f64, c: f64, m: Material, dashed: bool) {
        let (lo, hi) = (a.min(b), a.max(b));
        if hi - lo < 0.5 {
            return;
        }
        let pat = if dashed {
            Pattern::Dashes {
                along_x,
                period: 9.0,
                on: 3.0,
                phase: 0.0,
            }
        } else {
            Pattern::Solid
        };
        let (r, band) = if along_x {
            (
                Rect::new(lo, hi, c - LINE_W / 2.0, c + LINE_W / 2.0),
                Rect::new(lo, hi, c - DIVIDER_MAP_W / 2.0, c + DIVIDER_MAP_W / 2.0),
            )
        } else {
            (
                Rect::new(c - LINE_W / 2.0, c + LINE_W / 2.0, lo, hi),
                Rect::new(c - DIVIDER_MAP_W / 2.0, c + DIVIDER_MAP_W / 2.0, lo, hi),
            )
        };
        self.paint(r, m, pat);
        self.map(band, "divider");
    }

    /// The double yellow centre line of a road.
    fn centre_line(&mut self, along_x: bool, a: f64, b: f64, c: f64) {
        let (lo, hi) = (a.min(b), a.max(b));
        if hi - lo < 0.5 {
            return;
        }
        for off in [-0.12, 0.12] {
            let r = if along_x {
                Rect::new(lo, hi, c + off - 0.06, c + off + 0.06)
            } else {
                Rect::new(c + off - 0.06, c + off + 0.06, lo, hi)
            };
            self.paint(r, Material::YellowPaint, Pattern::Solid);
        }
        let band = if along_x {
            Rect::new(lo, hi, c - DIVIDER_MAP_W / 2.0, c + DIVIDER_MAP_W / 2.0)
        } else {
            Rect::new(c - DIVIDER_MAP_W / 2.0, c + DIVIDER_MAP_W / 2.0, lo, hi)
        };
        self.map(band, "divider");
    }

    /// Zebra crossing: white bars across the walking direction.
    fn zebra(&mut self, r: Rect, walk_along_x: bool, on_main_road: bool) {
        // Bars run along the traffic direction and alternate along the walking direction.
        let pattern = Pattern::Dashes {
            along_x: walk_along_x,
            period: 1.0,
            on: 0.5,
            phase: if walk_along_x { r.x0 } else { r.y0 } + 0.25,
        };
        let inner = if walk_along_x {
            Rect::new(r.x0, r.x1, r.y0 + 0.2, r.y1 - 0.2)
        } else {
            Rect::new(r.x0 + 0.2, r.x1 - 0.2, r.y0, r.y1)
        };
        self.paint(inner, Material::WhitePaint, pattern);
        self.map(r, "ped_crossing");
        self.crossings.push(Crossing {
            rect: r,
            walk_along_x,
            on_main_road,
        });
    }

    fn stop_line(&mut self, r: Rect) {
        self.paint(r, Material::WhitePaint, Pattern::Solid);
        self.map(r, "stop_line");
    }

    fn sidewalk(&mut self, r: Rect, along_x: bool, kerb_side: Option<(bool, f64)>) {
        if r.w() <= 0.1 || r.h() <= 0.1 {
            return;
        }
        self.fill(r, Material::Sidewalk);
        // A lighter kerb stone along the road edge.
        if let Some((x_edge, at)) = kerb_side {
            let k = 0.25;
            let kr = if x_edge {
                Rect::new(
                    at - if at > r.cx() { k } else { 0.0 },
                    at + if at > r.cx() { 0.0 } else { k },
                    r.y0,
                    r.y1,
                )
            } else {
                Rect::new(
                    r.x0,
                    r.x1,
                    at - if at > r.cy() { k } else { 0.0 },
                    at + if at > r.cy() { 0.0 } else { k },
                )
            };
            self.fill(kr, Material::Kerb);
        }
        self.map(r, "walkway");
        self.walks.push(Walk {
            rect: r,
            axis_x: along_x,
        });
    }

    fn build(mut self) -> Layout {
        let m = self.p.margin;
        let x_lo = -m;
        let x_hi = self.p.path_length + m;
        let y_extent = 60.0;
        let bounds = Rect::new(x_lo, x_hi, -y_extent, y_extent);

        // Cross-section of the main road.
        let lane_w = self.rng.random_range(3.1..3.7);
        let n_right = if self.rng.random_bool(0.6) { 2 } else { 1 };
        let n_left = if self.rng.random_bool(0.55) { 2 } else { 1 };
        let bike = self.rng.random_bool(0.3);
        let park_right = self.rng.random_bool(0.3);
        let park_left = self.rng.random_bool(0.25);
        let bike_w = 1.6;
        let park_w = 2.4;
        let right_w = n_right as f64 * lane_w
            + if bike { bike_w } else { 0.0 }
            + if park_right { park_w } else { 0.0 };
        let left_w = n_left as f64 * lane_w
            + if bike { bike_w } else { 0.0 }
            + if park_left { park_w } else { 0.0 };
        let (kerb_r, kerb_l) = (-right_w, left_w);
        let sw = self.rng.random_range(2.5..4.5);

        let kind = match self.rng.random_range(0..100) {
            0..30 => JunctionKind::Straight,
            30..50 => JunctionKind::MidblockCrossing,
            50..85 => JunctionKind::Intersection,
            _ => JunctionKind::TJunction,
        };
        let xj = self.p.junction_x;
        let side_lanes = if self.rng.random_bool(0.5) { 2 } else { 1 };
        let side_lane_w = self.rng.random_range(3.0..3.6);
        let hw = match kind {
            JunctionKind::Intersection | JunctionKind::TJunction => side_lanes as f64 * side_lane_w,
            _ => 0.0,
        };
        let side_sw = self.rng.random_range(2.5..4.0);
        let has_left_arm = matches!(kind, JunctionKind::Intersection | JunctionKind::TJunction);
        let has_right_arm = kind == JunctionKind::Intersection;

        // Main-road crossings and where the main road's paint is interrupted.
        let (cross_w_lo, cross_w_hi, cross_e_lo, cross_e_hi) = match kind {
            JunctionKind::Straight => (f64::NAN, f64::NAN, f64::NAN, f64::NAN),
            JunctionKind::MidblockCrossing => {
                let cw = self.rng.random_range(3.0..4.5);
                (xj - cw / 2.0, xj + cw / 2.0, f64::NAN, f64::NAN)
            }
            _ => (xj - hw - side_sw, xj - hw, xj + hw, xj + hw + side_sw),
        };

        // 1. Road surface and sidewalks of the main road.
        self.fill(Rect::new(x_lo, x_hi, kerb_r, kerb_l), Material::Asphalt);
        self.map(Rect::new(x_lo, x_hi, kerb_r, kerb_l), "drivable_area");
        // Sidewalks, interrupted by side-road arms.
        for (side, y0, y1, has_arm) in [
            (-1.0, kerb_r - sw, kerb_r, has_right_arm),
            (1.0, kerb_l, kerb_l + sw, has_left_arm),
        ] {
            let kerb_at = if side < 0.0 { y1 } else { y0 };
            if has_arm {
                self.sidewalk(
                    Rect::new(x_lo, xj - hw, y0, y1),
                    true,
                    Some((false, kerb_at)),
                );
                self.sidewalk(
                    Rect::new(xj + hw, x_hi, y0, y1),
                    true,
                    Some((false, kerb_at)),
                );
            } else {
                self.sidewalk(Rect::new(x_lo, x_hi, y0, y1), true, Some((false, kerb_at)));
            }
        }

        // 2. Side-road arms.
        let mut arm_rects = Vec::new();
        for (present, dir) in [(has_left_arm, 1.0), (has_right_arm, -1.0)] {
            if !present {
                continue;
            }
            let (ya, yb) = if dir > 0.0 {
                (kerb_l, y_extent)
            } else {
                (-y_extent, kerb_r)
            };
            let road = Rect::new(xj - hw, xj + hw, ya, yb);
            arm_rects.push(road);
            self.fill(road, Material::Asphalt);
            self.map(road, "drivable_area");
            // The arm's stop line sits 1 m beyond its crossing (which continues the sidewalk).
            let kerb_y = if dir > 0.0 { kerb_l + sw } else { kerb_r - sw };
            let stop_near = kerb_y + dir * 1.0;
            let far = if dir > 0.0 { y_extent } else { -y_extent };
            // Side-road sidewalks start at the main road's kerb (corners are walkway).
            let (sa, sb) = if dir > 0.0 {
                (kerb_l, y_extent)
            } else {
                (-y_extent, kerb_r)
            };
            self.sidewalk(
                Rect::new(xj - hw - side_sw, xj - hw, sa, sb),
                false,
                Some((true, xj - hw)),
            );
            self.sidewalk(
                Rect::new(xj + hw, xj + hw + side_sw, sa, sb),
                false,
                Some((true, xj + hw)),
            );
            // Crossing over the arm, in line with the main road's sidewalk.
            let cr = if dir > 0.0 {
                Rect::new(xj - hw, xj + hw, kerb_l, kerb_l + sw)
            } else {
                Rect::new(xj - hw, xj + hw, kerb_r - sw, kerb_r)
            };
            self.zebra(cr, true, false);
            // Stop line across the incoming lanes.
            let sl = if dir > 0.0 {
                Rect::new(xj - hw, xj, stop_near, stop_near + STOP_LINE_W)
            } else {
                Rect::new(xj, xj + hw, stop_near - STOP_LINE_W, stop_near)
            };
            self.stop_line(sl);
            // Centre and lane lines from beyond the stop line outwards.
            let (la, lb) = if dir > 0.0 {
                (stop_near + STOP_LINE_W, far)
            } else {
                (far, stop_near - STOP_LINE_W)
            };
            self.centre_line(false, la, lb, xj);
            if side_lanes == 2 {
                self.line(false, la, lb, xj - side_lane_w, Material::WhitePaint, true);
                self.line(false, la, lb, xj + side_lane_w, Material::WhitePaint, true);
            }
        }
        // Side-road lanes: whole lines across the junction. Traffic keeps right, so the lane
        // heading -y is at x < xj and the one heading +y at x > xj. Lines that end at a T
        // junction carry no through traffic.
        if has_left_arm {
            let left_stop = kerb_l + sw + 1.0 + STOP_LINE_W;
            let right_stop = kerb_r - sw - 1.0 - STOP_LINE_W;
            for k in 0..side_lanes {
                let off = (k as f64 + 0.5) * side_lane_w;
                self.lanes.push(Lane {
                    kind: LaneKind::Driving,
                    axis_x: false,
                    dir: -1.0,
                    center: xj - off,
                    width: side_lane_w,
                    lo: if has_right_arm {
                        -y_extent
                    } else {
                        kerb_l + sw + 1.0
                    },
                    hi: y_extent,
                    ego_direction: false,
                    stop_at: Some(left_stop),
                    closed: false,
                    dead_end: !has_right_arm,
                });
                self.lanes.push(Lane {
                    kind: LaneKind::Driving,
                    axis_x: false,
                    dir: 1.0,
                    center: xj + off,
                    width: side_lane_w,
                    lo: if has_right_arm {
                        -y_extent
                    } else {
                        kerb_l + sw + 1.0
                    },
                    hi: y_extent,
                    ego_direction: false,
                    stop_at: if has_right_arm {
                        Some(right_stop)
                    } else {
                        None
                    },
                    closed: false,
                    dead_end: false,
                });
            }
        }
        // The junction box itself.
        if has_left_arm {
            let jb = Rect::new(xj - hw, xj + hw, kerb_r, kerb_l);
            self.fill(jb, Material::Asphalt);
        }

        // 3. Main-road crossings and stop lines.
        let mut no_paint: Vec<(f64, f64)> = Vec::new();
        let mut stop_east_bound = None; // x where ego-direction traffic stops
        let mut stop_west_bound = None;
        if kind != JunctionKind::Straight {
            let west = Rect::new(cross_w_lo, cross_w_hi, kerb_r, kerb_l);
            self.zebra(west, false, true);
            let sl0 = cross_w_lo - 1.0 - STOP_LINE_W;
            self.stop_line(Rect::new(sl0, sl0 + STOP_LINE_W, kerb_r, 0.0));
            stop_east_bound = Some(sl0);
            let (e_lo, e_hi) = if cross_e_lo.is_nan() {
                (cross_w_lo, cross_w_hi)
            } else {
                (cross_e_lo, cross_e_hi)
            };
            if !cross_e_lo.is_nan() {
                let east = Rect::new(e_lo, e_hi, kerb_r, kerb_l);
                self.zebra(east, false, true);
            }
            let sl1 = e_hi + 1.0;
            self.stop_line(Rect::new(sl1, sl1 + STOP_LINE_W, 0.0, kerb_l));
            stop_west_bound = Some(sl1 + STOP_LINE_W);
            no_paint.push((sl0, sl1 + STOP_LINE_W));
        }

        // 4. Lanes of the main road, right side first (ego direction), outward.
        let segments = |lo: f64, hi: f64, gaps: &[(f64, f64)]| -> Vec<(f64, f64)> {
            let mut out = vec![(lo, hi)];
            for &(g0, g1) in gaps {
                out = out
                    .into_iter()
                    .flat_map(|(a, b)| {
                        let mut v = Vec::new();
                        if g0 > a {
                            v.push((a, g0.min(b)));
                        }
                        if g1 < b {
                            v.push((g1.max(a), b));
                        }
                        v
                    })
                    .filter(|(a, b)| b - a > 0.5)
                    .collect();
            }
            out
        };
        let paint_segments = segments(x_lo, x_hi, &no_paint);
        for &(a, b) in &paint_segments {
            self.centre_line(true, a, b, 0.0);
        }
        for side in [-1.0f64, 1.0] {
            let n = if side < 0.0 { n_right } else { n_left };
            let parking = if side < 0.0 { park_right } else { park_left };
            let dir = -side; // right side (y < 0) drives +x
            let mut y = 0.0;
            for k in 0..n {
                let c = side * (y + lane_w / 2.0);
                self.lanes.push(Lane {
                    kind: LaneKind::Driving,
                    axis_x: true,
                    dir,
                    center: c,
                    width: lane_w,
                    lo: x_lo,
                    hi: x_hi,
                    ego_direction: side < 0.0,
                    stop_at: if side < 0.0 {
                        stop_east_bound
                    } else {
                        stop_west_bound
                    },
                    closed: false,
                    dead_end: false,
                });
                y += lane_w;
                if k + 1 < n {
                    for &(a, b) in &paint_segments {
                        self.line(true, a, b, side * y, Material::WhitePaint, true);
                    }
                }
            }
            if bike {
                for &(a, b) in &paint_segments {
                    self.line(true, a, b, side * y, Material::WhitePaint, false);
                }
                self.lanes.push(Lane {
                    kind: LaneKind::Bike,
                    axis_x: true,
                    dir,
                    center: side * (y + bike_w / 2.0),
                    width: bike_w,
                    lo: x_lo,
                    hi: x_hi,
                    ego_direction: side < 0.0,
                    stop_at: if side < 0.0 {
                        stop_east_bound
                    } else {
                        stop_west_bound
                    },
                    closed: false,
                    dead_end: false,
                });
                y += bike_w;
            }
            if parking {
                // Parking lane: a solid edge line; bays end before junction areas.
                for &(a, b) in &paint_segments {
                    self.line(true, a, b, side * y, Material::WhitePaint, false);
                }
                for &(a, b) in &paint_segments {
                    self.lanes.push(Lane {
                        kind: LaneKind::Parking,
                        axis_x: true,
                        dir,
                        center: side * (y + park_w / 2.0),
                        width: park_w,
                        lo: a + 2.0,
                        hi: b - 2.0,
                        ego_direction: side < 0.0,
                        stop_at: None,
                        closed: false,
                        dead_end: false,
                    });
                }
            }
        }

        // 5. Car park behind one sidewalk, away from side-road arms.
        let carpark = self.carpark(kerb_r, kerb_l, sw, &arm_rects, x_lo, x_hi, y_extent);

        // 6. Building plots: strips behind the sidewalks, minus arms and car park.
        for (side, y_near) in [(-1.0, kerb_r - sw), (1.0, kerb_l + sw)] {
            let setback = self.rng.random_range(0.3..3.0);
            let depth = 22.0;
            let (ya, yb) = if side < 0.0 {
                (y_near - setback - depth, y_near - setback)
            } else {
                (y_near + setback, y_near + setback + depth)
            };
            let mut gaps = Vec::new();
            for a in &arm_rects {
                gaps.push((a.x0 - side_sw - 2.0, a.x1 + side_sw + 2.0));
            }
            if let Some(cp) = &carpark {
                if (cp.rect.cy() > 0.0) == (side > 0.0) {
                    gaps.push((cp.rect.x0 - 2.0, cp.rect.x1 + 2.0));
                }
            }
            for (a, b) in segments(x_lo, x_hi, &gaps) {
                self.plots.push((Rect::new(a, b, ya, yb), side));
            }
        }

        // 7. Road works closing one lane (never the ego's candidate lanes' only option).
        let roadworks = self.roadworks(x_lo, x_hi, &no_paint);

        let index = GridIndex::build(bounds, &self.patches, &self.maps);
        Layout {
            kind,
            bounds,
            patches: self.patches,
            map_patches: self.maps,
            lanes: self.lanes,
            walks: self.walks,
            crossings: self.crossings,
            carpark,
            plots: self.plots,
            roadworks,
            junction: Junction {
                kind,
                x: xj,
                side_half_width: hw,
            },
            kerb_right: kerb_r,
            kerb_left: kerb_l,
            sidewalk_width: sw,
            index,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn carpark(
        &mut self,
        kerb_r: f64,
        kerb_l: f64,
        sw: f64,
        arms: &[Rect],
        x_lo: f64,
        x_hi: f64,
        y_extent: f64,
    ) -> Option<Carpark> {
        if !self.rng.random_bool(0.45) {
            return None;
        }
        let side = if self.rng.random_bool(0.5) { 1.0 } else { -1.0 };
        let len = self.rng.random_range(40.0..70.0);
        let verge = 1.0;
        let y_near = if side > 0.0 {
            kerb_l + sw + verge
        } else {
            kerb_r - sw - verge
        };
        let bay_d = 5.0;
        let aisle = 6.5;
        // Rows from the road: bay row, aisle, double bay row, aisle, bay row.
        let rows: [(bool, f64); 5] = [
            (true, bay_d),
            (false, aisle),
            (true, 2.0 * bay_d),
            (false, aisle),
            (true, bay_d),
        ];
        let depth: f64 = rows.iter().map(|r| r.1).sum();
        if y_near.abs() + depth > y_extent - 1.0 {
            return None;
        }
        let mid = 0.5 * self.p.path_length;
        for _ in 0..10 {
            let x0 = self.rng.random_range(
                (mid - 50.0).max(x_lo + 5.0)..(mid + 20.0).min(x_hi - len - 5.0).max(x_lo + 6.0),
            );
            let (ya, yb) = if side > 0.0 {
                (y_near, y_near + depth)
            } else {
                (y_near - depth, y_near)
            };
            let rect = Rect::new(x0, x0 + len, ya, yb);
            if arms.iter().any(|a| a.grow(6.0).intersects(&rect)) {
                continue;
            }
            self.fill(rect, Material::CarparkAsphalt);
            self.map(rect, "carpark_area");
            self.map(rect, "drivable_area");
            // Driveway from the road through the sidewalk into the first aisle.
            let dw = 6.0;
            let dx = self.rng.random_range(x0 + 3.0..x0 + len - dw - 3.0);
            let (dya, dyb) = if side > 0.0 {
                (kerb_l, y_near + bay_d)
            } else {
                (y_near - bay_d, kerb_r)
            };
            let drive = Rect::new(dx, dx + dw, dya, dyb);
            self.fill(drive, Material::CarparkAsphalt);
            self.map(drive, "drivable_area");
            let bay_w = 2.6;
            // Row extents (from the road outwards), then the aisles, then the bays whose
            // cars point their nose at the nearest aisle.
            let mut row_rects = Vec::new();
            let mut d = 0.0;
            for (is_bay, w) in rows {
                let (r0, r1) = if side > 0.0 {
                    (y_near + d, y_near + d + w)
                } else {
                    (y_near - d - w, y_near - d)
                };
                row_rects.push((is_bay, r0, r1));
                d += w;
            }
            let aisles: Vec<Rect> = row_rects
                .iter()
                .filter(|r| !r.0)
                .map(|&(_, r0, r1)| Rect::new(x0, x0 + len, r0, r1))
                .collect();
            let mut bays = Vec::new();
            for &(is_bay, r0, r1) in &row_rects {
                if !is_bay {
                    continue;
                }
                let sub = if r1 - r0 > bay_d + 0.1 {
                    vec![(r0, r0 + bay_d), (r0 + bay_d, r1)]
                } else {
                    vec![(r0, r1)]
                };
                for (s0, s1) in sub {
                    let n = ((len - 1.0) / bay_w).floor() as usize;
                    let yc = 0.5 * (s0 + s1);
                    let nearest = aisles
                        .iter()
                        .map(|a| a.cy())
                        .min_by(|a, b| (a - yc).abs().total_cmp(&(b - yc).abs()))
                        .unwrap_or(yc + 1.0);
                    let yaw = if nearest > yc {
                        std::f64::consts::FRAC_PI_2
                    } else {
                        -std::f64::consts::FRAC_PI_2
                    };
                    for k in 0..=n {
                        let lx = x0 + 0.5 + k as f64 * bay_w;
                        // Bay separator lines (white, along y).
                        self.paint(
                            Rect::new(lx - 0.06, lx + 0.06, s0 + 0.3, s1 - 0.3),
                            Material::WhitePaint,
                            Pattern::Solid,
                        );
                        if k < n
                            && !drive
                                .grow(0.5)
                                .intersects(&Rect::new(lx, lx + bay_w, s0, s1))
                        {
                            bays.push(Bay {
                                x: lx + bay_w / 2.0,
                                y: yc,
                                yaw,
                                width: bay_w,
                                depth: bay_d,
                            });
                        }
                    }
                }
            }
            return Some(Carpark {
                rect,
                bays,
                aisles,
                entrance: drive,
            });
        }
        None
    }

    fn roadworks(&mut self, x_lo: f64, x_hi: f64, no_paint: &[(f64, f64)]) -> Option<Roadworks> {
        if !self.rng.random_bool(0.5) {
            return None;
        }
        // Candidates: driving lanes of the main road that are not the last open lane in their
        // direction, and parking lanes.
        let cands: Vec<usize> = self
            .lanes
            .iter()
            .enumerate()
            .filter(|(_, l)| l.axis_x && l.kind != LaneKind::Bike)
            .filter(|(_, l)| {
                l.kind == LaneKind::Parking
                    || self
                        .lanes
                        .iter()
                        .filter(|o| o.axis_x && o.kind == LaneKind::Driving && o.dir == l.dir)
                        .count()
                        > 1
            })
            .map(|(i, _)| i)
            .collect();
        if cands.is_empty() {
            return None;
        }
        let li = cands[self.rng.random_range(0..cands.len())];
        let len = self.rng.random_range(14.0..32.0);
        let mid = 0.5 * self.p.path_length;
        for _ in 0..10 {
            let x0 = self.rng.random_range(
                (mid - 35.0).max(x_lo + 5.0)..(mid + 25.0).min(x_hi - len - 5.0).max(x_lo + 6.0),
            );
            if no_paint
                .iter()
                .any(|&(a, b)| x0 < b + 8.0 && a - 8.0 < x0 + len)
            {
                continue;
            }
            let lane = &self.lanes[li];
            if x0 < lane.lo || x0 + len > lane.hi {
                continue;
            }
            let rect = Rect::new(
                x0,
                x0 + len,
                lane.center - lane.width / 2.0,
                lane.center + lane.width / 2.0,
            );
            // Open traffic is on the side towards the road centre.
            let open_side = if lane.center < 0.0 { 1.0 } else { -1.0 };
            if lane.kind == LaneKind::Driving {
                self.lanes[li].closed = true;
            }
            return Some(Roadworks {
                rect,
                lane: li,
                open_side,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn layouts() -> Vec<Layout> {
        (0..40)
            .map(|s| {
                let mut rng = ChaCha8Rng::seed_from_u64(s);
                Layout::generate(
                    &mut rng,
                    &LayoutParams {
                        path_length: 60.0,
                        junction_x: 35.0,
                        margin: 80.0,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn every_kind_and_map_class_appears_and_queries_are_consistent() {
        let ls = layouts();
        let mut kinds = std::collections::BTreeSet::new();
        let mut class_seen = [false; 6];
        for l in &ls {
            kinds.insert(format!("{:?}", l.kind));
            // The ego's lane centre is drivable asphalt at road height; sidewalks are raised walkway.
            let ego_lane = l
                .lanes
                .iter()
                .find(|ln| ln.ego_direction && ln.kind == LaneKind::Driving)
                .unwrap();
            assert_eq!(l.map_bits(10.0, ego_lane.center) & 1, 1);
            assert_eq!(l.height(10.0, ego_lane.center), 0.0);
            for w in &l.walks {
                // Sidewalks are raised walkway, except where a car-park driveway crosses them.
                let mut raised = 0;
                for k in 0..20 {
                    let f = (k as f64 + 0.5) / 20.0;
                    let (x, y) = if w.axis_x {
                        (w.rect.x0 + f * w.rect.w(), w.rect.cy())
                    } else {
                        (w.rect.cx(), w.rect.y0 + f * w.rect.h())
                    };
                    assert_ne!(l.map_bits(x, y) & bit("walkway"), 0);
                    let m = l.material(x, y);
                    assert!(m.raised() || m == Material::CarparkAsphalt, "{m:?}");
                    raised += m.raised() as usize;
                }
                assert!(raised >= 17, "{raised}");
            }
            for c in &l.crossings {
                assert_ne!(
                    l.map_bits(c.rect.cx(), c.rect.cy()) & bit("ped_crossing"),
                    0
                );
            }
            for m in &l.map_patches {
                for k in 0..6 {
                    if m.bits & (1 << k) != 0 {
                        class_seen[k] = true;
                    }
                }
            }
            assert_eq!(l.map_bits(1e6, 0.0), 0);
            assert_eq!(l.material(1e6, 0.0), Material::Grass);
        }
        assert_eq!(kinds.len(), 4, "{kinds:?}");
        assert!(class_seen.iter().all(|&s| s), "{class_seen:?}");
        assert!(ls
            .iter()
            .any(|l| l.carpark.as_ref().is_some_and(|c| c.bays.len() > 20)));
        assert!(ls.iter().any(|l| l.roadworks.is_some()));
    }

    #[test]
    fn dashed_lane_lines_alternate() {
        let p = Pattern::Dashes {
            along_x: true,
            period: 9.0,
            on: 3.0,
            phase: 0.0,
        };
        assert!(p.on(1.0, 0.0) && !p.on(4.0, 0.0) && p.on(9.5, 0.0) && p.on(-7.0, 0.0));
    }
}
