#!/usr/bin/env bash
# System packages some tests use (Debian's): Chromium and its driver for the HTML report checks and the TF.js
# browser models (with TF.js vendored from the npm registry by scripts/vendor_tfjs.py), the OpenSSH server and
# client for the remote-worker tests (an sshd the tests start on 127.0.0.1). Without them (no apt, no root)
# those tests skip with a reason; everything else still runs. Also the model server's own virtual environment
# (MLServer, pinned apart from the plugin: servers/mlserver/constraints.txt) for the served-model tests.
python "$(dirname "$0")/../scripts/serve_model.py" --install-only ||
  echo "could not make .venv-mlserver: the served-model tests will make it on first use" >&2
wanted=()
command -v chromium >/dev/null 2>&1 || wanted+=(chromium)
command -v chromedriver >/dev/null 2>&1 || wanted+=(chromium-driver)
python "$(dirname "$0")/../scripts/vendor_tfjs.py" >/dev/null 2>&1 ||
  echo "could not vendor TF.js (npm): the browser-model tests will skip" >&2
{ command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ]; } || wanted+=(openssh-server)
command -v ssh >/dev/null 2>&1 || wanted+=(openssh-client)
if [ "${#wanted[@]}" -eq 0 ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get install -y -q "${wanted[@]}" >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 &&
   apt-get install -y -q "${wanted[@]}" >/dev/null 2>&1)) ||
    echo "could not install ${wanted[*]}: the tests that need them will skip" >&2
fi
exit 0
