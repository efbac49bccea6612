//! rosbag2 reading and writing (metadata.yaml + MCAP or sqlite3) and CDR (issue #8).
//!
//! - [`cdr`]: bounds-checked CDR reader/writer and the `cdr_message!` layout macro.
//! - [`messages`]: the message types bags carry into the pipeline, decoded into r2r structs.
pub mod cdr;
#[cfg(feature = "ros")]
pub mod frames;
pub mod mcap;
#[cfg(feature = "ros")]
pub mod messages;
pub mod metadata;
pub mod msgdef;
#[cfg(feature = "ros")]
pub mod player;
pub mod reader;
#[cfg(feature = "ros")]
pub mod scene_writer;
pub mod sqlite;
pub mod writer;

pub use reader::{Bag, Issue, Location, MessageRef, Topic};
pub use writer::{BagWriter, StorageKind, TopicId};
#[cfg(all(test, feature = "ros"))]
mod tests;
