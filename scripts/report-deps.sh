#!/usr/bin/env bash
# Debian packages the HTML report's tests need: Graphviz (the `dot` binary the
# `graphviz` Python package calls), Chromium (headless, to render the page) and a font.
# Idempotent: does nothing when all are installed. Needs root (as in CI) or sudo.
set -euo pipefail
missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if command -v dpkg >/dev/null 2>&1 && ! dpkg -s fonts-dejavu-core >/dev/null 2>&1; then
    missing+=(fonts-dejavu-core)          # the text of the drawing and of the page
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "report-deps: install ${missing[*]} (Debian package names) for the HTML report tests" >&2
    exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "report-deps: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
