#!/usr/bin/env bash
# The README's two set-up commands (run as root on Debian 12):
#   ./dev.sh demo   install what is needed, build, start mvirt-vmm and define a VM you can see
#   ./dev.sh test   install what is needed, build, run every test suite (what CI runs)
# and helpers: ./dev.sh deps | build | stop
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
top=$PWD
build=${MVIRT_BUILD_DIR:-$top/build}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

deps() {
	if [ -n "${MVIRT_SKIP_DEPS:-}" ]; then return; fi
	local pkgs missing=()
	pkgs=$(grep -v '^#' scripts/packages.txt | grep -v '^$')
	for p in $pkgs; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		say "installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
}

build() {
	say "building into $build"
	if [ ! -f "$build/build.ninja" ]; then
		meson setup "$build" >/dev/null
	fi
	ninja -C "$build"
}

demo() {
	deps
	build
	local dir=$build/demo
	mkdir -p "$dir"
	scripts/fetch-guest-kernel "$dir"
	if [ ! -f "$dir/disk.raw" ]; then
		truncate -s 256M "$dir/disk.raw.tmp" && mkfs.ext4 -q -F "$dir/disk.raw.tmp" && mv "$dir/disk.raw.tmp" "$dir/disk.raw"
	fi
	if ! "$build/src/cli/mvirt" version >/dev/null 2>&1; then
		say "starting mvirt-vmm (log: $dir/mvirt-vmm.log)"
		setsid "$build/src/vmm/mvirt-vmm" >"$dir/mvirt-vmm.log" 2>&1 </dev/null &
		echo $! >"$dir/mvirt-vmm.pid"
		for _ in $(seq 100); do
			"$build/src/cli/mvirt" version >/dev/null 2>&1 && break
			sleep 0.1
		done
	fi
	"$build/src/cli/mvirt" version
	if ! "$build/src/cli/mvirt" show demo >/dev/null 2>&1; then
		say "mvirt create demo --vcpus 1 --memory 256 --kernel $dir/vmlinuz --disk $dir/disk.raw"
		"$build/src/cli/mvirt" create demo --vcpus 1 --memory 256 --kernel "$dir/vmlinuz" --disk "$dir/disk.raw" >/dev/null
	fi
	say "mvirt list"
	"$build/src/cli/mvirt" list
	say "mvirt show demo"
	"$build/src/cli/mvirt" show demo
	cat >&2 <<MSG

mvirt-vmm is running (pid $(cat "$dir/mvirt-vmm.pid" 2>/dev/null || echo '?')), serving
unix:/run/mvirt/mvirt.sock and 127.0.0.1:50051. Try:
  $build/src/cli/mvirt --help
  $build/src/cli/mvirt -o json show demo
Stop it with: ./dev.sh stop
MSG
}

stop() {
	local pidfile=$build/demo/mvirt-vmm.pid
	if [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null; then
		say "stopped mvirt-vmm"
	fi
	rm -f "$pidfile"
}

case "${1:-}" in
deps) deps ;;
build) deps; build ;;
demo) demo ;;
stop) stop ;;
test) deps; exec scripts/run-tests ;;
*)
	echo "usage: $0 demo|test|deps|build|stop" >&2
	exit 2
	;;
esac
