#!/bin/bash
# `mmstorm report`: self-contained HTML with inline gnuplot SVG, Markdown, scripts and data
# kept; rendered by headless chromium when it is installed.
. "$(dirname "$0")/lib/common.bash"
need_root
command -v gnuplot >/dev/null || skip "gnuplot not installed (Debian: gnuplot-nox)"
cat > "$WORK/suite.ini" <<'INI'
[global]
name=report-html
seed=1
timeout=60s
duration=200ms
workers=2
children=4
repeat=3

[fork-anon]
workload=fork-storm
region=anon
size=8M

[fork-thp]
workload=fork-storm
region=thp
size=8M
INI
for id in base new; do
	run_mmstorm 0 run --results "$WORK/results" --run-id "$id" "$WORK/suite.ini"
done
run_mmstorm 0 report --out "$WORK/rep" --trend "$WORK/results" "$WORK/results/base" \
	"$WORK/results/new"
grep -q 'report.html' "$WORK/out" || fail "report did not say where it wrote"
html=$WORK/rep/report.html
[ -s "$html" ] && [ -s "$WORK/rep/report.md" ] || fail "no report.html / report.md"
svgs=$(grep -o '<svg' "$html" | wc -l)
# ratio bars, 2 cases x 3 latency CDFs, page tables, 2 trend charts
[ "$svgs" -ge 8 ] || fail "only $svgs inline SVG charts"
! grep -q '<?xml' "$html" || fail "an XML prolog inside the HTML"
! grep -Eq '(src|href)="(https?:|//)' "$html" || fail "the page fetches something from outside"
grep -q 'fork-anon' "$html" || fail "no case in the page"
for f in ratio-1 cdf-fork-anon-fork_ns pgtables trend-fork-anon; do
	[ -s "$WORK/rep/$f.gp" ] && [ -s "$WORK/rep/$f.dat" ] && [ -s "$WORK/rep/$f.svg" ] ||
		fail "$f: script, data or SVG missing"
done
# the kept scripts rerun as they are
(cd "$WORK/rep" && rm ratio-1.svg && gnuplot ratio-1.gp) || fail "ratio-1.gp does not rerun"
[ -s "$WORK/rep/ratio-1.svg" ] || fail "ratio-1.gp made no SVG"
! grep -qi 'error' "$WORK/rep/gnuplot.log" 2>/dev/null || fail "gnuplot: $(cat "$WORK/rep/gnuplot.log")"
grep -q '!\[.*\](ratio-1.svg)' "$WORK/rep/report.md" || fail "Markdown lacks the charts"
# Every inline chart is well-formed XML on its own (HTML4 parsers such as xmllint --html do
# not know <svg>; the browser below is the real test of the page).
if command -v xmllint >/dev/null; then
	awk -v dir="$WORK" '/<svg/ { n++; on = 1; sub(/.*<svg/, "<svg") }
		on { print > (dir "/inline-" n ".svg") }
		/<\/svg>/ { on = 0 }' "$html"
	for f in "$WORK"/inline-*.svg; do
		sed -i 's#</svg>.*#</svg>#' "$f"
		xmllint --noout "$f" 2>"$WORK/lint" || fail "$f: $(head -3 "$WORK/lint")"
	done
fi
say "$svgs inline charts; scripts and data kept"

# MMSTORM_CHROMIUM: a chromium elsewhere (with LD_LIBRARY_PATH set if it needs it).
chromium=${MMSTORM_CHROMIUM:-}
for c in /usr/bin/chromium /usr/bin/chromium-browser; do
	[ -z "$chromium" ] && [ -x "$c" ] && chromium=$c
done
[ -n "$chromium" ] || skip "no /usr/bin/chromium to render the page (the HTML and SVG were" \
	"checked without a browser; Debian: apt-get install chromium)"
timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars \
	--window-size=1400,4000 --screenshot="$WORK/shot.png" "file://$html" \
	>"$WORK/chromium.log" 2>&1 || fail "chromium failed: $(tail -5 "$WORK/chromium.log")"
[ -s "$WORK/shot.png" ] || fail "empty screenshot"
[ "$(head -c 8 "$WORK/shot.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
	fail "the screenshot is not a PNG"
size=$(stat -c %s "$WORK/shot.png")
# a blank 1400x4000 page compresses to a few KB; charts and tables make it far larger
[ "$size" -gt 50000 ] || fail "screenshot only $size bytes: did the page render?"
say "rendered by $chromium: $size bytes of screenshot"
