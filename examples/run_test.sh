#!/usr/bin/env bash
# The original pyCMBS walk-through, with its commented-out lines enabled:
# the member and message categories and providers, the member, discovery
# toward a neighbour that is not running, every start_* and stop_*, and the
# five messages with the sends of the first two. Every call must answer 2xx
# with a JSON body; the first that does not stops the script.
#
#   examples/run_test.sh                  start a server, run, stop it
#   CMBS_URL=http://host:8090 examples/run_test.sh   use a running server
#   PORT_BASE=20000 examples/run_test.sh  other ports (see below)
#
# The request files are sent as written, except for their ports: with the
# default PORT_BASE=5000 the member binds 5010-5040 and names 6010 as its
# neighbour, and the server listens on 8090, as in the original; another
# PORT_BASE moves all of them by the same amount. CMBS_BIN is the cmbs
# binary (built when missing).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PORT_BASE=${PORT_BASE:-5000}
shift_by=$((PORT_BASE - 5000))
HTTP_PORT=$((8090 + shift_by))
CMBS_URL=${CMBS_URL:-}
MEMBER=016ad860-2a9a-504f-8861-aeafd0b2ae29

die() { echo "run_test.sh: $*" >&2; exit 1; }
command -v curl >/dev/null || die "curl is needed"
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ports moves the original's ports in a request file by shift_by.
moves=()
for p in 5010 5020 5031 5032 5040 6010; do
	moves+=(-e "s/127\.0\.0\.1:$p\b/127.0.0.1:$((p + shift_by))/g")
done
ports() { sed "${moves[@]}" "$1"; }

for p in 10 20 31 32 40; do
	port_taken $((5000 + p + shift_by)) && die "port $((5000 + p + shift_by)) (the member's sockets) is taken; set PORT_BASE to move every port"
done
port_taken $((6010 + shift_by)) && die "port $((6010 + shift_by)) (the neighbour that must not answer) is taken; set PORT_BASE"

work=$(mktemp -d)
server=""
cleanup() {
	if [ -n "$server" ]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; fi
	rm -rf "$work"
}
trap cleanup EXIT
if [ -z "$CMBS_URL" ]; then
	port_taken "$HTTP_PORT" && die "port $HTTP_PORT (the server) is taken; set PORT_BASE, or CMBS_URL to use a running server"
	BIN=${CMBS_BIN:-../cmd/cmbs/cmbs}
	if [ ! -x "$BIN" ]; then make -C .. build >/dev/null || die "cannot build cmbs"; fi
	"$BIN" serve --http "127.0.0.1:$HTTP_PORT" --store "file:$work/store" --log-level warn >"$work/server.log" 2>&1 &
	server=$!
	CMBS_URL=http://127.0.0.1:$HTTP_PORT
	for _ in $(seq 100); do curl -sf "$CMBS_URL/health/alive" >/dev/null && break; sleep 0.1; done
	curl -sf "$CMBS_URL/health/alive" >/dev/null || die "the server did not start: $(tail -3 "$work/server.log")"
fi
CMBS_URL=${CMBS_URL%/}

calls=0
# call METHOD FILE PATH: send the request file to the server.
call() {
	calls=$((calls + 1))
	local code
	code=$(ports "$2" | curl -sS -X "$1" --data-binary @- -H 'content-type: application/occi+json' -H 'accept: application/occi+json' \
		-o "$work/body" -w '%{http_code}' "$CMBS_URL$3") || die "call $calls ($1 $3 with $2): curl failed"
	[[ $code == 2* ]] || die "call $calls ($1 $3 with $2) answered $code: $(head -c 300 "$work/body")"
	[[ $(head -c 1 "$work/body") == [{[] ]] || die "call $calls ($1 $3 with $2) answered $code without a JSON body"
}

############ member category
call POST post_category_cmbs_member.json /-/
call PUT put_provider_cmbs_member.json /-/

############ message category
call POST post_category_cmbs_message.json /-/
call PUT put_provider_cmbs_message.json /-/

############ member instance
call POST post_member.json /cmbs/member/
call POST action_check_neighbors_member.json "/cmbs/member/$MEMBER?action=check_neighbors"
for l in l1 l2 l31 l32 l4; do
	call POST "action_start_${l}_member.json" "/cmbs/member/$MEMBER?action=start_$l"
	call POST "action_stop_${l}_member.json" "/cmbs/member/$MEMBER?action=stop_$l"
done

############ message L1 instance
call POST post_message_l1.json /cmbs/message/
call POST action_send_l1_message.json /cmbs/message/0101d860-2a9a-504f-8861-aeafd0b20101?action=send_l1

############ message L2 instance
call POST post_message_l2.json /cmbs/message/
call POST action_send_l2_message.json /cmbs/message/0102d860-2a9a-504f-8861-aeafd0a10201?action=send_l2

call POST post_message_l31.json /cmbs/message/
call POST post_message_l32.json /cmbs/message/
call POST post_message_l4.json /cmbs/message/

echo "run_test.sh: $calls calls, $calls answered 2xx with JSON"
