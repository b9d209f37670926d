#!/usr/bin/env bash
# Load test of the axum example: requests/s of an authenticated GET /me (HS256,
# stateless) against GET /health, same server, same run.
# Usage: examples/axum-app/loadtest.sh [seconds] [connections] [rounds]   (needs wrk, curl, python3)
# Rounds alternate the two routes so that background load hits both alike.
set -euo pipefail
secs=${1:-10}
conns=${2:-64}
rounds=${3:-3}
cd "$(dirname "$0")/../.."
cargo build --release -q -p axum-app
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
REISSUE_ADDR=127.0.0.1:0 REISSUE_JWT_SECRET=0123456789abcdef0123456789abcdef REISSUE_ACCESS_TTL=3600 \
  RUST_LOG=warn "$OLDPWD/target/release/axum-app" > out.txt 2> err.txt &
pid=$!
for _ in $(seq 100); do grep -q listening out.txt && break; sleep 0.1; done
base=$(sed -n 's/^listening on //p' out.txt)
curl -sf -XPOST "$base/signup" -H 'content-type: application/json' -d '{"email":"load@example.com","password":"loadtest123"}' > /dev/null
token=$(curl -sf -XPOST "$base/auth/login" -H 'content-type: application/json' \
  -d '{"email":"load@example.com","password":"loadtest123"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -sf "$base/me" -H "authorization: Bearer $token" > /dev/null
rps() { wrk -t1 -c"$conns" -d"${secs}s" "$@" | awk '/Requests\/sec/ {print $2}'; }
rps "$base/health" > /dev/null # warm-up
ratios=()
for round in $(seq "$rounds"); do
  h=$(rps "$base/health")
  m=$(rps -H "Authorization: Bearer $token" "$base/me")
  ratio=$(python3 -c "print(round($m/$h, 3))")
  ratios+=("$ratio")
  echo "round $round: /health $h req/s, /me $m req/s, ratio $ratio"
done
echo "median ratio /me:/health $(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
