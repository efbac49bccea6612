//! Geometry shared by the data, the model, the metrics and the node.
pub mod box3d;
pub mod bev_grid;

pub use bev_grid::BevGrid;
pub use box3d::Box3D;
