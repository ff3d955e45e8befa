#!/usr/bin/env bash
# deploy/profiles/: the profile snippet as a real agent loads it, and the
# wrapper soffice-worker.sh against a soffice that writes down how it was
# started: the exec (the worker's pid is soffice's), the arguments, the
# profile per node and worker (URL-encoded), the seeded lock settings, the
# options, the errors, and the pruning of old unused profiles. Needs no
# LibreOffice (test_lo_calc.sh is the one with a session of soffice.bin).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

wrapper=$ops_src/deploy/profiles/soffice-worker.sh
snippet=$ops_src/deploy/profiles/libreoffice.ini

# ---- the snippet in a real agent --------------------------------------------
sed -e "s|^command = .*|command = $wrapper --profile-dir $ops_tmp/agent-lo|" \
	-e "s|^user = .*|user = $(id -un)|" "$snippet" >"$ops_tmp/agent.ini"
ops_check "an agent starts with the snippet" \
	ops_agent_start a tcp://127.0.0.1:0 --config "$ops_tmp/agent.ini"
url=$ops_url
ops_expect_rc 0 "... and has its profile calc" \
	"$HPCXL_BIN_DIR/hpcxl" --nodes "$url" open-session --profile calc \
	--workers 1 --session "lo-$$" --timeout 10000
ops_track "lo-$$"
# No soffice here (or a real one that need not be): the wrapper's message
# is in the worker's log, whatever it found.
log=$ops_tmp/agent-a/state/logs/lo-$$/worker-0.log
ops_check "... whose worker ran the wrapper" \
	ops_wait_until 10000 grep -q "^soffice-worker: " "$log"
"$HPCXL_BIN_DIR/hpcxl" --nodes "$url" close-session "lo-$$" \
	--timeout 10000 >/dev/null || true
if [ "$(id -u)" -eq 0 ]; then
	grep -v '^user = ' "$ops_tmp/agent.ini" >"$ops_tmp/nouser.ini"
	ops_expect_rc 2 "a root agent refuses the snippet without its user line" \
		"$HPCXL_BIN_DIR/hpcxl-agent" --config "$ops_tmp/nouser.ini" \
		--listen tcp://127.0.0.1:0 --state-dir "$ops_tmp/nouser-state"
	ops_grep "... naming the profile" "calc" "$ops_tmp/err"
fi

# ---- the wrapper --------------------------------------------------------------
# A soffice that writes its pid and arguments (one per line) and exits.
fake=$ops_tmp/bin/soffice
mkdir -p "$ops_tmp/bin"
cat >"$fake" <<EOF
#!/bin/sh
{ echo "pid \$\$"; printf '%s\n' "\$@"; } >"$ops_tmp/called"
EOF
chmod +x "$fake"
book=$ops_tmp/book.ods
: >"$book"
profiles="$ops_tmp/lo profiles" # a blank: the URL must escape it

# run_wrapper [ARGS...]: the wrapper as a worker, in the background as the
# agent starts it (in $WRAPPER_CWD, the profile's workdir; with
# $WORKBOOK); its pid into $ops_tmp/wrapper-pid, its status returned.
run_wrapper() {
	local pid rc=0
	rm -f "$ops_tmp/called"
	(cd "${WRAPPER_CWD:-.}" && exec env -i PATH=/usr/bin:/bin \
		HOME="$ops_tmp/home" HPCXL_SESSION=book-1 HPCXL_NODE=n07 \
		HPCXL_WORKER=3 HPCXL_WORKBOOK="${WORKBOOK-$book}" \
		"$wrapper" --soffice "$fake" --profile-dir "$profiles" "$@") &
	pid=$!
	echo "$pid" >"$ops_tmp/wrapper-pid"
	wait "$pid" || rc=$?
	return "$rc"
}
called() { sed -n "$1p" "$ops_tmp/called"; }

ops_expect_rc 0 "the wrapper runs soffice" run_wrapper
ops_check "it exec'd soffice: the worker's pid is soffice's" \
	[ "$(called 1)" = "pid $(cat "$ops_tmp/wrapper-pid")" ]
inst="-env:UserInstallation=file://$ops_tmp/lo%20profiles/n07/lo-profile-book-1-3"
ops_check "a profile of this node and worker, as a URL" [ "$(called 2)" = "$inst" ]
ops_check "headless, no restore, no logo, no default document" \
	[ "$(sed -n 3,6p "$ops_tmp/called" | tr '\n' ' ')" = "--headless --norestore --nologo --nodefault " ]
ops_check "the UNO pipe of session, node and worker" \
	[ "$(called 7)" = "--accept=pipe,name=hpcxl-book-1-n07-3;urp;StarOffice.ComponentContext" ]
ops_check "the workbook last" [ "$(called 8)" = "$book" ]
ops_check "nothing else" [ "$(wc -l <"$ops_tmp/called")" -eq 8 ]
ops_grep "the log line says what it starts" \
	"^soffice-worker: session book-1 node n07 worker 3: .* UNO pipe hpcxl-book-1-n07-3, workbook $book\$" \
	"$ops_tmp/err"
