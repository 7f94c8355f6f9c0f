#!/usr/bin/env bash
# Installs the system library that makes Mitsuba's fast `llvm_ad_rgb` variant work.
#
# Mitsuba 3.6+ kernels abort inside Debian 12's stock LLVM 14/15 ("LLVM ERROR: Cannot
# select ... fminimum"). A newer libLLVM fixes it; mtsyn_tf.render.variant finds it and
# sets DRJIT_LIBLLVM_PATH. Without it the renderer still works, on `scalar_rgb`.
set -euo pipefail

have_llvm() {
  local f
  for f in /usr/lib/*/libLLVM-* /usr/lib/*/libLLVM.so.* /usr/lib64/libLLVM-* /usr/lib64/libLLVM.so.*; do
    [ -e "$f" ] || continue
    local major
    major=$(basename "$f" | sed -E 's/^libLLVM(-|\.so\.)([0-9]+).*/\2/')
    if [[ "$major" =~ ^[0-9]+$ ]] && [ "$major" -ge 16 ]; then
      return 0
    fi
  done
  return 1
}

if have_llvm; then
  echo "install_render_deps: a libLLVM >= 16 is already installed; llvm_ad_rgb can be used."
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_render_deps: no apt-get here. Install LLVM >= 16 with your package manager and"
  echo "  export DRJIT_LIBLLVM_PATH=/path/to/libLLVM.so  (the renderer falls back to scalar_rgb)."
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install_render_deps: not root. To enable the fast llvm_ad_rgb Mitsuba variant run:"
  echo "  sudo apt-get update && sudo apt-get install -y libllvm19"
  echo "(the renderer works without it, on the slower scalar_rgb variant)."
  exit 0
fi
apt-get update -qq
if ! apt-get install -y -qq libllvm19; then
  echo "install_render_deps: libllvm19 is not available from your apt sources; the renderer"
  echo "  will fall back to scalar_rgb. On Debian 12 / Ubuntu 24.04 the package is libllvm19."
  exit 0
fi
echo "install_render_deps: installed libllvm19."
