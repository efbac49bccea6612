"""Load a ROS 2 Python launch file against stub `launch` / `launch_ros` packages (ros2 launch is
not installable from PyPI) and print, as JSON, what it would start: the declared arguments and
every Node action with its package, executable, name, parameters and remappings. Substitutions
are rendered as {"subst": kind, ...} objects so the caller can resolve them.

    python launch_py_describe.py launch/bevfusion.launch.py
"""

import importlib.util
import json
import sys
import types


def subst(kind):
    class Subst:
        def __init__(self, *args, **kwargs):
            self.args = args
            self.kwargs = kwargs

        def describe(self):
            return {"subst": kind, "args": [render(a) for a in self.args]}

    Subst.__name__ = kind
    return Subst


def render(v):
    if hasattr(v, "describe"):
        return v.describe()
    if isinstance(v, (list, tuple)):
        return [render(x) for x in v]
    if isinstance(v, dict):
        return {str(k): render(x) for k, x in v.items()}
    return v


class Recorder:
    def __init__(self, kind, *args, **kwargs):
        self.kind = kind
        self.args = args
        self.kwargs = kwargs

    def describe(self):
        return {"action": self.kind, "args": render(list(self.args)), "kwargs": render(self.kwargs)}


def action(kind):
    return type(kind, (Recorder,), {"__init__": lambda self, *a, **k: Recorder.__init__(self, kind, *a, **k)})


def install_stubs():
    mods = {
        "launch": {"LaunchDescription": action("LaunchDescription")},
        "launch.actions": {"DeclareLaunchArgument": action("DeclareLaunchArgument")},
        "launch.substitutions": {
            "LaunchConfiguration": subst("LaunchConfiguration"),
            "PathJoinSubstitution": subst("PathJoinSubstitution"),
        },
        "launch_ros": {},
        "launch_ros.actions": {"Node": action("Node")},
        "launch_ros.substitutions": {"FindPackageShare": subst("FindPackageShare")},
    }
    for name, attrs in mods.items():
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        sys.modules[name] = m


def main(path):
    install_stubs()
    spec = importlib.util.spec_from_file_location("launch_under_test", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ld = mod.generate_launch_description()
    entities = ld.args[0]
    out = {"arguments": {}, "nodes": []}
    for e in entities:
        if e.kind == "DeclareLaunchArgument":
            out["arguments"][e.args[0]] = render(e.kwargs.get("default_value"))
        elif e.kind == "Node":
            out["nodes"].append(render(e.kwargs))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
