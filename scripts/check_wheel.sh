#!/usr/bin/env bash
# Install aryl-gym from its wheel (not editable) into a fresh venv and use it from another
# folder: the packaged trained agents resolve by name and no top-level `agents` module
# is installed. Usage: scripts/check_wheel.sh [VENV]   (default /tmp/wheelvenv)
#
# The build runs on a clean copy of the checkout (tracked files plus untracked ones that
# git does not ignore), so no stale build/ folder leaks into the wheel and nothing is
# written to the checkout.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-/tmp/wheelvenv}"
src="$(mktemp -d)"
work="$(mktemp -d)"
trap 'rm -rf "$src" "$work"' EXIT

(cd "$repo" && git ls-files -co --exclude-standard -z | tar --null -T - -cf -) | tar -xf - -C "$src"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q "$src[rl]"

cd "$work"
echo "\$ aryl-gym simulate --scenario tiny --policy aryl"
"$venv/bin/aryl-gym" simulate --scenario tiny --policy aryl --quiet
echo "\$ aryl-gym evaluate --agent allocate --seeds 1"
"$venv/bin/aryl-gym" evaluate --agent allocate --seeds 1
echo "\$ aryl-gym watch --agent reclaim --max-steps 0   (last line)"
"$venv/bin/aryl-gym" watch --agent reclaim --max-steps 0 --delay 0 | tail -n 1
echo "\$ python -c 'import agents'"
if "$venv/bin/python" -c "import agents" 2>err.txt; then
    echo "FAIL: a top-level 'agents' module is installed" >&2
    exit 1
fi
tail -n 1 err.txt
grep -q "ModuleNotFoundError: No module named 'agents'" err.txt
ls -A "$work" | grep -v '^err.txt$' && { echo "FAIL: files written to the working folder" >&2; exit 1; }
echo "wheel check passed"
