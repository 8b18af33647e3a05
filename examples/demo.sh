#!/usr/bin/env bash
# A three-member cmbs broker on one machine: members A, B and C, each a
# `cmbs serve` with its own embedded store, HTTP port and ZeroMQ sockets.
# A knows B and B knows C; discovery lets A learn C through B. Then A sends
# one message on each layer and the script prints what each member got.
#
#   examples/demo.sh            (builds cmd/cmbs/cmbs first if needed)
#   KEEP=1 examples/demo.sh     leave the members running afterwards
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH=/usr/local/go/bin:$PATH
BIN=${CMBS_BIN:-cmd/cmbs/cmbs}
[ -x "$BIN" ] || make build >/dev/null
WORK=$(mktemp -d)
pids=()
cleanup() {
	if [ -z "${KEEP:-}" ]; then
		for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
		wait 2>/dev/null || true
		rm -rf "$WORK"
	else
		echo "members left running (pids ${pids[*]}); logs and stores in $WORK"
	fi
}
trap cleanup EXIT

declare -A HTTP=([a]=8091 [b]=8092 [c]=8093)
declare -A BASE=([a]=6100 [b]=6200 [c]=6300)
declare -A TOPICS=([a]='[]' [b]='["weather.*"]' [c]='["weather.paris","news"]')
declare -A PROVIDERS=([a]='[]' [b]='["compute"]' [c]='["storage"]')
declare -A NEIGHBORS=([a]='["tcp://127.0.0.1:6210"]' [b]='["tcp://127.0.0.1:6310"]' [c]='[]')

api() { # api MEMBER METHOD PATH [BODY]
	local url="http://127.0.0.1:${HTTP[$1]}$3"
	if [ $# -ge 4 ]; then
		curl -sS -X "$2" -H 'content-type: application/occi+json' -H 'accept: application/occi+json' -d "$4" "$url"
	else
		curl -sS -X "$2" -H 'accept: application/occi+json' "$url"
	fi
}

for m in a b c; do
	"$BIN" serve --http "127.0.0.1:${HTTP[$m]}" --store "file:$WORK/$m" --log-level warn >"$WORK/$m.log" 2>&1 &
	pids+=($!)
done
for m in a b c; do
	for _ in $(seq 100); do api $m GET /-/ >/dev/null 2>&1 && break; sleep 0.1; done
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
api b POST /cmbs/member/member-b?action=check_neighbors '{}'; echo
api a POST /cmbs/member/member-a?action=check_neighbors '{}'; echo

send() { # send ID LAYER EXTRA-ATTRIBUTES
	api a POST /cmbs/message/ "{\"resources\":[{\"kind\":\"http://houssem.org/cmbs#message\",\"mixins\":[\"http://houssem.org/cmbs#$2\"],\"id\":\"$1\",
	  \"attributes\":{\"cmbs\":{\"message\":{\"cmbs_layer\":\"$2\",\"message_content\":\"demo $2\"$3}}}}]}" >/dev/null
	api a POST "/cmbs/message/$1?action=send_$2" '{}' >/dev/null
}
echo "== A sends one message per layer"
send demo-l1 l1 ',"l1_socket_receiver_member":"tcp://127.0.0.1:6310"'
send demo-l2 l2 ''
send demo-l31 l31 ',"providers":["storage"]'
send demo-l32 l32 ',"topics":["weather.lyon"]'
send demo-l4 l4 ',"providers":["compute","storage"],"topics":["news"]'
for id in demo-l1 demo-l2 demo-l31 demo-l32 demo-l4; do
	for _ in $(seq 100); do
		api a GET "/cmbs/message/$id" | grep -q '"state": "done"' && break
		sleep 0.1
	done
	echo "$id: $(api a GET "/cmbs/message/$id" | grep -oE '"(delivered|failed)": [0-9]+' | tr '\n' ' ')"
done

for m in b c; do
	echo "== messages member $m received"
	api $m GET /cmbs/message/; echo
done
echo "== the L1 reply, written into A's message"
api a GET /cmbs/message/demo-l1; echo
