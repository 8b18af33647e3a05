# syntax=docker/dockerfile:1

# Build: cgo is needed for ZeroMQ (github.com/pebbe/zmq4 links libzmq).
FROM golang:1.26-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libzmq3-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/cmbs ./cmd/cmbs

# Run: the binary, libzmq and CA certificates (for https CouchDB URLs).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libzmq5 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/cmbs --shell /usr/sbin/nologin cmbs \
 && install -d -o cmbs -g cmbs -m 0750 /var/lib/cmbs
COPY --from=build /out/cmbs /usr/local/bin/cmbs
USER cmbs
WORKDIR /var/lib/cmbs
# 8090: OCCI over HTTP; 5010-5040: the ZeroMQ layers L1, L2, L3.1, L3.2, L4.
EXPOSE 8090 5010 5020 5031 5032 5040
VOLUME /var/lib/cmbs
ENTRYPOINT ["cmbs"]
CMD ["serve", "--store", "file:/var/lib/cmbs"]
# Readiness through the binary itself: the image has no curl. It asks
# /health/ready on the port CMBS_HTTP names (8090 by default); a server
# moved with --http instead needs --url here.
HEALTHCHECK --interval=15s --timeout=6s --start-period=10s --retries=3 CMD ["cmbs", "health", "--timeout", "5s"]
