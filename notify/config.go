package notify

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The configuration's names, after Argo Rollouts' argo-rollouts-notification-configmap.
const (
	// ConfigMapName holds services and subscriptions: in a Rollout's
	// namespace for that namespace, in the controller's for every namespace.
	ConfigMapName = "sluice-notifications-cm"
	// SecretName holds what the $key references of the ConfigMap beside it name.
	SecretName = "sluice-notifications-secret"
	// SubscribePrefix starts a subscription annotation on a Rollout:
	// notifications.sluice.dev/subscribe.<trigger>.<service>: <recipients>.
	SubscribePrefix = "notifications.sluice.dev/subscribe."
	// NotifiedAnnotation records on a Rollout what was sent (or given up on).
	NotifiedAnnotation = "notified.notifications.sluice.dev"
)

// Kind is a service's kind.
type Kind string

// The service kinds.
const (
	KindWebhook Kind = "webhook"
	KindSlack   Kind = "slack"
)

// Header is an HTTP header a webhook sends; Value may be a $key reference.
type Header struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

// Service is one destination's configuration, as written in the ConfigMap
// (key service.<kind>.<name>, or service.<kind> for a service named after
// its kind). Fields that may hold a credential accept "$key", read from
// SecretName at each delivery.
type Service struct {
	Kind Kind   `yaml:"-"`
	Name string `yaml:"-"`
	// Namespace is where the ConfigMap (and so its Secret) is.
	Namespace string `yaml:"-"`
	// URL is the webhook's address (webhook), or the Slack incoming
	// webhook URL (slack: webhookURL).
	URL        string `yaml:"url"`
	WebhookURL string `yaml:"webhookURL"`
	// Headers are sent with each webhook request.
	Headers []Header `yaml:"headers"`
	// Channel and Username override a Slack webhook's defaults; a
	// subscription's recipient overrides Channel.
	Channel  string `yaml:"channel"`
	Username string `yaml:"username"`
	// Timeout of one attempt, e.g. 5s (default the Queue's).
	Timeout string `yaml:"timeout"`
}

// Subscription sends the events of Triggers to Recipients ("service" or
// "service:recipient", e.g. "slack:#releases"), for every Rollout the
// ConfigMap applies to.
type Subscription struct {
	Recipients []string  `yaml:"recipients"`
	Triggers   []Trigger `yaml:"triggers"`
}

// Config is one ConfigMap's services and subscriptions.
type Config struct {
	Namespace     string
	Services      map[string]Service
	Subscriptions []Subscription
}

// ParseConfig reads a ConfigMap's data; errors name the key (the field
// path) and what is wrong.
func ParseConfig(namespace string, data map[string]string) (Config, error) {
	c := Config{Namespace: namespace, Services: map[string]Service{}}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := data[k]
		switch {
		case strings.HasPrefix(k, "service."):
			s, err := parseService(k, v)
			if err != nil {
				return Config{}, fmt.Errorf("%s/%s data[%s]: %w", namespace, ConfigMapName, k, err)
			}
			s.Namespace = namespace
			c.Services[s.Name] = s
		case k == "subscriptions":
			if err := yaml.Unmarshal([]byte(v), &c.Subscriptions); err != nil {
				return Config{}, fmt.Errorf("%s/%s data[subscriptions]: %w", namespace, ConfigMapName, err)
			}
			for i, s := range c.Subscriptions {
				for j, t := range s.Triggers {
					if !t.Known() {
						return Config{}, fmt.Errorf("%s/%s data[subscriptions][%d].triggers[%d]: unknown trigger %q (want one of %v)", namespace, ConfigMapName, i, j, t, Triggers)
					}
				}
			}
		}
	}
	return c, nil
}

func parseService(key, v string) (Service, error) {
	parts := strings.SplitN(strings.TrimPrefix(key, "service."), ".", 2)
	s := Service{Kind: Kind(parts[0]), Name: parts[0]}
	if len(parts) == 2 {
		s.Name = parts[1]
	}
	if err := yaml.Unmarshal([]byte(v), &s); err != nil {
		return s, err
	}
	switch s.Kind {
	case KindWebhook:
		if s.URL == "" {
			return s, fmt.Errorf("url is required")
		}
	case KindSlack:
		if s.WebhookURL == "" {
			return s, fmt.Errorf("webhookURL is required (Slack incoming webhook; e.g. $slack-webhook-url)")
		}
	default:
		return s, fmt.Errorf("unknown service kind %q (want webhook or slack)", s.Kind)
	}
	for _, u := range []string{s.URL, s.WebhookURL} {
		if u == "" || isSecretRef(u) {
			continue
		}
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return s, fmt.Errorf("%q is not an http(s) URL", u)
		}
	}
	return s, nil
}

func isSecretRef(v string) bool { return strings.HasPrefix(v, "$") && len(v) > 1 }

// Resolve replaces a "$key" reference with the Secret's value; other
// values are returned as they are.
func Resolve(v string, secret map[string][]byte) (string, error) {
	if !isSecretRef(v) {
		return v, nil
	}
	key := v[1:]
	b, ok := secret[key]
	if !ok {
		return "", fmt.Errorf("Secret %s has no key %q", SecretName, key)
	}
	return strings.TrimSpace(string(b)), nil
}

// Destination is a service and, where it has one, a recipient (a Slack
// channel).
type Destination struct {
	Service   string
	Recipient string
}

func (d Destination) String() string {
	if d.Recipient == "" {
		return d.Service
	}
	return d.Service + ":" + d.Recipient
}

func parseRecipient(s string) Destination {
	s = strings.TrimSpace(s)
	if svc, rcpt, ok := strings.Cut(s, ":"); ok {
		return Destination{Service: strings.TrimSpace(svc), Recipient: strings.TrimSpace(rcpt)}
	}
	return Destination{Service: s}
}

// Subscribed returns the destinations of trigger t for a Rollout with
// these annotations, under the ConfigMaps' subscriptions (the namespace's
// and the cluster-wide one), without repeats, in a stable order.
//
// An annotation notifications.sluice.dev/subscribe.on-completed.slack:
// "#a;#b" subscribes service slack with recipients #a and #b; an empty
// value subscribes the service with its own defaults.
func Subscribed(t Trigger, annotations map[string]string, configs ...Config) []Destination {
	seen := map[Destination]bool{}
	var out []Destination
	add := func(d Destination) {
		if d.Service != "" && !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	prefix := SubscribePrefix + string(t) + "."
	keys := make([]string, 0, len(annotations))
	for k := range annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		svc, ok := strings.CutPrefix(k, prefix)
		if !ok || svc == "" {
			continue
		}
		rcpts := strings.FieldsFunc(annotations[k], func(r rune) bool { return r == ';' || r == ',' })
		if len(rcpts) == 0 {
			add(Destination{Service: svc})
		}
		for _, r := range rcpts {
			add(Destination{Service: svc, Recipient: strings.TrimSpace(r)})
		}
	}
	for _, c := range configs {
		for _, s := range c.Subscriptions {
			for _, st := range s.Triggers {
				if st != t {
					continue
				}
				for _, r := range s.Recipients {
					add(parseRecipient(r))
				}
			}
		}
	}
	return out
}

// Lookup finds a service by name: the first config that defines it wins
// (the namespace's before the cluster-wide one).
func Lookup(name string, configs ...Config) (Service, bool) {
	for _, c := range configs {
		if s, ok := c.Services[name]; ok {
			return s, true
		}
	}
	return Service{}, false
}
