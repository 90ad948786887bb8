"""Vendor TensorFlow.js for the ``tfjs-browser`` runtime: ``npm ci`` (or ``npm install`` on the first run) of
``vendor/tfjs/package.json`` — ``@tensorflow/tfjs`` and ``@tensorflow/tfjs-backend-wasm`` 4.22.0, pinned by
``package-lock.json`` — into ``vendor/tfjs/node_modules``, which the plugin serves from 127.0.0.1.

    python scripts/vendor_tfjs.py          # needs node and npm, and the npm registry once
    apt-get install chromium chromium-driver && pip install -e '.[browser]'   # the browser and its driver
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

VENDOR = Path(__file__).resolve().parent.parent / "vendor" / "tfjs"


def main() -> None:
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm not found — install Node.js (Debian: apt-get install nodejs npm), then run this again")
    verb = "ci" if (VENDOR / "package-lock.json").exists() else "install"
    subprocess.run([npm, verb, "--no-audit", "--no-fund", "--ignore-scripts"], cwd=VENDOR, check=True)
    found = VENDOR / "node_modules" / "@tensorflow" / "tfjs" / "dist" / "tf.min.js"
    print(f"TF.js vendored: {found}" if found.exists() else f"npm finished but {found} is missing")
    sys.exit(0 if found.exists() else 1)


if __name__ == "__main__":
    main()