xcu="$profiles/n07/lo-profile-book-1-3/user/registrymodifications.xcu"
ops_check "the new profile has lock files off" \
	grep -q 'UseDocumentOOoLockFile" oor:op="fuse"><value>false' "$xcu"
ops_check "... and system file locking off" \
	grep -q 'UseDocumentSystemFileLocking" oor:op="fuse"><value>false' "$xcu"
ops_check "profiles are private (0700)" \
	[ "$(stat -c %a "$profiles/n07/lo-profile-book-1-3")" = 700 ]
echo "edited" >>"$xcu"
ops_expect_rc 0 "a restarted worker" run_wrapper
ops_check "... keeps its profile as LibreOffice left it" \
	grep -q '^edited$' "$xcu"

WORKBOOK="" ops_expect_rc 0 "without a workbook" run_wrapper
ops_check "... no document argument" [ "$(wc -l <"$ops_tmp/called")" -eq 7 ]
ops_expect_rc 0 "--view, --no-accept, -- extra arguments" \
	run_wrapper --view --no-accept -- --calc
ops_check "... read-only, no pipe, the extra last" \
	[ "$(sed -n '7,$p' "$ops_tmp/called" | tr '\n' ' ')" = "--view $book --calc " ]
WORKBOOK=-rf.ods ops_expect_rc 66 "a workbook that cannot be read" run_wrapper
ops_grep "... says so" "cannot read workbook '-rf.ods'" "$ops_tmp/err"
: >"$ops_tmp/-rf.ods"
WRAPPER_CWD=$ops_tmp WORKBOOK=-rf.ods ops_expect_rc 0 \
	"a relative workbook named like an option" run_wrapper
ops_check "... is passed as ./-rf.ods" [ "$(called 8)" = ./-rf.ods ]
WORKBOOK=https://example.invalid/b.ods ops_expect_rc 0 "a workbook URL" \
	run_wrapper
ops_check "... is LibreOffice's to open" \
	[ "$(called 8)" = https://example.invalid/b.ods ]

ops_expect_rc 127 "no soffice" env -i PATH=/usr/bin:/bin HOME="$ops_tmp/home" \
	HPCXL_SESSION=s HPCXL_NODE=n HPCXL_WORKER=0 "$wrapper" \
	--soffice "no-soffice-$$" --profile-dir "$profiles"
ops_grep "... says what to install" "libreoffice-calc" "$ops_tmp/err"
ops_expect_rc 2 "not run by an agent (no HPCXL_SESSION)" env -i \
	PATH=/usr/bin:/bin "$wrapper" --soffice "$fake"
ops_grep "... says so" "HPCXL_SESSION is not a session id" "$ops_tmp/err"
ops_expect_rc 2 "a worker index that is not a number" env -i PATH=/usr/bin:/bin \
	HPCXL_SESSION=s HPCXL_NODE=n HPCXL_WORKER=../x "$wrapper" --soffice "$fake"
ops_expect_rc 2 "an unknown option" run_wrapper --calc
ops_expect_rc 0 "the default profile dir: \$HOME/.cache/hpcxl-lo" \
	env -i PATH=/usr/bin:/bin HOME="$ops_tmp/home" HPCXL_SESSION=s \
	HPCXL_NODE=n HPCXL_WORKER=0 "$wrapper" --soffice "$fake"
ops_check "... NODE/lo-profile-SESSION-WORKER there" \
	[ -d "$ops_tmp/home/.cache/hpcxl-lo/n/lo-profile-s-0" ]

# ---- pruning ----------------------------------------------------------------
# Under n07: an old profile nobody uses (goes), an old one a process still
# runs with (stays), a recent one (stays), and the worker's own (stays).
old=$profiles/n07/lo-profile-old-0
busy=$profiles/n07/lo-profile-busy-0
recent=$profiles/n07/lo-profile-recent-0
mkdir -p "$old/user" "$busy/user" "$recent/user"
touch -d '5 days ago' "$old" "$busy" "$profiles/n07/lo-profile-book-1-3"
# A process that carries busy's UserInstallation argument, as oosplash and
# soffice.bin do; it blocks on a FIFO nobody writes, and is killed at the
# end (HPCXL_SESSION makes the clean-up find it if the test fails first).
mkfifo "$ops_tmp/fifo"
HPCXL_SESSION=lo-hold-$$ bash -c 'read -r _ <"$0"' "$ops_tmp/fifo" \
	"-env:UserInstallation=file://$ops_tmp/lo%20profiles/n07/lo-profile-busy-0" &
holder=$!
ops_track "lo-hold-$$"
ops_check "the holder runs" ops_wait_until 5000 grep -qF -z -- \
	"lo-profile-busy-0" "/proc/$holder/cmdline"
ops_expect_rc 0 "a worker start with --keep-days 2" run_wrapper --keep-days 2
ops_check "the old unused profile is gone" [ ! -e "$old" ]
ops_check "the old profile in use stays" [ -d "$busy" ]
ops_check "the recent one stays" [ -d "$recent" ]
ops_check "the worker's own stays" [ -d "$profiles/n07/lo-profile-book-1-3" ]
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
ops_expect_rc 0 "--keep-days 0 keeps everything" run_wrapper --keep-days 0
ops_check "... the old one no process uses any more included" [ -d "$busy" ]

ops_done
