//! The pruning study behind `altermoma experiment` (issue #6).
