#!/usr/bin/env bash
# A three-member cmbs broker on one machine: members A, B and C, each a
# `cmbs serve` with its own embedded store, HTTP port and ZeroMQ sockets.
# A knows B and B knows C; discovery lets A learn C through B. Then A sends
# one message on each layer and the script prints what each member got.
#
#   examples/demo.sh                 ports 8091-8093 (HTTP), 6110-6340 (ZeroMQ)
#   PORT_BASE=20000 examples/demo.sh  every port moved by PORT_BASE-6000
#   KEEP=1 examples/demo.sh          leave the members running afterwards
#
# CMBS_BIN is the cmbs binary (built when missing). Any call that fails, a
# port already taken, or a member that does not get what it should, stops
# the script with a line saying which, and a non-zero exit.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PORT_BASE=${PORT_BASE:-6000}
BIN=${CMBS_BIN:-cmd/cmbs/cmbs}

die() { echo "demo.sh: $*" >&2; exit 1; }
command -v curl >/dev/null || die "curl is needed"
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

declare -A HTTP=([a]=$((PORT_BASE + 2091)) [b]=$((PORT_BASE + 2092)) [c]=$((PORT_BASE + 2093)))
declare -A BASE=([a]=$((PORT_BASE + 100)) [b]=$((PORT_BASE + 200)) [c]=$((PORT_BASE + 300)))
declare -A TOPICS=([a]='[]' [b]='["weather.*"]' [c]='["weather.paris","news"]')
declare -A PROVIDERS=([a]='[]' [b]='["compute"]' [c]='["storage"]')
declare -A NEIGHBORS=([a]="[\"tcp://127.0.0.1:$((BASE[b] + 10))\"]" [b]="[\"tcp://127.0.0.1:$((BASE[c] + 10))\"]" [c]='[]')
for m in a b c; do
	for p in "${HTTP[$m]}" $((BASE[$m] + 10)) $((BASE[$m] + 20)) $((BASE[$m] + 31)) $((BASE[$m] + 32)) $((BASE[$m] + 40)); do
		port_taken "$p" && die "port $p (member $m) is taken; set PORT_BASE to move every port"
	done
done
if [ ! -x "$BIN" ]; then make build >/dev/null || die "cannot build cmbs"; fi

WORK=$(mktemp -d)
pids=()
cleanup() {
	if [ -z "${KEEP:-}" ]; then
		for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
		wait 2>/dev/null
		rm -rf "$WORK"
	else
		echo "members left running (pids ${pids[*]}); logs and stores in $WORK"
	fi
}
trap cleanup EXIT

# api MEMBER METHOD PATH [BODY]: one request; anything but 2xx stops.
api() {
	local url="http://127.0.0.1:${HTTP[$1]}$3" code
	local args=(-sS -X "$2" -H 'accept: application/occi+json' -o "$WORK/body" -w '%{http_code}')
	if [ $# -ge 4 ]; then args+=(-H 'content-type: application/occi+json' -d "$4"); fi
	code=$(curl "${args[@]}" "$url") || die "$2 $url: curl failed"
	[[ $code == 2* ]] || die "$2 $url answered $code: $(head -c 300 "$WORK/body")"
	cat "$WORK/body"
}

for m in a b c; do
	"$BIN" serve --http "127.0.0.1:${HTTP[$m]}" --store "file:$WORK/$m" --log-level warn >"$WORK/$m.log" 2>&1 &
	pids+=($!)
done
for m in a b c; do
	for _ in $(seq 100); do curl -sf "http://127.0.0.1:${HTTP[$m]}/health/alive" >/dev/null && break; sleep 0.1; done
	curl -sf "http://127.0.0.1:${HTTP[$m]}/health/alive" >/dev/null || die "member $m's server did not start: $(tail -3 "$WORK/$m.log")"
done

for m in a b c; do
	b=${BASE[$m]}
	api $m POST /cmbs/member/ "{\"resources\":[{\"kind\":\"http://houssem.org/cmbs#member\",\"id\":\"member-$m\",\"title\":\"member $m\",
	  \"attributes\":{\"cmbs\":{\"member\":{\"local\":\"true\",\"state\":\"active\",
	  \"l1_socket\":\"tcp://127.0.0.1:$((b+10))\",\"l2_socket\":\"tcp://127.0.0.1:$((b+20))\",\"l31_socket\":\"tcp://127.0.0.1:$((b+31))\",
	  \"l32_socket\":\"tcp://127.0.0.1:$((b+32))\",\"l4_socket\":\"tcp://127.0.0.1:$((b+40))\",
	  \"neighbors_socket\":${NEIGHBORS[$m]},\"topics\":${TOPICS[$m]},\"providers\":${PROVIDERS[$m]}}}}}]}" >/dev/null
	for l in l1 l2 l31 l32 l4; do api $m POST "/cmbs/member/member-$m?action=start_$l" '{}' >/dev/null; done
done

echo "== discovery: B, then A"
api b POST /cmbs/member/member-b?action=check_neighbors '{}'
api a POST /cmbs/member/member-a?action=check_neighbors '{}'

send() { # send ID LAYER EXTRA-ATTRIBUTES
	api a POST /cmbs/message/ "{\"resources\":[{\"kind\":\"http://houssem.org/cmbs#message\",\"mixins\":[\"http://houssem.org/cmbs#$2\"],\"id\":\"$1\",
	  \"attributes\":{\"cmbs\":{\"message\":{\"cmbs_layer\":\"$2\",\"message_content\":\"demo $2\"$3}}}}]}" >/dev/null
	api a POST "/cmbs/message/$1?action=send_$2" '{}' >/dev/null
}
echo "== A sends one message per layer"
send demo-l1 l1 ",\"l1_socket_receiver_member\":\"tcp://127.0.0.1:$((BASE[c] + 10))\""
send demo-l2 l2 ''
send demo-l31 l31 ',"providers":["storage"]'
send demo-l32 l32 ',"topics":["weather.lyon"]'
send demo-l4 l4 ',"providers":["compute","storage"],"topics":["news"]'
total_delivered=0 total_failed=0
for id in demo-l1 demo-l2 demo-l31 demo-l32 demo-l4; do
	for _ in $(seq 100); do
		api a GET "/cmbs/message/$id" | grep -q '"state": "done"' && break
		sleep 0.1
	done
	body=$(api a GET "/cmbs/message/$id")
	grep -q '"state": "done"' <<<"$body" || die "$id: the delivery is not done after 10s"
	# The delivery's counts are the first of each in the message.
	delivered=$(grep -oE '"delivered": [0-9]+' <<<"$body" | head -1 | grep -oE '[0-9]+')
	failed=$(grep -oE '"failed": [0-9]+' <<<"$body" | head -1 | grep -oE '[0-9]+')
	echo "$id: \"delivered\": $delivered \"failed\": $failed"
	total_delivered=$((total_delivered + delivered)) total_failed=$((total_failed + failed))
done

declare -A WANT=([b]="demo-l2 demo-l32" [c]="demo-l1 demo-l2 demo-l31 demo-l4")
for m in b c; do
	echo "== messages member $m received"
	got=$(api $m GET /cmbs/message/)
	echo "$got"
	for id in ${WANT[$m]}; do
		grep -q "/cmbs/message/$id\"" <<<"$got" || die "member $m did not receive $id"
	done
done
echo "== the L1 reply, written into A's message"
api a GET /cmbs/message/demo-l1 | grep -m1 -A5 '"result"'

[ "$total_failed" -eq 0 ] || die "$total_failed deliveries failed"
echo "demo.sh: 5 messages sent, $total_delivered deliveries, $total_failed failed"
