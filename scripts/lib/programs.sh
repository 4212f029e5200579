# shellcheck shell=bash
# Shared by scripts/test and scripts/sandbox: installs the Debian packages of the
# programs mltb drives when they are missing.
#
#   need_programs PROGRAM:PACKAGE ...
#   need_python_modules MODULE:PACKAGE ...   (python3 modules, e.g. yaml:python3-yaml)
#
# Run as root with apt-get, it installs the missing packages (quietly; the log goes to
# ${PROGRAMS_LOG:-/tmp/mltb-apt.log}). Otherwise it prints the exact command to run.
# Returns non-zero when a program is still missing afterwards.
# _install_packages WHAT PACKAGE ...: installs the packages with apt-get when root, else
# prints the command (WHAT names what is missing, for that message).
_install_packages() {
  local what="$1"
  shift
  local log="${PROGRAMS_LOG:-/tmp/mltb-apt.log}"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    printf '\n==> installing missing packages: %s\n' "$*"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >"$log" 2>&1 && apt-get install -y -qq --no-install-recommends "$@" >>"$log" 2>&1 \
      || { echo "apt-get install failed; see $log" >&2; tail -20 "$log" >&2; }
  else
    echo "missing $what; install them with: sudo apt-get install $*" >&2
  fi
}

need_programs() {
  local pair program package missing=()
  for pair in "$@"; do
    program="${pair%%:*}"
    package="${pair#*:}"
    command -v "$program" >/dev/null || missing+=("$package")
  done
  ((${#missing[@]})) || return 0
  _install_packages programs "${missing[@]}"
  local still=0
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null || { echo "still missing: ${pair%%:*} (Debian package ${pair#*:})" >&2; still=1; }
  done
  return "$still"
}

# need_python_modules MODULE:PACKAGE ...: as need_programs, for modules python3 imports.
need_python_modules() {
  local pair missing=()
  for pair in "$@"; do
    python3 -c "import ${pair%%:*}" 2>/dev/null || missing+=("${pair#*:}")
  done
  ((${#missing[@]})) || return 0
  _install_packages "Python modules" "${missing[@]}"
  local still=0
  for pair in "$@"; do
    python3 -c "import ${pair%%:*}" 2>/dev/null || { echo "still missing: Python module ${pair%%:*} (Debian package ${pair#*:})" >&2; still=1; }
  done
  return "$still"
}
