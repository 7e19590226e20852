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
		# A nodejs from outside Debian (e.g. nodesource's) brings its own npm and conflicts
		# with Debian's npm package: a working npm is what counts.
		if [ "$p" = npm ] && command -v npm >/dev/null; then continue; fi
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
	local dir=$build/demo guest=$build/test-guest
	local mvirt=$build/src/cli/mvirt hv=/usr/bin/cloud-hypervisor
	mkdir -p "$dir"
	say "preparing a test guest (Debian's cloud kernel + a busybox initramfs) in $guest"
	scripts/make-test-guest "$guest"
	if [ ! -f "$dir/disk.raw" ]; then
		truncate -s 64M "$dir/disk.raw.tmp" && mkfs.ext4 -q -F "$dir/disk.raw.tmp" && mv "$dir/disk.raw.tmp" "$dir/disk.raw"
	fi
	if ! "$mvirt" version >/dev/null 2>&1; then
		if [ ! -x "$hv" ]; then
			say "cloud-hypervisor is not installed (Debian does not package it): using tools/ch-emu,"
			say "its emulator, which boots the guest in QEMU with software emulation (slower)"
			hv=$top/tools/ch-emu/ch-emu
			export CH_EMU_GUEST=real
		fi
		say "starting mvirt-vmm --hypervisor $hv (log: $dir/mvirt-vmm.log)"
		setsid "$build/src/vmm/mvirt-vmm" --hypervisor "$hv" >"$dir/mvirt-vmm.log" 2>&1 </dev/null &
		echo $! >"$dir/mvirt-vmm.pid"
		for _ in $(seq 100); do
			"$mvirt" version >/dev/null 2>&1 && break
			sleep 0.1
		done
	fi
	"$mvirt" version
	if ! "$mvirt" show demo >/dev/null 2>&1; then
		say "mvirt create demo --vcpus 1 --memory 256 --kernel ... --initramfs ... --disk $dir/disk.raw"
		"$mvirt" create demo --vcpus 1 --memory 256 --kernel "$guest/vmlinuz" \
			--initramfs "$guest/initramfs.gz" --cmdline "console=ttyS0 panic=-1 quiet" \
			--disk "$dir/disk.raw" >/dev/null
	fi
	# the console log keeps every boot: what this boot printed starts at its size before the start
	local id log from=1
	id=$("$mvirt" -o json show demo | grep -o '"id": *"[0-9a-f-]*"' | head -1 | grep -o '[0-9a-f-]\{36\}')
	log=/var/lib/mvirt/vms/$id/console.log
	if [ "$("$mvirt" -o json show demo | grep -o '"state": *"[A-Z_]*"' | grep -o 'VM_STATE_[A-Z]*')" != VM_STATE_RUNNING ]; then
		from=$(($(stat -c %s "$log" 2>/dev/null || echo 0) + 1))
		say "mvirt start demo"
		"$mvirt" start demo
	fi
	say "mvirt list"
	"$mvirt" list
	say "waiting for the guest's console ($log)"
	for _ in $(seq 600); do
		tail -c +"$from" "$log" 2>/dev/null | grep -q MVIRT-GUEST-READY && break
		sleep 0.1
	done
	# the guest's last lines, without its terminal queries (the shell asks for the cursor's
	# position) and ending the prompt's line
	tail -c +"$from" "$log" 2>/dev/null | tail -n 15 | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\r$//' || true
	echo
	local web=$build/src/web/mvirt-web url=http://127.0.0.1:8080/ token=""
	if [ -x "$web" ] && [ -f "$build/src/web/ui/login.html" ] && ! [ -f "$dir/mvirt-web.pid" ]; then
		say "starting mvirt-web (log: $dir/mvirt-web.log)"
		setsid "$web" --listen 127.0.0.1:8080 --state-dir "$dir/web" \
			--assets "$build/src/web/ui" >>"$dir/mvirt-web.log" 2>&1 </dev/null &
		echo $! >"$dir/mvirt-web.pid"
		for _ in $(seq 50); do
			grep -q "serving" "$dir/mvirt-web.log" 2>/dev/null && break
			sleep 0.1
		done
	fi
	token=$(sed -n 's/^mvirt-web: login token: //p' "$dir/mvirt-web.log" 2>/dev/null | tail -1)
	cat >&2 <<MSG

mvirt-vmm is running (pid $(cat "$dir/mvirt-vmm.pid" 2>/dev/null || echo '?')), serving
unix:/run/mvirt/mvirt.sock and 127.0.0.1:50051, with VM "demo" running. Try:
  $mvirt show demo
  $mvirt console demo       # the guest's shell; Ctrl+] detaches
  $mvirt logs demo          # everything it printed
  $mvirt events             # live state changes (Ctrl-C ends)
  $mvirt stop demo          # ACPI power button: the guest powers itself off
The web UI: $url  (login token: ${token:-printed in $dir/mvirt-web.log at its first start})
Stop it all with: ./dev.sh stop   (stops the demo VM, the web UI, then the daemon)
MSG
}

stop() {
	local pidfile=$build/demo/mvirt-vmm.pid webpid=$build/demo/mvirt-web.pid
	"$build/src/cli/mvirt" stop demo 2>/dev/null || true
	if [ -f "$webpid" ] && kill "$(cat "$webpid")" 2>/dev/null; then
		say "stopped mvirt-web"
	fi
	rm -f "$webpid"
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
