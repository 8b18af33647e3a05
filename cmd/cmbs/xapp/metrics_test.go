package xapp_test

import (
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/houssem/cmbs/broker/brokertest"
	"github.com/houssem/cmbs/cmd/cmbs/ops"
	"github.com/houssem/cmbs/cmd/cmbs/xapp"
)

// TestMetricsMatchServer keeps the descriptor's metrics equal, name and
// type, to the cmbs_* families a server wired as serve wires it exposes.
// A metric added to cmbs fails here until Metrics lists it.
func TestMetricsMatchServer(t *testing.T) {
	o, err := ops.New(ops.Options{Logger: brokertest.Quiet(), Host: "xapp-metrics", ReadyTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	opts := brokertest.Options{ID: "xapp-metrics", WrapStore: o.WrapStore,
		Attach: func(m *brokertest.Member) error { return o.WatchBroker(m.Broker) },
		Wrap:   o.Handler}
	opts.Broker.Metrics = o.BrokerMetrics()
	m := brokertest.Start(t, opts)
	// One request, so that the HTTP families have a series.
	m.Must(http.StatusOK, "GET", "/-/", nil)
	res := m.Anonymous().Request("GET", ops.MetricsPath, nil)
	if res.Status != http.StatusOK {
		t.Fatalf("metrics = %d", res.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(res.Raw)))
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]string{}
	for name, f := range families {
		if strings.HasPrefix(name, "cmbs_") {
			served[name] = strings.ToLower(f.GetType().String())
		}
	}
	listed := map[string]string{}
	for _, met := range xapp.Metrics() {
		listed[met.Name] = met.Type
		if met.ObjectInstance != met.Name {
			t.Errorf("%s: objectInstance %q", met.Name, met.ObjectInstance)
		}
	}
	if !reflect.DeepEqual(listed, served) {
		var missing, extra []string
		for n, typ := range served {
			if listed[n] != typ {
				missing = append(missing, n+" ("+typ+")")
			}
		}
		for n := range listed {
			if _, ok := served[n]; !ok {
				extra = append(extra, n)
			}
		}
		sort.Strings(missing)
		sort.Strings(extra)
		t.Errorf("xapp.Metrics (cmd/cmbs/xapp/metrics.go) is out of step with /metrics:\n served but not listed (or another type): %v\n listed but not served: %v", missing, extra)
	}
}
