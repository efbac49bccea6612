#!/usr/bin/env python3
"""Write the nuscenes-devkit's official split scene lists (train, val, test, mini_train,
mini_val, ...) to DATAROOT/VERSION/splits.json, so that `altermoma eval --split val` evaluates
the same samples as the devkit. Existing custom splits in the file are kept.

  $ALTERMOMA_TOOLS_PYTHON tests/python/nuscenes_splits.py DATAROOT VERSION
"""
import json
import os
import sys

from nuscenes.utils.splits import create_splits_scenes


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    path = os.path.join(sys.argv[1], sys.argv[2], "splits.json")
    splits = {}
    if os.path.exists(path):
        with open(path) as f:
            splits = json.load(f)
    splits.update(create_splits_scenes())
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(splits, f, indent=1)
    os.replace(tmp, path)
    print("wrote %d splits to %s" % (len(splits), path))


if __name__ == "__main__":
    main()
