package broker

import "strings"

// TopicMatches reports whether a message topic (a subject such as
// "weather.paris.temp") matches a member's subscription. Subjects are tokens
// separated by dots, as in NATS; in a subscription "*" (or MQTT's "+")
// matches exactly one token, and a final ">" (or MQTT's "#") matches one or
// more remaining tokens. Anything else must be equal, token by token.
func TopicMatches(subscription, topic string) bool {
	if subscription == "" || topic == "" {
		return false
	}
	sub := strings.Split(subscription, ".")
	tok := strings.Split(topic, ".")
	for i, s := range sub {
		if (s == ">" || s == "#") && i == len(sub)-1 {
			return len(tok) > i
		}
		if i >= len(tok) {
			return false
		}
		if s != "*" && s != "+" && s != tok[i] {
			return false
		}
	}
	return len(tok) == len(sub)
}

// anyTopicMatches reports whether any message topic matches any of the
// member's subscriptions.
func anyTopicMatches(subscriptions, topics []string) bool {
	for _, s := range subscriptions {
		for _, t := range topics {
			if TopicMatches(s, t) {
				return true
			}
		}
	}
	return false
}

// intersects reports whether the two lists share an element.
func intersects(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}
