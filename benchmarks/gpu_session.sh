#!/usr/bin/env bash
# The measurements still open that need a GPU, as one prepared run for a short GPU lease.
#
#   bash benchmarks/gpu_session.sh [gp] [discs]     # default: both, about 9 minutes on one H200 (estimated)
#   SMOKE=1 bash benchmarks/gpu_session.sh          # tiny sizes: checks the script itself on a CPU (~2 min)
#
# gp     (#9) SGD vs CG to a target test RMSE at n = 100,000, d = 8, the fitted noise first (the
#        paper's regime, 100k SGD steps, which 2 CPU cores cannot reach), then σ² = 1e-6.
# discs  (#5) ESS per step and per second of every sampler DISCS recorded, on DISCS' 50x50 Ising,
#        100 chains x 100,000 steps (burn-in half), appended one JSON line per finished sampler.
#
# It runs from the repository root with no install: the package is put on PYTHONPATH, and it needs
# only jax, numpy and tqdm (the GPU image has them; set PYTHON to pick an interpreter). Results go to
# $OUT (the device tool's folder; else ./gpu_out): session.log, gp_race.json, discs50.jsonl. Each part
# runs under `timeout`, so a slow part leaves the rest their time and what it finished is kept.
# Budgets, in seconds of wall time: GP_CAP (SGD's cap per noise setting), GP_TIMEOUT, DISCS_TIMEOUT.
set -uo pipefail

out=${OUT:-gpu_out}
mkdir -p "$out"
py=${PYTHON:-python3}
here=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONUNBUFFERED=1 PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(gp discs)

if [ "${SMOKE:-0}" = 1 ]; then
  gp_args=(--sizes 2000 --sgd-steps 400 --check-every 100 --cg-max-iters 50 --num-test 200)
  discs_args=(--sides 8 --chains 4 --steps 400 --time-steps 20 --repeats 1 --samplers rwm gwg dlmc)
  : "${GP_CAP:=20}" "${GP_TIMEOUT:=240}" "${DISCS_TIMEOUT:=240}"
else
  gp_args=(--sizes 100000 --sgd-steps 100000 --check-every 2500 --cg-max-iters 1000)
  discs_args=(--sides 50 --chains 100 --steps 100000 --time-steps 1000 --repeats 2 --samplers discs)
  : "${GP_CAP:=150}" "${GP_TIMEOUT:=330}" "${DISCS_TIMEOUT:=200}"
fi

log() { echo "== $(date -u +%H:%M:%S) $*" | tee -a "$out/session.log"; }

log "start: parts ${parts[*]}; SMOKE=${SMOKE:-0}"
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
  | tee -a "$out/session.log"
"$py" -c "import jax; print('JAX', jax.__version__, jax.devices())" 2>&1 | tee -a "$out/session.log"

status=0
for part in "${parts[@]}"; do
  case $part in
    gp)
      log "gp race (cap $GP_CAP s per solver and noise, timeout $GP_TIMEOUT s)"
      timeout "$GP_TIMEOUT" "$py" "$here/benchmarks/gp.py" --questions race --noises fitted low --clock wall \
        --time-cap "$GP_CAP" --json "$out/gp_race.json" "${gp_args[@]}" 2>&1 | tee -a "$out/session.log"
      rc=$?;;
    discs)
      log "discs 50x50 (timeout $DISCS_TIMEOUT s)"
      timeout "$DISCS_TIMEOUT" "$py" "$here/benchmarks/discs.py" --jsonl "$out/discs50.jsonl" "${discs_args[@]}" \
        2>&1 | tee -a "$out/session.log"
      rc=$?;;
    *)
      echo "gpu_session.sh: unknown part '$part' (expected gp or discs)" >&2
      exit 2;;
  esac
  log "$part finished with status $rc"
  [ "$rc" -ne 0 ] && status=$rc
done
log "done"
exit $status
