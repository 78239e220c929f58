#!/usr/bin/env bash
# Installs Skulk as a systemd *user* service running this checkout's .venv/bin/skulk.
#
#   scripts/install-systemd.sh [options] [-- extra skulk flags]
#     --dry-run        print the unit file, write nothing, run no systemctl
#     --no-start       write the unit but do not enable/start it
#     --workdir DIR    working directory, where skulk.yaml is read and written (default ~/.skulk)
#   SKULK_SYSTEMD_DIR overrides where the unit goes (default ~/.config/systemd/user).
#
# Restarts on failure with a growing delay, and gives up after a crash loop (6 starts in 10 min);
# a config error (exit 2) is never retried. See docs/operations.md.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
dry_run=0
start=1
workdir="${HOME}/.skulk"
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --no-start) start=0 ;;
    --workdir) workdir="$2"; shift ;;
    --workdir=*) workdir="${1#--workdir=}" ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install-systemd: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

unit_dir="${SKULK_SYSTEMD_DIR:-${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user}"
unit_path="$unit_dir/skulk.service"
exe="$repo/.venv/bin/skulk"

# systemd splits ExecStart on spaces; quote every word so paths with spaces survive.
quote() { local s="${1//\\/\\\\}"; printf '"%s"' "${s//\"/\\\"}"; }
exec_start="$(quote "$exe")"
for arg in "${extra[@]+"${extra[@]}"}"; do exec_start+=" $(quote "$arg")"; done

unit="[Unit]
Description=Skulk node (peer-to-peer LLM inference)
Documentation=file://$repo/docs/operations.md
After=network-online.target
Wants=network-online.target
# A crash loop stops here: 6 starts within 10 minutes and systemd gives up (reset-failed to retry).
StartLimitIntervalSec=600
StartLimitBurst=6

[Service]
Type=simple
WorkingDirectory=$workdir
ExecStart=$exec_start
Environment=PYTHONUNBUFFERED=1
Restart=on-failure
# Backoff: 5 s after the first failure, growing to 2 min over 5 restarts (systemd >= 254;
# older versions ignore the two step keys and keep a flat 5 s).
RestartSec=5
RestartSteps=5
RestartMaxDelaySec=120
# Exit 2 is a configuration error: restarting cannot fix it.
RestartPreventExitStatus=2
# SIGTERM to the node only; it stops its own runner processes, then the rest is killed.
KillMode=mixed
TimeoutStopSec=30

[Install]
WantedBy=default.target
"

if [ "$dry_run" = 1 ]; then
  printf '%s' "$unit"
  exit 0
fi

[ -x "$exe" ] || { echo "install-systemd: $exe not found; run scripts/install.sh first" >&2; exit 1; }
mkdir -p "$unit_dir" "$workdir"
tmp="$(mktemp "$unit_dir/.skulk.service.XXXXXX")"
printf '%s' "$unit" > "$tmp"
mv "$tmp" "$unit_path"
echo "wrote $unit_path"

if [ "$start" = 1 ]; then
  systemctl --user daemon-reload
  systemctl --user enable --now skulk.service
  echo "skulk.service enabled and started; logs: journalctl --user -u skulk -f"
  echo "to keep it running after you log out: loginctl enable-linger $USER"
fi
