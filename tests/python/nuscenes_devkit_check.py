"""Load a nuScenes-layout dataset with the official nuscenes-devkit and dump what it sees.

Usage: nuscenes_devkit_check.py DATAROOT VERSION OUT.json

Writes: scene names and sample counts, table sizes, every annotation's box as the devkit
builds it (global centre, wlh, yaw, box_velocity, category), for every camera key frame the
annotations `get_sample_data(..., BoxVisibility.ANY)` returns with their projected pixel
extents, and the LiDAR point count of the first sample as LidarPointCloud reads it.
Used by tests/data_nuscenes.rs.
"""
import json
import sys

import numpy as np
from nuscenes.nuscenes import NuScenes
from nuscenes.utils.data_classes import LidarPointCloud
from nuscenes.utils.geometry_utils import BoxVisibility, view_points


def main():
    dataroot, version, out = sys.argv[1], sys.argv[2], sys.argv[3]
    nusc = NuScenes(version=version, dataroot=dataroot, verbose=False)
    res = {
        "scenes": [s["name"] for s in nusc.scene],
        "samples_per_scene": [s["nbr_samples"] for s in nusc.scene],
        "n_samples": len(nusc.sample),
        "n_annotations": len(nusc.sample_annotation),
        "n_instances": len(nusc.instance),
        "n_sample_data": len(nusc.sample_data),
    }
    # Walk each scene's sample chain like a user would.
    walked = []
    for scene in nusc.scene:
        tok, n = scene["first_sample_token"], 0
        while tok:
            n += 1
            tok = nusc.get("sample", tok)["next"]
        walked.append(n)
    res["walked_samples_per_scene"] = walked
    boxes = {}
    for ann in nusc.sample_annotation:
        b = nusc.get_box(ann["token"])
        v = nusc.box_velocity(ann["token"])
        boxes[ann["token"]] = {
            "center": b.center.tolist(),
            "wlh": b.wlh.tolist(),
            "yaw": float(b.orientation.yaw_pitch_roll[0]),
            "velocity": [None if np.isnan(x) else float(x) for x in v[:2]],
            "category": ann["category_name"],
            "sample": ann["sample_token"],
            "num_lidar_pts": ann["num_lidar_pts"],
        }
    res["boxes"] = boxes
    cams = {}
    for s in nusc.sample:
        for ch, sd in s["data"].items():
            if not ch.startswith("CAM"):
                continue
            _, bs, K = nusc.get_sample_data(sd, box_vis_level=BoxVisibility.ANY)
            entry = []
            for b in bs:
                c = view_points(b.corners(), K, normalize=True)[:2]
                entry.append({
                    "token": b.token,
                    "umin": float(c[0].min()), "umax": float(c[0].max()),
                    "vmin": float(c[1].min()), "vmax": float(c[1].max()),
                    "depth": float(b.center[2]),
                })
            cams[sd] = {"sample": s["token"], "channel": ch, "boxes": entry}
    res["cameras"] = cams
    s = nusc.sample[0]
    pc = LidarPointCloud.from_file(nusc.get_sample_data_path(s["data"]["LIDAR_TOP"]))
    res["first_sample"] = s["token"]
    res["first_lidar_points"] = int(pc.points.shape[1])
    res["first_lidar_xyz"] = pc.points[:3, :5].T.tolist()
    with open(out, "w") as f:
        json.dump(res, f)


if __name__ == "__main__":
    main()
