//! Guard for processes that start ROS 2 participants on development and CI machines.
//!
//! DDS discovery multicasts; on a machine with a routed interface that traffic must never
//! leave. `tests/netns.sh` runs a command in a private network namespace with loopback only;
//! this module lets a process check that it is inside such a namespace before it creates a
//! participant (the ROS test harness does so and re-executes itself through the wrapper when
//! it is not).

use std::path::PathBuf;

/// Names of the network interfaces visible to this process (from `/proc/self/net/dev`,
/// which reflects the process's own network namespace).
pub fn interfaces() -> std::io::Result<Vec<String>> {
    let text = std::fs::read_to_string("/proc/self/net/dev")?;
    Ok(text
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

/// Why this process is not safely isolated, or None when it is: the only interface is `lo`
/// and `ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`.
pub fn isolation_problem() -> Option<String> {
    match interfaces() {
        Err(e) => Some(format!("cannot read /proc/self/net/dev: {e}")),
        Ok(ifs) => {
            let others: Vec<_> = ifs.iter().filter(|i| *i != "lo").cloned().collect();
            if !others.is_empty() {
                return Some(format!(
                    "network interfaces other than lo are visible: {}",
                    others.join(", ")
                ));
            }
            match std::env::var("ROS_AUTOMATIC_DISCOVERY_RANGE") {
                Ok(v) if v == "LOCALHOST" => None,
                Ok(v) => Some(format!(
                    "ROS_AUTOMATIC_DISCOVERY_RANGE is {v}, not LOCALHOST"
                )),
                Err(_) => Some("ROS_AUTOMATIC_DISCOVERY_RANGE is not set to LOCALHOST".into()),
            }
        }
    }
}

/// True inside a loopback-only namespace with localhost discovery.
pub fn is_isolated() -> bool {
    isolation_problem().is_none()
}

/// Path of the wrapper script (`tests/netns.sh` in the source tree).
pub fn wrapper_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("netns.sh")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_always_listed() {
        let ifs = interfaces().unwrap();
        assert!(ifs.iter().any(|i| i == "lo"), "{ifs:?}");
    }

    #[test]
    fn wrapper_exists() {
        assert!(wrapper_path().exists());
    }
}
