#!/usr/bin/env python3
"""The official nuscenes-devkit on inputs our Rust tests and benchmark write.

Run with $ALTERMOMA_TOOLS_PYTHON (nuscenes-devkit 1.2.0).

  devkit_eval.py algo CASE.json... -> writes CASE.out.json next to each case
      CASE.json = {"gt": EvalBoxes, "pred": EvalBoxes} (already filtered boxes, NaN as null).
      Runs the devkit's own DetectionEval.evaluate() (accumulate / calc_ap / calc_tp over
      every class and threshold) on them and writes the metrics summary and every curve.

  devkit_eval.py eval DATAROOT VERSION SPLIT RESULTS OUTDIR
      The whole official pipeline: NuScenes(...) + DetectionEval(..., eval_set=SPLIT).main()
      (a custom split from DATAROOT/VERSION/splits.json). Writes metrics_summary.json and
      metrics_details.json to OUTDIR, plus timing.json with the seconds of each stage.
"""
import json
import math
import os
import sys
import time


def _nan(v):
    return [float("nan") if x is None else x for x in v]


def _boxes(serialized):
    from nuscenes.eval.common.data_classes import EvalBoxes
    from nuscenes.eval.detection.data_classes import DetectionBox

    for boxes in serialized.values():
        for b in boxes:
            b["velocity"] = _nan(b["velocity"])
            b["detection_score"] = float(b["detection_score"])
    return EvalBoxes.deserialize(serialized, DetectionBox)


def _clean(x):
    """NaN/inf -> None so that the output is standard JSON."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if hasattr(x, "tolist"):
        return _clean(x.tolist())
    return x


def algo(paths):
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.detection.evaluate import DetectionEval

    cfg = config_factory("detection_cvpr_2019")
    for path in paths:
        with open(path) as f:
            case = json.load(f)
        ev = DetectionEval.__new__(DetectionEval)  # skip __init__: no dataset, boxes given
        ev.cfg = cfg
        ev.verbose = False
        ev.gt_boxes = _boxes(case["gt"])
        ev.pred_boxes = _boxes(case["pred"])
        metrics, md_list = ev.evaluate()
        out = {"summary": _clean(metrics.serialize()), "details": _clean(md_list.serialize())}
        with open(path[: -len(".json")] + ".out.json", "w") as f:
            json.dump(out, f)


def full_eval(dataroot, version, split, results, outdir):
    from nuscenes import NuScenes
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.detection.evaluate import DetectionEval

    timing = {}
    t0 = time.time()
    nusc = NuScenes(version=version, dataroot=dataroot, verbose=False)
    timing["load_tables"] = time.time() - t0
    t1 = time.time()
    ev = DetectionEval(nusc, config_factory("detection_cvpr_2019"), results, eval_set=split,
                       output_dir=outdir, verbose=False)
    timing["load_and_filter"] = time.time() - t1
    t2 = time.time()
    metrics, md_list = ev.evaluate()
    timing["evaluate"] = time.time() - t2
    timing["total_without_tables"] = time.time() - t1
    summary = metrics.serialize()
    summary["meta"] = ev.meta
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "metrics_summary.json"), "w") as f:
        json.dump(_clean(summary), f, indent=2)
    with open(os.path.join(outdir, "metrics_details.json"), "w") as f:
        json.dump(_clean(md_list.serialize()), f)
    with open(os.path.join(outdir, "timing.json"), "w") as f:
        json.dump(timing, f, indent=2)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd = sys.argv[1]
    if cmd == "algo":
        algo(sys.argv[2:])
    elif cmd == "eval" and len(sys.argv) == 7:
        full_eval(*sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
