"""rclpy peer of the node tests: an independent ROS 2 client that publishes synthetic frames to
bevfusion_node and records what comes back. Runs inside the test's network namespace.

    python node_rclpy_peer.py SPEC.json OUT.json

SPEC: {"node": "/bevfusion_node", "frames": [{"stamp_ns", "frame_id", "points": [[x, y, z, i], ...],
        "cameras": [{"rgb": path of raw RGB bytes, "width", "height", "k": [9]}, ...]}, ...],
       "tf_static": [{"parent", "child", "t": [3], "q": [x, y, z, w]}, ...]}
Camera i's images are in frame `cam<i>`. A non-empty "tf_static" is broadcast once on /tf_static
(reliable, transient local, depth 1: what tf2_ros' StaticTransformBroadcaster does) before
the first frame.
The cloud is sent with a layout of its own (uint8 intensity first, float64 x/y/z, no ring,
point_step 32) and the images as padded bgr8, so the node's conversions are exercised by a
client that shares no code with it. OUT: per frame, the Detection3DArray, the BEV segmentation
(shape and bytes as hex) and the markers, all stamped with that frame's stamp.
"""

import json
import struct
import sys
import time

import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, HistoryPolicy
from altermoma_msgs.msg import BevSegmentation, Detection3DArray
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from visualization_msgs.msg import MarkerArray


def stamp_msg(ns):
    from builtin_interfaces.msg import Time
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def stamp_ns(t):
    return t.sec * 1_000_000_000 + t.nanosec


def cloud(frame):
    msg = PointCloud2()
    msg.header.stamp = stamp_msg(frame["stamp_ns"])
    msg.header.frame_id = frame["frame_id"]
    pts = frame["points"]
    msg.height = 1
    msg.width = len(pts)
    msg.fields = [
        PointField(name="intensity", offset=0, datatype=PointField.UINT8, count=1),
        PointField(name="x", offset=8, datatype=PointField.FLOAT64, count=1),
        PointField(name="y", offset=16, datatype=PointField.FLOAT64, count=1),
        PointField(name="z", offset=24, datatype=PointField.FLOAT64, count=1),
    ]
    msg.is_bigendian = False
    msg.point_step = 32
    msg.row_step = 32 * len(pts)
    buf = bytearray()
    for x, y, z, i in pts:
        buf += struct.pack("<B7xddd", int(i), x, y, z)
    msg.data = bytes(buf)
    msg.is_dense = True
    return msg


def image(frame, cam, name):
    w, h = cam["width"], cam["height"]
    rgb = open(cam["rgb"], "rb").read()
    step = w * 3 + 4
    buf = bytearray(step * h)
    for r in range(h):
        row = rgb[r * w * 3:(r + 1) * w * 3]
        bgr = bytearray(len(row))
        bgr[0::3] = row[2::3]
        bgr[1::3] = row[1::3]
        bgr[2::3] = row[0::3]
        buf[r * step:r * step + w * 3] = bgr
    msg = Image()
    msg.header.stamp = stamp_msg(frame["stamp_ns"])
    msg.header.frame_id = name
    msg.width, msg.height, msg.step = w, h, step
    msg.encoding = "bgr8"
    msg.data = bytes(buf)
    return msg


