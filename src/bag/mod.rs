//! rosbag2 reading and writing (metadata.yaml + MCAP or sqlite3) and CDR (issue #8).
