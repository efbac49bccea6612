//! ROS 2 side (r2r): message conversion, the `bevfusion_node` node, its parameters, RViz
//! markers and diagnostics.
pub mod camera_info;
pub mod convert;
pub mod detections;
pub mod diagnostics;
pub mod image;
pub mod markers;
pub mod native_cloud;
pub mod native_image;
pub mod node;
pub mod params;
pub mod pointcloud;
pub mod segmentation;
pub mod sync;
pub mod tf_static;
