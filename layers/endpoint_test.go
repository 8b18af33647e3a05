package layers

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateEndpoint(t *testing.T) {
	long := "ipc:///tmp/" + strings.Repeat("x", 120)
	tests := []struct {
		endpoint    string
		bindOK      bool
		connectOK   bool
		errContains string
	}{
		{"tcp://127.0.0.1:5010", true, true, ""},
		{"tcp://localhost:5010", true, true, ""},
		{"tcp://member-2.example.org:65535", true, true, ""},
		{"tcp://[::1]:5010", true, true, ""},
		{"tcp://eth0:5010", true, true, ""},
		{"tcp://*:5010", true, false, "wildcard host"},
		{"tcp://127.0.0.1:*", true, false, "wildcard port"},
		{"ipc:///tmp/cmbs-l1.sock", true, true, ""},
		{"ipc://@abstract-name", true, true, ""},
		{"ipc://*", true, false, "wildcard ipc"},
		{"inproc://l1", true, true, ""},
		{"tcp://127.0.0.1", false, false, "host:port"},
		{"tcp://:5010", false, false, "empty host"},
		{"tcp://127.0.0.1:0", false, false, "1-65535"},
		{"tcp://127.0.0.1:65536", false, false, "1-65535"},
		{"tcp://127.0.0.1:http", false, false, "1-65535"},
		{"tcp://bad_host!:5010", false, false, "bad host"},
		{"tcp://10.0.0.1;127.0.0.1:5010", false, false, "source-address"},
		{"tcp://127.0.0.1:50 10", false, false, "whitespace"},
		{"ipc://", false, false, "empty ipc path"},
		{long, false, false, "longer than"},
		{"inproc://", false, false, "empty inproc"},
		{"pgm://eth0;239.192.1.1:5555", false, false, "unsupported transport"},
		{"127.0.0.1:5010", false, false, "transport://"},
		{"", false, false, "transport://"},
	}
	for _, tt := range tests {
		t.Run(tt.endpoint, func(t *testing.T) {
			check := func(name string, err error, ok bool) {
				t.Helper()
				if ok {
					if err != nil {
						t.Errorf("%s: unexpected error %v", name, err)
					}
					return
				}
				if !errors.Is(err, ErrInvalidEndpoint) {
					t.Fatalf("%s: error %v does not wrap ErrInvalidEndpoint", name, err)
				}
				if !strings.Contains(err.Error(), tt.errContains) {
					t.Errorf("%s: error %q does not mention %q", name, err, tt.errContains)
				}
			}
			check("ValidateEndpoint", ValidateEndpoint(tt.endpoint), tt.bindOK)
			check("ValidateConnectEndpoint", ValidateConnectEndpoint(tt.endpoint), tt.connectOK)
		})
	}
}
