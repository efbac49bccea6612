//! Geometry shared by the data, the model, the metrics and the node.
pub mod bev_grid;
pub mod box3d;

pub use bev_grid::BevGrid;
pub use box3d::Box3D;
