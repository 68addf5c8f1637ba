#!/bin/bash
# Measures `cloudkey serve` run apart (issue 14): starts a redis-server and a simulator of
# USERS users, fills Redis with them as the cache stores them (cache.TestFillRedis), serves,
# prewarms every user through the harness (ListEntries once each), and prints the server's
# VmRSS, its Go heap figures from /metrics and Redis's used_memory per user.
# usage: issue14-rss.sh BIN USERS PORTBASE [serve flags]. The 100,000-user runs were made without
# the fill line (the prewarm then loads each user from the simulator).
BIN=$1; N=$2; P=$3; shift 3
D=$(mktemp -d)
redis-server --port $((P+1)) --save '' --appendonly no --dir $D >$D/redis.log 2>&1 & RP=$!
$BIN sim --users $N --addr 127.0.0.1:$((P+2)) >$D/sim.log 2>&1 & SP=$!
for i in $(seq 300); do grep -q "simulator listening" $D/sim.log && break; sleep 0.2; done; sleep 1
R0=$(redis-cli -p $((P+1)) info memory | grep '^used_memory:' | tr -d '\r' | cut -d: -f2)
(cd "$(git -C "$(dirname "$0")" rev-parse --show-toplevel)" && CLOUDKEY_FILL_URL=redis://127.0.0.1:$((P+1))/0 CLOUDKEY_FILL_USERS=$N go test -count=1 -run TestFillRedis ./cache/ >$D/fill.log 2>&1); echo "filled: $(cat $D/fill.log)"
CLOUDKEY_REDIS_URL=redis://127.0.0.1:$((P+1))/0 CLOUDKEY_ACCESS_URL=http://127.0.0.1:$((P+2)) CLOUDKEY_ACCESS_EMAIL=bot@cloudkey.local CLOUDKEY_ACCESS_PASSWORD=demo-password $BIN serve --grpc-addr 127.0.0.1:$((P+3)) --http-addr 127.0.0.1:$((P+4)) --account-ttl 1h --entries-ttl 1h --local-ttl 1h "$@" >$D/serve.log 2>&1 & VP=$!
sleep 3
echo "serve idle VmRSS: $(grep VmRSS /proc/$VP/status)"
START=$(date +%s)
$BIN loadtest --grpc-addr 127.0.0.1:$((P+3)) --users $N --scenario list --prewarm --concurrency 64 --duration 5s --warmup 0s --quiet > $D/lt.txt 2>&1
END=$(date +%s)
echo "loadtest (prewarm+5s) took $((END-START))s"
grep -A3 "scenario" $D/lt.txt | head -8
echo "serve after VmRSS: $(grep VmRSS /proc/$VP/status)"
curl -s http://127.0.0.1:$((P+4))/metrics | grep -E "^go_memstats_(heap_alloc|heap_inuse|heap_idle|heap_released|next_gc)_bytes|^go_gc_gogc|^go_gc_gomemlimit" 
R1=$(redis-cli -p $((P+1)) info memory | grep '^used_memory:' | tr -d '\r' | cut -d: -f2)
echo "redis used_memory before $R0 after $R1 per user $(( (R1-R0)/N ))"
kill $VP $SP; sleep 1; kill $RP; wait 2>/dev/null
echo dir $D
