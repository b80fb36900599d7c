#!/bin/bash
# Runs a benchmark child and samples its /proc/PID/status every 20 ms; prints the peak
# RssAnon, RssFile and thread count to stderr when it ends. Use as
#   BENCH_CHILD_WRAP=bench/producer-compare/rsswrap.sh target/release/producer-compare ...
"$@" &
pid=$!
maxa=0; maxf=0; maxt=0
while kill -0 "$pid" 2>/dev/null; do
  read -r a f t < <(awk '/RssAnon/{a=$2}/RssFile/{f=$2}/Threads/{t=$2}END{print a,f,t}' "/proc/$pid/status" 2>/dev/null)
  [ -n "$a" ] && [ "$a" -gt "$maxa" ] && maxa=$a
  [ -n "$f" ] && [ "$f" -gt "$maxf" ] && maxf=$f
  [ -n "$t" ] && [ "$t" -gt "$maxt" ] && maxt=$t
  sleep 0.02
done
wait "$pid"; rc=$?
echo "RSSWRAP anon_max=${maxa}kB file_max=${maxf}kB threads_max=$maxt" >&2
exit $rc