def info(frame, cam, name):
    msg = CameraInfo()
    msg.header.stamp = stamp_msg(frame["stamp_ns"])
    msg.header.frame_id = name
    msg.width, msg.height = cam["width"], cam["height"]
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [float(v) for v in cam["k"]]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    k = msg.k
    msg.p = [k[0], k[1], k[2], 0.0, k[3], k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def tf_message(transforms, ns):
    from geometry_msgs.msg import TransformStamped
    from tf2_msgs.msg import TFMessage
    msg = TFMessage()
    for t in transforms:
        ts = TransformStamped()
        ts.header.stamp = stamp_msg(ns)
        ts.header.frame_id = t["parent"]
        ts.child_frame_id = t["child"]
        ts.transform.translation.x, ts.transform.translation.y, ts.transform.translation.z = t["t"]
        r = ts.transform.rotation
        r.x, r.y, r.z, r.w = t["q"]
        msg.transforms.append(ts)
    return msg


def main(spec_path, out_path):
    spec = json.load(open(spec_path))
    ns = spec["node"]
    frames = spec["frames"]
    n_cams = len(frames[0]["cameras"])
    rclpy.init()
    node = rclpy.create_node("rclpy_peer")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
    deep = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
    p_cloud = node.create_publisher(PointCloud2, f"{ns}/input/pointcloud", qos)
    p_img = [node.create_publisher(Image, f"{ns}/input/image_{i}", qos) for i in range(n_cams)]
    p_info = [node.create_publisher(CameraInfo, f"{ns}/input/camera_info_{i}", qos) for i in range(n_cams)]
    got = {"objects": {}, "seg": {}, "markers": {}}
    node.create_subscription(Detection3DArray, f"{ns}/output/objects",
                             lambda m: got["objects"].setdefault(stamp_ns(m.header.stamp), m), deep)
    node.create_subscription(BevSegmentation, f"{ns}/output/bev_segmentation",
                             lambda m: got["seg"].setdefault(stamp_ns(m.header.stamp), m), deep)
    node.create_subscription(MarkerArray, f"{ns}/output/markers",
                             lambda m: got["markers"].setdefault(stamp_ns(m.markers[0].header.stamp), m), deep)

    def spin_for(seconds):
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            rclpy.spin_once(node, timeout_sec=0.01)

    def wait_for(pred, seconds, what):
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            if pred():
                return
            rclpy.spin_once(node, timeout_sec=0.01)
        raise SystemExit(f"rclpy peer: timed out waiting for {what}")

    wait_for(lambda: p_cloud.get_subscription_count() > 0 and all(p.get_subscription_count() > 0 for p in p_img)
             and node.count_publishers(f"{ns}/output/objects") > 0, 30, "the node's topics")

    tf_static = spec.get("tf_static") or []
    if tf_static:
        from tf2_msgs.msg import TFMessage
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        p_tf = node.create_publisher(TFMessage, "/tf_static", latched)
        p_tf.publish(tf_message(tf_static, frames[0]["stamp_ns"]))

    def send(frame):
        for i, cam in enumerate(frame["cameras"]):
            p_info[i].publish(info(frame, cam, f"cam{i}"))
            p_img[i].publish(image(frame, cam, f"cam{i}"))
        spin_for(0.15)
        p_cloud.publish(cloud(frame))

    # priming: repeat the first frame with earlier stamps until a fused answer arrives
    prime = dict(frames[0])
    for k in range(40):
        prime["stamp_ns"] = frames[0]["stamp_ns"] - (40 - k) * 10_000_000
        send(prime)
        spin_for(0.3)
        if any(m.mode == "fusion" for m in got["objects"].values()):
            break
    else:
        raise SystemExit("rclpy peer: the node never answered with a fused frame")

    out = []
    for frame in frames:
        s = frame["stamp_ns"]
        send(frame)
        wait_for(lambda: s in got["objects"] and s in got["seg"] and s in got["markers"], 20, f"outputs of {s}")
        o, seg, mk = got["objects"][s], got["seg"][s], got["markers"][s]
        out.append({
            "stamp_ns": stamp_ns(o.header.stamp),
            "frame_id": o.header.frame_id,
            "mode": o.mode,
            "detections": [{
                "class_name": d.class_name, "class_id": d.class_id, "score": d.score,
                "position": [d.pose.position.x, d.pose.position.y, d.pose.position.z],
                "orientation_xyzw": [d.pose.orientation.x, d.pose.orientation.y, d.pose.orientation.z,
                                     d.pose.orientation.w],
                "size_lwh": [d.size.x, d.size.y, d.size.z],
            } for d in o.detections],
            "seg": {"frame_id": seg.header.frame_id, "rows": seg.rows, "cols": seg.cols,
                    "classes": list(seg.class_names), "data_hex": bytes(seg.data).hex()},
            "markers": {"count": len(mk.markers), "first_action": mk.markers[0].action,
                        "frame_ids": sorted({m.header.frame_id for m in mk.markers})},
        })
    json.dump(out, open(out_path, "w"))
    node.destroy_node()
    rclpy.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
