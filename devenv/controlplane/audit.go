package controlplane

import (
	"bufio"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// auditPolicy keeps a record of every deletion of a pod or a workload
// (metadata only: who, what, when), so that a test that sees a pod go can
// tell which client took it away: a workload controller, kwok, Sluice or
// the test itself. Nothing else is audited.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [delete, deletecollection]
  resources:
  - group: ""
    resources: [pods]
  - group: apps
    resources: [deployments, replicasets, statefulsets]
  - group: apps.kruise.io
    resources: [clonesets, statefulsets]
- level: None
`

// writeAuditPolicy writes the policy the API server is started with.
func (c *ControlPlane) writeAuditPolicy() (string, error) {
	path := filepath.Join(c.dir, "audit-policy.yaml")
	return path, os.WriteFile(path, []byte(auditPolicy), 0o644)
}

// AuditLogPath is the API server's audit log: one JSON line per deletion
// of a pod or a workload (see Deletions).
func (c *ControlPlane) AuditLogPath() string { return c.LogPath("audit") }

// Deletion is one delete request the API server answered.
type Deletion struct {
	Time      time.Time
	Namespace string
	Resource  string // pods, deployments, ...
	Name      string
	// UserAgent names the client, e.g. kube-controller-manager's
	// ".../statefulset-controller", kwok, sluice-controller.
	UserAgent string
	// Code is the answer's HTTP status (200 deleted, 404 already gone).
	Code int
}

// Deletions returns the delete requests for namespace answered from from
// to to, in the order of the log.
func (c *ControlPlane) Deletions(namespace string, from, to time.Time) ([]Deletion, error) {
	f, err := os.Open(c.AuditLogPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Deletion
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var e struct {
			UserAgent string `json:"userAgent"`
			ObjectRef struct {
				Resource, Namespace, Name string
			} `json:"objectRef"`
			ResponseStatus struct {
				Code int `json:"code"`
			} `json:"responseStatus"`
			StageTimestamp time.Time `json:"stageTimestamp"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.ObjectRef.Namespace != namespace ||
			e.StageTimestamp.Before(from) || e.StageTimestamp.After(to) {
			continue
		}
		out = append(out, Deletion{Time: e.StageTimestamp, Namespace: e.ObjectRef.Namespace, Resource: e.ObjectRef.Resource,
			Name: e.ObjectRef.Name, UserAgent: e.UserAgent, Code: e.ResponseStatus.Code})
	}
	return out, sc.Err()
}
