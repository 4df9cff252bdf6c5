#!/usr/bin/env bash
# Why the demo model's memorization verdict is "underfitting" (issue 18): C_T of `make demo`'s model compared
# at lower resolutions, with its grey levels matched to the training digits, and after more training.
#
#   benchmarks/demo_memorization.sh RUN_DIR [WORK_DIR]
#
# RUN_DIR: the demo's run (`make demo` -> runs/demo; or `gan-probe train --dataset digits --epochs 40
# --batch-size 32 --ngf 32 --ndf 32 --seed 0 --out RUN_DIR`). Writes into WORK_DIR (default /tmp/demo-ct) and
# prints one line per measurement. PYTHON=... picks the interpreter. Continues a copy of the run to 80 and then
# 160 epochs (3x the demo's own training time); SKIP_LONGER=1 leaves that out.
set -euo pipefail
RUN_DIR=${1:?usage: $0 RUN_DIR [WORK_DIR]}
WORK=${2:-/tmp/demo-ct}
PYTHON=${PYTHON:-python}
GP="$PYTHON -m gan_probe"
mkdir -p "$WORK"
ct() {  # ct LABEL GEN [memorization flags]: one line with the verdict, C_T, AuthPct, flags, median distances
  local label=$1 gen=$2; shift 2
  $GP memorization "$gen" --train digits:train --test digits:test --out "$WORK/m_$label" --json "$@" \
    | "$PYTHON" -c "import json, sys; r = json.load(sys.stdin); print('$label:', r['verdict'], 'C_T %+.2f' % r['ct'],
'AuthPct %.1f' % r['auth_pct'], 'flagged %d/%d' % (r['n_flagged'], r['n_gen']),
'median d1 gen %.2f vs test %.2f' % (r['gen_to_train']['q50'], r['test_to_train']['q50']))"
}
rm -rf "$WORK/gen" "$WORK/gen_matched"
$GP sample "$RUN_DIR" --n 1000 --seed 0 --out "$WORK/gen" >/dev/null   # the 1,000 samples memorization draws
ct 32px "$WORK/gen" --image-size 32
ct 16px "$WORK/gen" --image-size 16
ct 8px "$WORK/gen" --image-size 8                                       # the digits' own resolution
"$PYTHON" - "$WORK/gen" "$WORK/gen_matched" <<'PY'
# the samples' grey levels mapped onto the training digits' (global histogram matching, 1001 quantiles)
import sys
from pathlib import Path
import numpy as np
from PIL import Image
from gan_probe.data import load_dataset, parse_dataset
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
dst.mkdir(parents=True, exist_ok=True)
train = load_dataset(parse_dataset("digits:train"), 32, 1, None, False).images.numpy()
train = np.clip(np.round((train + 1) * 127.5), 0, 255)
files = sorted(src.glob("*.png"))
gen = np.stack([np.asarray(Image.open(f).convert("L"), dtype=np.float64) for f in files])
for name, a in (("train", train), ("gen", gen)):
    print(f"{name}: {100 * (a > 242).mean():.1f}% of pixels near white, {100 * (a < 6).mean():.1f}% near black")
q = np.linspace(0, 1, 1001)
matched = np.interp(gen, np.quantile(gen, q), np.quantile(train, q))
for f, a in zip(files, matched):
    Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8)).save(dst / f.name)
PY
ct grey-matched "$WORK/gen_matched" --image-size 32
if [ -z "${SKIP_LONGER:-}" ]; then
  rm -rf "$WORK/longer" && mkdir -p "$WORK/longer"
  cp -r "$RUN_DIR/config.json" "$RUN_DIR/log.jsonl" "$RUN_DIR/checkpoints" "$WORK/longer/"
  for epochs in 80 160; do
    start=$(date +%s)
    $GP train --dataset digits --epochs $epochs --batch-size 32 --ngf 32 --ndf 32 --seed 0 --out "$WORK/longer" \
      --resume -q
    echo "to $epochs epochs: $(( $(date +%s) - start )) s wall"
    ct $epochs-epochs "$WORK/longer"
  done
fi
