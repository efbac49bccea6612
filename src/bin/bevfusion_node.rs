//! The ROS 2 node. All work lives in the library; see `altermoma::ros::node`.
use altermoma::ros::params::{load_params, parse_ros_args};
use clap::Parser;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const ABOUT: &str =
    "BEVFusion ROS 2 node: camera images + LiDAR point cloud in, 3D detections and BEV segmentation out";

const LONG_ABOUT: &str = "\
BEVFusion ROS 2 node: camera images + LiDAR point cloud in, 3D detections and BEV segmentation out.

Each PointCloud2 triggers a frame; the newest image of each camera joins it when within
max_camera_lidar_delay, otherwise that camera is masked (LiDAR-only when none is usable);
without clouds for lidar_timeout the node runs camera-only. The node always processes the
newest frame and counts the ones it had to drop.

Inputs:   ~/input/pointcloud (sensor_msgs/PointCloud2)
          ~/input/image_<i> (sensor_msgs/Image, or CompressedImage with transport: compressed)
          ~/input/camera_info_<i> (sensor_msgs/CameraInfo)
Outputs:  ~/output/objects (altermoma_msgs/Detection3DArray)
          ~/output/bev_segmentation (altermoma_msgs/BevSegmentation)
          ~/output/occupancy/<class> (nav_msgs/OccupancyGrid, publish_occupancy_grids: true)
          ~/output/markers (visualization_msgs/MarkerArray)
          ~/debug/processing_time (altermoma_msgs/ProcessingTime)
          /diagnostics (diagnostic_msgs/DiagnosticArray)

Parameters come from config/bevfusion_node.param.yaml-style files (--params-file, or
--ros-args --params-file FILE) and --ros-args -p name:=value; remap topics with
--ros-args -r ~/input/pointcloud:=/sensing/lidar/top/pointcloud.

Example:
  bevfusion_node --ros-args --params-file config/bevfusion_node.param.yaml -p device:=cuda:0";

#[derive(Parser, Debug)]
#[command(name = "bevfusion_node", version, about = ABOUT, long_about = LONG_ABOUT)]
struct Args {
    /// Node parameter file (as `--ros-args --params-file FILE`; both may be given, later wins).
    #[arg(long)]
    params_file: Option<PathBuf>,
    /// Validate the parameters, print them and exit without starting ROS 2.
    #[arg(long)]
    check_params: bool,
}

fn main() -> std::process::ExitCode {
    altermoma::logging::init();
    altermoma::host_memory::retain_freed_memory();
    // before anything asks libtorch about CUDA (see `load_torch_cuda`)
    altermoma::device::load_torch_cuda();
    let argv: Vec<String> = std::env::args().collect();
    // clap sees what comes before the first --ros-args; rcl (and parse_ros_args) the rest.
    let split = argv.iter().position(|a| a == "--ros-args").unwrap_or(argv.len());
    let args = Args::parse_from(&argv[..split]);
    match run(args, &argv) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bevfusion_node: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args, argv: &[String]) -> anyhow::Result<()> {
    let ros = parse_ros_args(argv).map_err(|e| anyhow::anyhow!("--ros-args: {e}"))?;
    let mut files: Vec<PathBuf> = args.params_file.into_iter().collect();
    files.extend(ros.params_files.iter().cloned());
    if files.is_empty() {
        anyhow::bail!("no parameter file: pass --params-file FILE or --ros-args --params-file FILE");
    }
    let name = ros.node_name.as_deref().unwrap_or(altermoma::ros::node::NODE_NAME);
    let ns = ros.namespace.as_deref().unwrap_or("/");
    let params = load_params(&files, &ros.overrides, name, ns)?;
    if args.check_params {
        println!("{params:#?}");
        return Ok(());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let node = {
        let stop = stop.clone();
        let p = params.clone();
        std::thread::Builder::new().name("ros-spin".into()).spawn(move || {
            let make = Box::new(move || {
                altermoma::pipeline::loader::load_pipeline(
                    &p.model_path,
                    &p.device,
                    p.fp16,
                    p.num_threads,
                    p.pipeline_options(),
                )
            });
            altermoma::ros::node::run(params, make, stop)
        })?
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {
                    if node.is_finished() { break; }
                }
            }
        }
        anyhow::Ok(())
    })?;
    stop.store(true, Ordering::Relaxed);
    node.join().map_err(|_| anyhow::anyhow!("the ROS thread panicked"))?
}
