//! The bird's-eye-view grid convention used by every BEV tensor, mask and message.
//!
//! A BEV tensor is `[C, NX, NY]`: index `i` along dim -2 runs along +x (forward),
//! index `j` along dim -1 runs along +y (left). Cell `(i, j)` covers
//! `x in [x_min + i*res, x_min + (i+1)*res)`, `y in [y_min + j*res, y_min + (j+1)*res)`.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BevGrid {
    pub x_min: f64,
    pub x_max: f64,
    pub y_min: f64,
    pub y_max: f64,
    /// metres per cell.
    pub resolution: f64,
}

impl BevGrid {
    pub fn nx(&self) -> usize {
        ((self.x_max - self.x_min) / self.resolution).round() as usize
    }
    pub fn ny(&self) -> usize {
        ((self.y_max - self.y_min) / self.resolution).round() as usize
    }
    /// Cell of a point, or None outside the grid.
    pub fn cell(&self, x: f64, y: f64) -> Option<(usize, usize)> {
        if x < self.x_min || x >= self.x_max || y < self.y_min || y >= self.y_max {
            return None;
        }
        let i = ((x - self.x_min) / self.resolution) as usize;
        let j = ((y - self.y_min) / self.resolution) as usize;
        (i < self.nx() && j < self.ny()).then_some((i, j))
    }
    /// Centre of a cell.
    pub fn center(&self, i: usize, j: usize) -> (f64, f64) {
        (
            self.x_min + (i as f64 + 0.5) * self.resolution,
            self.y_min + (j as f64 + 0.5) * self.resolution,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_round_trip() {
        let g = BevGrid {
            x_min: -10.0,
            x_max: 10.0,
            y_min: -5.0,
            y_max: 5.0,
            resolution: 0.5,
        };
        assert_eq!((g.nx(), g.ny()), (40, 20));
        let (x, y) = g.center(3, 7);
        assert_eq!(g.cell(x, y), Some((3, 7)));
        assert_eq!(g.cell(10.0, 0.0), None);
        assert_eq!(g.cell(-10.0, -5.0), Some((0, 0)));
    }
}
