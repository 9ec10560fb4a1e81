# dev_env.sh - sourced by the device scripts (dev_s29.sh on): the H100 build's libraries, the commit label, the
# binaries (B), the random-weight model (M, made by `h100.sh build-h100 setup`) and the output folder (O); prints
# the GPU and driver.  Run from the repository root on the device machine.
export QR_BUILD_DIR=build-h100 LD_LIBRARY_PATH=$PWD/build-h100/bin:$PWD/build-h100/deps:/usr/local/cuda/lib64
export QRUN_COMMIT=$(cat .commit)
B=build-h100/bin; M=/tmp/q4b; O=${OUT:-/tmp}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
