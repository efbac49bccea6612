#!/usr/bin/env python3
"""Independent rosbag2 peer for the bag tests and `altermoma bench bag`, using `rosbags`.

    rosbags_peer.py read  BAG OUT.json          read every message, dump topics and values
    rosbags_peer.py write BAG OUT.json STORAGE  write a bag of sensor and altermoma_msgs
                                                messages (STORAGE: mcap, mcap-zstd,
                                                mcap-file, sqlite3, sqlite3-message) and
                                                dump what was written
    rosbags_peer.py bench BAG [REPEATS]         full deserialisation of every message;
                                                prints one JSON line with MB/s

Values are dumped as JSON: messages as objects with their ROS field names, arrays as lists.
Our message definitions (msg/msg/*.msg) are registered for writing; reading takes the
definitions stored in the bag (AnyReader), as any rosbags user would.
"""

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

ROOT = Path(__file__).resolve().parents[2]


def to_json(v):
    if isinstance(v, np.ndarray):
        return [to_json(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [to_json(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if dataclasses.is_dataclass(v):
        # Message constants are declared as ClassVar (in string annotations): not fields.
        return {
            f.name: to_json(getattr(v, f.name))
            for f in dataclasses.fields(v)
            if "ClassVar" not in str(f.type) and f.name != "__msgtype__"
        }
    raise TypeError(f"cannot dump {type(v)}")


def typestore():
    ts = get_typestore(Stores.ROS2_JAZZY)
    types = {}
    for p in sorted((ROOT / "msg" / "msg").glob("*.msg")):
        types.update(get_types_from_msg(p.read_text(), f"altermoma_msgs/msg/{p.stem}"))
    ts.register(types)
    return ts


def read(bag, out):
    result = {"topics": {}, "messages": []}
    with AnyReader([Path(bag)]) as r:
        for name, info in r.topics.items():
            result["topics"][name] = {"type": info.msgtype, "count": info.msgcount}
        for conn, ts, raw in r.messages():
            msg = r.deserialize(raw, conn.msgtype)
            result["messages"].append({"topic": conn.topic, "t": ts, "msg": to_json(msg)})
    Path(out).write_text(json.dumps(result))


def write(bag, out, storage):
    ts = typestore()
    T = ts.types
    Time = T["builtin_interfaces/msg/Time"]
    Header = T["std_msgs/msg/Header"]
    Point = T["geometry_msgs/msg/Point"]
    Quat = T["geometry_msgs/msg/Quaternion"]
    Pose = T["geometry_msgs/msg/Pose"]
    Vec3 = T["geometry_msgs/msg/Vector3"]
    PointField = T["sensor_msgs/msg/PointField"]
    PointCloud2 = T["sensor_msgs/msg/PointCloud2"]
    Image = T["sensor_msgs/msg/Image"]
    CompressedImage = T["sensor_msgs/msg/CompressedImage"]
    CameraInfo = T["sensor_msgs/msg/CameraInfo"]
    ROI = T["sensor_msgs/msg/RegionOfInterest"]
    Det = T["altermoma_msgs/msg/Detection3D"]
    Seg = T["altermoma_msgs/msg/BevSegmentation"]
    GT = T["altermoma_msgs/msg/FrameGroundTruth"]
    Rig = T["altermoma_msgs/msg/RigCalibration"]
    TF = T["tf2_msgs/msg/TFMessage"]
    TransformStamped = T["geometry_msgs/msg/TransformStamped"]
    Transform = T["geometry_msgs/msg/Transform"]

    rng = np.random.default_rng(5)
    t0 = 1_700_000_000_000_000_000

    def header(i, frame):
        t = t0 + i * 100_000_000
        return Header(stamp=Time(sec=t // 10**9, nanosec=t % 10**9), frame_id=frame)

    def pose(x, yaw):
        return Pose(
            position=Point(x=float(x), y=-1.5, z=0.25),
            orientation=Quat(x=0.0, y=0.0, z=float(np.sin(yaw / 2)), w=float(np.cos(yaw / 2))),
        )

    def det(k):
        return Det(
            class_name=["car", "pedestrian", "barrier"][k % 3],
            class_id=k % 3,
            score=1.0,
            pose=pose(3.0 * k, 0.1 * k),
            size=Vec3(x=4.0 + k, y=1.8, z=1.5),
            velocity=Vec3(x=0.5 * k, y=0.0, z=0.0),
            attribute_name="vehicle.moving" if k % 3 == 0 else "",
        )

    plugin = StoragePlugin.SQLITE3 if storage.startswith("sqlite3") else StoragePlugin.MCAP
    w = Writer(Path(bag), version=8 if storage != "mcap-zstd" else 9, storage_plugin=plugin)
    if storage == "mcap-zstd":
        w.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    elif storage == "mcap-file":
        w.set_compression(CompressionMode.FILE, CompressionFormat.ZSTD)
    elif storage == "sqlite3-message":
        w.set_compression(CompressionMode.MESSAGE, CompressionFormat.ZSTD)
    written = []
    with w:
        conns = {}
        for topic, typ in [
            ("/calibration", "altermoma_msgs/msg/RigCalibration"),
            ("/tf_static", "tf2_msgs/msg/TFMessage"),
            ("/lidar_top", "sensor_msgs/msg/PointCloud2"),
            ("/cam_front/image", "sensor_msgs/msg/Image"),
            ("/cam_front/compressed", "sensor_msgs/msg/CompressedImage"),
            ("/cam_front/camera_info", "sensor_msgs/msg/CameraInfo"),
            ("/ground_truth", "altermoma_msgs/msg/FrameGroundTruth"),
        ]:
            conns[topic] = w.add_connection(topic, typ, typestore=ts)

        def put(topic, t, msg):
            w.write(conns[topic], t, ts.serialize_cdr(msg, msg.__msgtype__))
            written.append({"topic": topic, "t": t, "msg": to_json(msg)})

        put("/calibration", t0, Rig(header=header(0, "lidar_top"), camera_names=["CAM_FRONT"], camera_to_lidar=[pose(1.0, -1.57)]))

        def tf(parent, child, x, yaw):
            p = pose(x, yaw)
            return TransformStamped(
                header=header(0, parent),
                child_frame_id=child,
                transform=Transform(translation=Vec3(x=p.position.x, y=p.position.y, z=p.position.z), rotation=p.orientation),
            )

        put("/tf_static", t0, TF(transforms=[tf("base_link", "lidar_top", 0.9, 0.01), tf("base_link", "cam_front", 1.5, -1.57)]))
        for i in range(6):
            t = t0 + i * 100_000_000
            n = 50 + i
            pts = rng.normal(size=(n, 4)).astype(np.float32)
            put(
                "/cam_front/camera_info",
                t + 1_000_000,
                CameraInfo(
                    header=header(i, "cam_front"),
                    height=8,
                    width=12,
                    distortion_model="plumb_bob",
                    d=np.array([0.01, -0.02, 0.0, 0.0, 0.0]),
                    k=np.array([10.0 + i, 0.0, 6.0, 0.0, 10.0, 4.0, 0.0, 0.0, 1.0]),
                    r=np.eye(3).flatten(),
                    p=np.array([10.0, 0.0, 6.0, 0.0, 0.0, 10.0, 4.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
                    binning_x=0,
                    binning_y=0,
                    roi=ROI(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
                ),
            )
            put(
                "/cam_front/image",
                t + 2_000_000,
                Image(
                    header=header(i, "cam_front"),
                    height=8,
                    width=12,
                    encoding="rgb8",
                    is_bigendian=0,
                    step=36,
                    data=rng.integers(0, 256, size=8 * 36, dtype=np.uint8),
                ),
            )
            put(
                "/cam_front/compressed",
                t + 3_000_000,
                CompressedImage(header=header(i, "cam_front"), format="jpeg", data=rng.integers(0, 256, size=40 + i, dtype=np.uint8)),
            )
            put(
                "/lidar_top",
                t + 5_000_000,
                PointCloud2(
                    header=header(i, "lidar_top"),
                    height=1,
                    width=n,
                    fields=[PointField(name=c, offset=4 * k, datatype=7, count=1) for k, c in enumerate(["x", "y", "z", "intensity"])],
                    is_bigendian=False,
                    point_step=16,
                    row_step=16 * n,
                    data=np.frombuffer(pts.tobytes(), dtype=np.uint8),
                    is_dense=True,
                ),
            )
            seg = Seg(
                header=header(i, "lidar_top"),
                class_names=["drivable_area", "divider"],
                origin=pose(-10.0, 0.0),
                resolution=0.5,
                rows=2,
                cols=3,
                thresholds=np.array([0.5, 0.5], dtype=np.float32),
                data=rng.integers(0, 2, size=12, dtype=np.uint8) * 255,
            )
            put(
                "/ground_truth",
                t + 5_000_000,
                GT(
                    header=header(i, "lidar_top"),
                    sample_token=f"sample-{i}",
                    scene_token="scene-0",
                    ego_to_global=pose(100.0 + i, 0.3),
                    lidar_to_ego=pose(0.9, 0.0),
                    boxes=[det(k) for k in range(i % 4)],
                    instance_tokens=[f"inst-{k}" for k in range(i % 4)],
                    num_lidar_pts=np.array([10 * k for k in range(i % 4)], dtype=np.uint32),
                    visibility=np.array([1 + k % 4 for k in range(i % 4)], dtype=np.uint8),
                    map=seg,
                ),
            )
    counts = {}
    for m in written:
        counts[m["topic"]] = counts.get(m["topic"], 0) + 1
    Path(out).write_text(json.dumps({"topics": counts, "messages": written}))


def bench(bag, repeats):
    best = None
    total_bytes = 0
    count = 0
    for _ in range(repeats):
        t = time.perf_counter()
        total_bytes = 0
        count = 0
        with AnyReader([Path(bag)]) as r:
            for conn, _, raw in r.messages():
                r.deserialize(raw, conn.msgtype)
                total_bytes += len(raw)
                count += 1
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    print(json.dumps({"seconds": best, "bytes": total_bytes, "messages": count, "mb_per_s": total_bytes / best / 1e6}))


def main():
    cmd = sys.argv[1]
    if cmd == "read":
        read(sys.argv[2], sys.argv[3])
    elif cmd == "write":
        write(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "bench":
        bench(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 3)
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
