//! The ROS 2 node. All work lives in the library; see `altermoma::ros`.
use clap::Parser;

/// BEVFusion ROS 2 node: camera images + LiDAR point cloud in, 3D detections and BEV
/// segmentation out.
#[derive(Parser, Debug)]
#[command(name = "bevfusion_node", version)]
struct Args {
    /// Node parameter file (config/bevfusion_node.param.yaml layout).
    #[arg(long, default_value = "config/bevfusion_node.param.yaml")]
    params_file: std::path::PathBuf,
    /// ROS arguments (`--ros-args ...`) are accepted and passed to rcl.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    ros_args: Vec<String>,
}

fn main() -> std::process::ExitCode {
    altermoma::logging::init();
    let args = Args::parse();
    eprintln!(
        "bevfusion_node: not implemented yet (issue #7); params file {}",
        args.params_file.display()
    );
    std::process::ExitCode::FAILURE
}
