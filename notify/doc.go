// Package notify tells people about the moments of a release they act on:
// it waits for a person, its analysis errs, it ran past its progress
// deadline, it was rolled back, aborted or completed. It derives those
// events from the Rollout's committed status (status.release.hold and
// status.lastRelease, written by the rollout package's decision function),
// never from messages, and sends them to generic webhooks and Slack.
//
// A notification never holds up a release: the Notifier only reads
// Rollouts and hands messages to a Queue that delivers them in the
// background, with bounded retries and backoff. Each (event, destination)
// is sent once: what was sent is recorded on the Rollout in the
// NotifiedAnnotation, so a restarted controller does not send it again.
//
// Configuration follows Argo Rollouts' notifications: services in the
// ConfigMap sluice-notifications-cm (credentials as $key references to the
// Secret sluice-notifications-secret beside it), in the Rollout's
// namespace or cluster-wide in the controller's, and subscriptions as
// annotations notifications.sluice.dev/subscribe.<trigger>.<service> on a
// Rollout or as the ConfigMap's subscriptions. docs/notifications.md
// documents the triggers, the configuration and the webhook's JSON body.
package notify
