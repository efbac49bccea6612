//! The per-frame pipeline shared by the ROS node, `altermoma infer` and bag replay.
