package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// Message is the JSON body a webhook receives (docs/notifications.md). It
// is also a CloudEvent in HTTP binary mode: the ce-* headers carry its id,
// source, type and time, so a CloudEvents receiver takes it as it is.
type Message struct {
	// ID identifies the event (Event.Key): a receiver may de-duplicate on it.
	ID      string     `json:"id"`
	Trigger Trigger    `json:"trigger"`
	Time    time.Time  `json:"time"`
	Rollout RolloutRef `json:"rollout"`
	// Reason is the hold reason (status.release.hold.reason) or the
	// outcome (status.lastRelease.outcome).
	Reason         string    `json:"reason"`
	Step           int32     `json:"step,omitempty"`
	Steps          int32     `json:"steps,omitempty"`
	Revision       string    `json:"revision,omitempty"`
	StableRevision string    `json:"stableRevision,omitempty"`
	ReleaseStarted time.Time `json:"releaseStarted"`
	Run            string    `json:"analysisRun,omitempty"`
	Metric         string    `json:"metric,omitempty"`
	Detail         string    `json:"detail,omitempty"`
	// Summary is the event in one line, as Slack shows it.
	Summary string `json:"summary"`
}

// RolloutRef names the Rollout.
type RolloutRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
}

// NewMessage builds the message of an event of a Rollout.
func NewMessage(ro RolloutRef, e Event) Message {
	return Message{
		ID: e.Key, Trigger: e.Trigger, Time: e.At.UTC(), Rollout: ro, Reason: e.Reason,
		Step: e.Step, Steps: e.Steps, Revision: e.Revision, StableRevision: e.StableRevision,
		ReleaseStarted: e.Started.UTC(), Run: e.Run, Metric: e.Metric, Detail: e.Detail,
		Summary: summary(ro, e),
	}
}

// summary says the event in words, e.g. "Rollout shop/web: revision 5d7f
// was rolled back at step 2/4 by analysis run web-5d7f-2, metric
// error-rate: value 0.2 > 0.05".
func summary(ro RolloutRef, e Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Rollout %s/%s: revision %s ", ro.Namespace, ro.Name, e.Revision)
	switch e.Trigger {
	case OnWaitingForPerson:
		fmt.Fprintf(&b, "waits for a person at step %s (%s)", stepOf(e), e.Reason)
	case OnAnalysisError:
		fmt.Fprintf(&b, "is held at step %s: its analysis errs", stepOf(e))
	case OnProgressDeadlineExceeded:
		fmt.Fprintf(&b, "is stuck at step %s: progress deadline exceeded", stepOf(e))
	case OnRolledBack:
		fmt.Fprintf(&b, "was rolled back at step %s: its analysis failed", stepOf(e))
	case OnAborted:
		fmt.Fprintf(&b, "was aborted at step %s", stepOf(e))
	case OnCompleted:
		if e.Reason == "Promoted" {
			b.WriteString("was promoted and is now stable")
		} else {
			b.WriteString("completed and is now stable")
		}
	}
	if e.Run != "" {
		fmt.Fprintf(&b, " (analysis run %s", e.Run)
		if e.Metric != "" {
			fmt.Fprintf(&b, ", metric %s", e.Metric)
		}
		b.WriteString(")")
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	return b.String()
}

func stepOf(e Event) string {
	if e.Steps > 0 {
		return fmt.Sprintf("%d/%d", e.Step, e.Steps)
	}
	return fmt.Sprint(e.Step)
}

// Target is a resolved destination: a service with its credentials read.
type Target struct {
	Kind      Kind
	URL       string
	Headers   http.Header
	Channel   string
	Username  string
	Timeout   time.Duration
	Recipient string
}

// Send delivers m to t once; an error is worth retrying unless it is
// Permanent.
func Send(ctx context.Context, hc *http.Client, t Target, m Message) error {
	if t.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.Timeout)
		defer cancel()
	}
	switch t.Kind {
	case KindSlack:
		msg := &slack.WebhookMessage{Text: m.Summary, Channel: t.Channel, Username: t.Username}
		if t.Recipient != "" {
			msg.Channel = t.Recipient
		}
		return slack.PostWebhookCustomHTTPContext(ctx, t.URL, hc, msg)
	case KindWebhook:
		return postJSON(ctx, hc, t, m)
	}
	return Permanent{fmt.Errorf("unknown service kind %q", t.Kind)}
}

// postJSON posts the message as JSON with CloudEvents' binary-mode headers.
func postJSON(ctx context.Context, hc *http.Client, t Target, m Message) error {
	body, err := json.Marshal(m)
	if err != nil {
		return Permanent{err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return Permanent{err}
	}
	for k, vs := range t.Headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", m.ID)
	req.Header.Set("Ce-Source", fmt.Sprintf("/apis/rollouts.kruise.io/v1beta1/namespaces/%s/rollouts/%s", m.Rollout.Namespace, m.Rollout.Name))
	req.Header.Set("Ce-Type", "dev.sluice.rollout."+strings.TrimPrefix(string(m.Trigger), "on-"))
	req.Header.Set("Ce-Time", m.Time.Format(time.RFC3339))
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err = fmt.Errorf("%s answered %s", t.URL, resp.Status)
	// A 4xx other than 408 and 429 will not change by itself.
	if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return Permanent{err}
	}
	return err
}

// Permanent is an error that no retry can fix.
type Permanent struct{ Err error }

func (p Permanent) Error() string { return p.Err.Error() }
func (p Permanent) Unwrap() error { return p.Err }
