"""Starts bevfusion_node with its parameter file (the Python twin of bevfusion.launch.xml).

    ros2 launch altermoma_bevfusion bevfusion.launch.py model_path:=/path/to/model.safetensors
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = "altermoma_bevfusion"
EXECUTABLE = "bevfusion_node"
PARAM_FILE = ("config", "bevfusion_node.param.yaml")
NUM_CAMERAS = 6


def generate_launch_description():
    share = FindPackageShare(PACKAGE)
    args = [
        DeclareLaunchArgument("param_file", default_value=PathJoinSubstitution([share, *PARAM_FILE]),
                              description="node parameters"),
        DeclareLaunchArgument("model_path", default_value=PathJoinSubstitution([share, "models", "model.safetensors"]),
                              description="checkpoint (dense, masked or structured-pruned)"),
        DeclareLaunchArgument("device", default_value="auto", description="auto, cpu, cuda or cuda:N"),
        DeclareLaunchArgument("node_name", default_value="bevfusion_node"),
        DeclareLaunchArgument("input/pointcloud", default_value="/sensing/lidar/top/pointcloud"),
        DeclareLaunchArgument("output/objects",
                              default_value="/perception/object_recognition/detection/bevfusion/objects"),
        DeclareLaunchArgument("output/bev_segmentation", default_value="/perception/bev_segmentation"),
        DeclareLaunchArgument("output/markers",
                              default_value="/perception/object_recognition/detection/bevfusion/markers"),
    ]
    remappings = [("~/input/pointcloud", LaunchConfiguration("input/pointcloud"))]
    for i in range(NUM_CAMERAS):
        args.append(DeclareLaunchArgument(f"input/image{i}",
                                          default_value=f"/sensing/camera/camera{i}/image_rect_color"))
        args.append(DeclareLaunchArgument(f"input/camera_info{i}",
                                          default_value=f"/sensing/camera/camera{i}/camera_info"))
        remappings.append((f"~/input/image_{i}", LaunchConfiguration(f"input/image{i}")))
        remappings.append((f"~/input/camera_info_{i}", LaunchConfiguration(f"input/camera_info{i}")))
    for out in ("objects", "bev_segmentation", "markers"):
        remappings.append((f"~/output/{out}", LaunchConfiguration(f"output/{out}")))
    node = Node(
        package=PACKAGE,
        executable=EXECUTABLE,
        name=LaunchConfiguration("node_name"),
        output="screen",
        parameters=[
            LaunchConfiguration("param_file"),
            {"model_path": LaunchConfiguration("model_path"), "device": LaunchConfiguration("device")},
        ],
        remappings=remappings,
    )
    return LaunchDescription([*args, node])
