#!/usr/bin/env bash
# Builds hpcxl's Debian packages into build-pkg/ and checks them:
#
#   bash deploy/scripts/package.sh      # build-pkg/*.deb; exit 0 when all holds
#
# 1. configures build-pkg/ (Release, prefix /usr, no tests), builds, and
#    makes one .deb per install component with cpack
#    (deploy/packages.cmake): hpcxl-agent, libhpcxl0, hpcxl, libhpcxl-dev;
# 2. checks each package (dpkg-deb): its files are exactly the expected
#    ones (man pages gzip-compressed, /usr/share/doc/<package>/copyright
#    and changelog.Debian.gz), nothing is under /usr/local, its Depends,
#    the agent's conffile and maintainer scripts, libhpcxl0's ldconfig
#    trigger; then lintian: an error (E:) fails, warnings are printed
#    (lintian is installed when missing, as deps.sh installs the build's
#    packages; where it cannot be, the check is skipped, saying why);
# 3. unpacks them all into a scratch root (a temp dir, removed at the end)
#    and checks the tree: the unit's ExecStart and --config name the files
#    the packages hold, the programs run and find their libraries, the
#    .pc file, `systemd-analyze verify` of the unit where systemd is, and
#    the agent's maintainer scripts as dpkg runs them on another root;
# 4. builds tests/cxx/use_hpcxl.cpp against the unpacked libhpcxl-dev
#    through find_package(hpcxl CONFIG) and through pkg-config, and runs
#    both; the headers also compile alone as strict C11.
#
# The root is made with `dpkg -x`, not `dpkg --root`: --root runs the
# maintainer scripts, chrooted into a root that has no shell (or, with
# --force-script-chrootless, on this host: libhpcxl0's postinst would run
# this machine's ldconfig). The agent's scripts are run by hand instead,
# with DPKG_ROOT set as dpkg sets it for another root.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/deps.sh"

dir=$hpcxl_root/build-pkg
tmp=
cleanup() { [ -z "$tmp" ] || rm -rf "$tmp"; }
trap cleanup EXIT

say() { echo "== package: $*"; }
fail() {
	echo "== package: FAILED: $*" >&2
	exit 1
}

