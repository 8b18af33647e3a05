package broker

import "testing"

func TestTopicMatches(t *testing.T) {
	for _, tc := range []struct {
		sub, topic string
		want       bool
	}{
		{"weather", "weather", true},
		{"weather", "weather.paris", false},
		{"weather.*", "weather.paris", true},
		{"weather.+", "weather.paris", true},
		{"weather.*", "weather", false},
		{"weather.*", "weather.paris.temp", false},
		{"weather.>", "weather.paris.temp", true},
		{"weather.#", "weather.paris", true},
		{"weather.>", "weather", false},
		{">", "anything.at.all", true},
		{"*.temp", "paris.temp", true},
		{"*.temp", "paris.wind", false},
		{"weather.>.x", "weather.a.x", false},
		{"", "weather", false},
		{"weather", "", false},
		{"Weather", "weather", false},
	} {
		if got := TopicMatches(tc.sub, tc.topic); got != tc.want {
			t.Errorf("TopicMatches(%q, %q) = %v, want %v", tc.sub, tc.topic, got, tc.want)
		}
	}
}

func FuzzTopicMatches(f *testing.F) {
	for _, s := range []string{"a.b", "a.*", "a.>", "#", "*.*", ""} {
		f.Add(s, "a.b")
	}
	f.Fuzz(func(t *testing.T, sub, topic string) {
		got := TopicMatches(sub, topic)
		if sub == topic && sub != "" && got != true {
			t.Fatalf("a subject must match itself: %q", sub)
		}
		if got && topic == "" {
			t.Fatalf("empty topic matched %q", sub)
		}
	})
}
