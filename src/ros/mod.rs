//! ROS 2 side (r2r): message conversion, the node, `altermoma play` (issue #7).