build_packages() {
	say "build $dir (Release, prefix /usr)"
	hpcxl_build "$dir" -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_INSTALL_PREFIX=/usr -DHPCXL_TESTS=OFF >/dev/null
	rm -f "$dir"/*.deb
	(cd "$dir" && cpack -G DEB >cpack.log 2>&1) ||
		fail "cpack: $(cat "$dir/cpack.log")"
	version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' \
		"$dir/CMakeCache.txt")
	arch=$(dpkg --print-architecture)
	# The packages' version: $version and the Debian revision
	# (CPACK_DEBIAN_PACKAGE_RELEASE).
	debversion=$(dpkg-deb -f "$dir"/hpcxl-agent_*.deb Version) ||
		fail "no hpcxl-agent package: $(cat "$dir/cpack.log")"
	[[ $debversion == "$version"-[0-9]* ]] ||
		fail "hpcxl-agent's version $debversion is not $version-N"
	ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)
	# Where deploy/CMakeLists.txt puts the unit for the prefix /usr.
	unitdir=$(pkg-config --variable=systemdsystemunitdir systemd \
		2>/dev/null || echo /usr/lib/systemd/system)
	unitdir=${unitdir#/}
}

deb() { echo "$dir/$1_${debversion}_$arch.deb"; }

# expect_files PACKAGE PATH...: the package's files and links (not its
# directories) are exactly PATHs, relative to /, and the two of
# /usr/share/doc/PACKAGE that every package holds (packages.cmake).
expect_files() {
	local pkg=$1 got want
	shift
	[ -f "$(deb "$pkg")" ] || fail "$(deb "$pkg") was not made"
	got=$(dpkg-deb -c "$(deb "$pkg")" | awk '$1 !~ /^d/ { print $6 }' |
		sed 's|^\./||' | sort)
	want=$(printf '%s\n' "$@" "usr/share/doc/$pkg/copyright" \
		"usr/share/doc/$pkg/changelog.Debian.gz" | sort)
	[ "$got" = "$want" ] || fail "$pkg holds:
$got
expected:
$want"
	if dpkg-deb -c "$(deb "$pkg")" | awk '{ print $6 }' |
		grep -q '^\./usr/local'; then
		fail "$pkg has files under /usr/local"
	fi
}

# expect_depends PACKAGE TEXT...: its Depends names each TEXT.
expect_depends() {
	local pkg=$1 depends t
	shift
	depends=$(dpkg-deb -f "$(deb "$pkg")" Depends)
	for t in "$@"; do
		case ", $depends," in
		*", $t"[\ ,]*) ;;
		*) fail "$pkg: Depends '$depends' lacks '$t'" ;;
		esac
	done
	echo "   $pkg: Depends: $depends"
}

check_packages() {
	local lib=usr/lib/$ma ctl
	say "contents of $(cd "$dir" && echo *.deb)"
	expect_files hpcxl-agent usr/sbin/hpcxl-agent etc/hpcxl/agent.ini \
		"$unitdir/hpcxl-agent.service" usr/share/man/man8/hpcxl-agent.8.gz \
		usr/share/man/man5/hpcxl-agent.conf.5.gz
	dpkg-deb -c "$(deb hpcxl-agent)" | awk '{ print $6 }' |
		grep -qx '\./etc/hpcxl/tls/' || fail "hpcxl-agent lacks /etc/hpcxl/tls/"
	expect_files libhpcxl0 "$lib/libhpcxl.so.0" "$lib/libhpcxl.so.$version"
	expect_files hpcxl usr/bin/hpcxl usr/share/man/man1/hpcxl.1.gz \
		usr/share/bash-completion/completions/hpcxl
	expect_files libhpcxl-dev usr/include/hpcxl/hpcxl.h \
		usr/include/hpcxl/version.h usr/include/hpcxl/common/err.h \
		"$lib/libhpcxl.so" "$lib/pkgconfig/hpcxl.pc" \
		"$lib/cmake/hpcxl/hpcxlConfig.cmake" \
		"$lib/cmake/hpcxl/hpcxlConfigVersion.cmake" \
		"$lib/cmake/hpcxl/hpcxlTargets.cmake" \
		"$lib/cmake/hpcxl/hpcxlTargets-release.cmake"

	expect_depends hpcxl-agent libc6 libnng1 libjansson4 libinih1
	expect_depends libhpcxl0 libc6 libnng1 libmsgpackc2
	expect_depends hpcxl "libhpcxl0 (= $debversion)" libjansson4
	expect_depends libhpcxl-dev "libhpcxl0 (= $debversion)"
	[ "$(dpkg-deb -I "$(deb libhpcxl0)" shlibs)" = \
		"libhpcxl 0 libhpcxl0 (>= $debversion)" ] || fail "libhpcxl0: shlibs"
	[ "$(dpkg-deb -I "$(deb libhpcxl0)" triggers)" = \
		"activate-noawait ldconfig" ] || fail "libhpcxl0: no ldconfig trigger"

	[ "$(dpkg-deb -I "$(deb hpcxl-agent)" conffiles)" = \
		/etc/hpcxl/agent.ini ] || fail "hpcxl-agent: conffiles is not /etc/hpcxl/agent.ini"
	ctl=$tmp/control
	dpkg-deb -e "$(deb hpcxl-agent)" "$ctl"
	for s in postinst prerm postrm; do
		[ -x "$ctl/$s" ] && sh -n "$ctl/$s" || fail "hpcxl-agent: $s"
	done
}

# lintian on the packages: an error (E:) fails, warnings (W:) are printed.
# Its notice that it runs as root (as in CI) is left out.
check_lintian() {
	local out err=$tmp/lintian.err
	if ! command -v lintian >/dev/null; then
		# deps.sh's installer, for this one package: its list is
		# read where it runs, so a local list gives it lintian alone.
		local hpcxl_packages=(lintian)
		if ! hpcxl_install_deps || ! command -v lintian >/dev/null; then
			echo "   lintian: skipped: lintian is not installed and could not be (apt-get install lintian, as root)"
			return 0
		fi
	fi
	# TMPDIR: lintian 2.116 leaves some of its temp files (mldbm-elf-*)
	# behind; in the scratch dir they go with it.
	mkdir -p "$tmp/lintian"
	out=$(TMPDIR=$tmp/lintian lintian --fail-on none --tag-display-limit 0 \
		"$dir"/*.deb 2>"$err") ||
		fail "lintian did not run: $(cat "$err")"
	printf '%s\n' "$(cat "$err")" "$out" |
		grep -v -e '^running with root privileges' -e '^$' |
		sed 's/^/   /' || true
	! grep -q '^E: ' <<<"$out" || fail "lintian: errors above"
	echo "   lintian: no errors, $(grep -c '^W: ' <<<"$out") warning(s)"
}

# The agent's maintainer scripts as dpkg runs them on another root
# (DPKG_ROOT: no systemctl; deb-systemd-helper works on the root): the
# install enables nothing but records the links `systemctl enable` makes;
# a purge removes them and the state directory.
maintscript() { # maintscript NAME ARG...: as dpkg runs it
	DPKG_ROOT=$root DPKG_MAINTSCRIPT_PACKAGE=hpcxl-agent \
		DPKG_MAINTSCRIPT_NAME=$1 sh "$tmp/control/$1" "${@:2}" ||
		fail "hpcxl-agent: $*"
}

check_scripts() {
	local dsh=/var/lib/systemd/deb-systemd-helper-enabled
	local wants=etc/systemd/system/multi-user.target.wants/hpcxl-agent.service
	mkdir -p "$root/var/lib/hpcxl/sessions"
	touch "$root/var/lib/hpcxl/sessions/s1.json"
	maintscript postinst configure ""
	[ ! -e "$root/$wants" ] || fail "postinst enabled the unit"
	grep -qx "/$wants" "$root$dsh/hpcxl-agent.service.dsh-also" ||
		fail "postinst: deb-systemd-helper has no record of /$wants"
	# The operator's `systemctl enable`.
	mkdir -p "$root/${wants%/*}"
	ln -s "/$unitdir/hpcxl-agent.service" "$root/$wants"
	maintscript prerm remove
	maintscript postrm remove
	[ -d "$root/var/lib/hpcxl" ] || fail "postrm remove removed the state"
	maintscript postrm purge
	[ ! -e "$root/var/lib/hpcxl" ] || fail "postrm purge left /var/lib/hpcxl"
	[ ! -L "$root/$wants" ] || fail "postrm purge left /$wants"
	echo "   maintainer scripts: configure (nothing enabled), remove, purge (state and enable link removed)"
}

unpack() {
	local d
	root=$tmp/root
	mkdir -p "$root"
	for d in "$dir"/*.deb; do
		dpkg -x "$d" "$root"
	done
	say "unpacked into a scratch root"
}

# ldd_ok FILE [LIBDIR]: every library FILE needs is found; the libhpcxl it
# loads (if any) is the scratch root's.
ldd_ok() {
	local out
	out=$(LD_LIBRARY_PATH=${2:-} ldd "$1")
	! grep -q 'not found' <<<"$out" || fail "$1: $out"
	if grep -q libhpcxl <<<"$out" &&
		! grep -q "libhpcxl.so.0 => $root/" <<<"$out"; then
		fail "$1 loads another libhpcxl: $out"
	fi
}

check_tree() {
	local unit=$root/$unitdir/hpcxl-agent.service libdir=$root/usr/lib/$ma
	local exec pc

	exec=$(grep '^ExecStart=' "$unit")
	[ "$exec" = "ExecStart=/usr/sbin/hpcxl-agent --config /etc/hpcxl/agent.ini \$HPCXL_AGENT_OPTS" ] ||
		fail "the unit's $exec"
	[ -x "$root/usr/sbin/hpcxl-agent" ] && [ -f "$root/etc/hpcxl/agent.ini" ] ||
		fail "the unit's agent or config is not in the packages"
	# For /usr, the install's copy of agent.ini is the source's, unchanged.
	cmp -s "$root/etc/hpcxl/agent.ini" "$hpcxl_root/deploy/config/agent.ini" ||
		fail "/etc/hpcxl/agent.ini differs from deploy/config/agent.ini"
	ldd_ok "$root/usr/sbin/hpcxl-agent"
	[ "$("$root/usr/sbin/hpcxl-agent" --version)" = "hpcxl-agent $version" ] ||
		fail "hpcxl-agent --version"
	ldd_ok "$root/usr/bin/hpcxl" "$libdir"
	LD_LIBRARY_PATH=$libdir "$root/usr/bin/hpcxl" --help >/dev/null ||
		fail "hpcxl --help"
	pc=$(PKG_CONFIG_PATH=$libdir/pkgconfig pkg-config --modversion hpcxl)
	[ "$pc" = "$version" ] || fail "pkg-config --modversion hpcxl: $pc"
	echo "   $exec; agent and CLI run; hpcxl.pc $pc"
	verify_unit "$unit"
}

# systemd-analyze verify checks that the programs of ExecStart and
# ExecReload exist: it runs on a copy of the unit whose Exec lines point
# into the scratch root (the unit itself was checked above). Any message fails: verify exits 0 on an
# unknown key.
verify_unit() {
	local copy=$tmp/verify/hpcxl-agent.service out
	if ! command -v systemd-analyze >/dev/null; then
		echo "   systemd-analyze verify: skipped: systemd-analyze is not installed (package systemd)"
		return 0
	fi
	mkdir -p "$tmp/verify"
	sed -E "s|^(Exec[A-Za-z]+)=/usr/sbin/|\1=$root/usr/sbin/|" "$1" >"$copy"
	out=$(systemd-analyze verify "$copy" 2>&1) ||
		fail "systemd-analyze verify: $out"
	[ -z "$out" ] || fail "systemd-analyze verify: $out"
	echo "   systemd-analyze verify: clean"
}

# use_hpcxl.cpp against the unpacked libhpcxl-dev, as a user's project.
check_cxx_cmake() {
	local b=$tmp/cxx-cmake found
	cmake -S "$hpcxl_root/tests/cxx/installed" -B "$b" \
		-DCMAKE_PREFIX_PATH="$root/usr" \
		-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >/dev/null
	found=$(sed -n 's/^hpcxl_DIR:PATH=//p' "$b/CMakeCache.txt")
	[ "${found#"$root"/}" != "$found" ] ||
		fail "find_package(hpcxl) found $found, not the scratch root's"
	cmake --build "$b" >/dev/null
	ldd_ok "$b/use_hpcxl"
	"$b/use_hpcxl" >/dev/null || fail "use_hpcxl (CMake package)"
	echo "   C++ via find_package(hpcxl CONFIG) (${found#"$root"}): passed"
}

check_cxx_pkgconfig() {
	local libdir=$root/usr/lib/$ma flags
	flags=$(PKG_CONFIG_PATH=$libdir/pkgconfig pkg-config --cflags --libs hpcxl)
	g++ -std=c++17 -Wall -Wextra -Wpedantic -Werror \
		"$hpcxl_root/tests/cxx/use_hpcxl.cpp" $flags -o "$tmp/use_hpcxl_pc"
	ldd_ok "$tmp/use_hpcxl_pc" "$libdir"
	LD_LIBRARY_PATH=$libdir "$tmp/use_hpcxl_pc" >/dev/null ||
		fail "use_hpcxl (pkg-config)"
	# The installed headers alone, as strict C11.
	echo '#include <hpcxl/hpcxl.h>' >"$tmp/hdr.c"
	gcc -std=c11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only \
		$(PKG_CONFIG_PATH=$libdir/pkgconfig pkg-config --cflags hpcxl) \
		"$tmp/hdr.c" || fail "<hpcxl/hpcxl.h> as C11"
	echo "   C++ via pkg-config ($flags): passed; headers compile as C11"
}

main() {
	local start=$SECONDS
	hpcxl_install_deps
	build_packages
	tmp=$(mktemp -d)
	check_packages
	check_lintian
	unpack
	check_tree
	check_scripts
	say "use_hpcxl against the unpacked libhpcxl-dev"
	check_cxx_cmake
	check_cxx_pkgconfig
	say "all checks passed in $((SECONDS - start)) s: $(cd "$dir" && echo *.deb)"
}

main "$@"
