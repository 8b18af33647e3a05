package brokertest

import (
	dto "github.com/prometheus/client_model/go"
)

// Family returns the metric family called name among families, nil when
// there is none.
func Family(families []*dto.MetricFamily, name string) *dto.MetricFamily {
	for _, f := range families {
		if f.GetName() == name {
			return f
		}
	}
	return nil
}

// Series returns the value of the first series of f whose labels include
// want: a counter's or gauge's value, a histogram's sample count. ok is
// false when f is nil or has no such series.
func Series(f *dto.MetricFamily, want map[string]string) (value float64, ok bool) {
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}
