#!/bin/sh
# Runs shellcheck on every shell script of the repository: *.sh files and files whose first
# line names sh, bash or dash, under deploy/, tests/, bench/ and .ci/ (tracked by git,
# or every file when this is not a git checkout). Prints the scripts checked; exit 1
# on any finding (all severities, info included).
set -eu
cd "$(dirname "$0")/../.."
command -v shellcheck >/dev/null || {
	echo "shellcheck.sh: shellcheck is missing (deploy/install-deps.sh --test installs it)" >&2
	exit 1
}
list=$(mktemp)
trap 'rm -f "$list"' EXIT
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git ls-files --cached --others --exclude-standard deploy tests bench .ci
else
	find deploy tests bench .ci -type f -not -path '*/node_modules/*'
fi | while read -r f; do
	case "$f" in
	*/node_modules/*) ;;
	*.sh) echo "$f" ;;
	*) head -n 1 "$f" 2>/dev/null | grep -Eq '^#!.*[/ ](sh|bash|dash)([[:space:]]|$)' && echo "$f" ;;
	esac
done | sort -u >"$list"
count=$(wc -l <"$list")
[ "$count" -gt 0 ] || {
	echo "shellcheck.sh: no scripts found" >&2
	exit 1
}
# shellcheck disable=SC2046 # one script name per line, no spaces in them
if shellcheck -x $(cat "$list"); then
	echo "shellcheck: $count scripts clean: $(tr '\n' ' ' <"$list")"
else
	echo "shellcheck: findings above (in $count scripts)" >&2
	exit 1
fi
