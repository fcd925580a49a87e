package openkruise

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"
)

// Revisions, as OpenKruise names them. Both controllers record the pod
// template in a ControllerRevision the way the native StatefulSet
// controller does (kruise pkg/controller/cloneset/revision/cloneset_revision.go
// NewRevision/getPatch; pkg/controller/statefulset/stateful_set_utils.go
// newRevision/getPatch; both build it with k8s.io/kubernetes
// pkg/controller/history NewControllerRevision):
//   - the data is the strategic-merge patch {"spec":{"template":T}} where T is
//     the template as the typed object encodes it, decoded into a generic map
//     and encoded again (so every key is sorted), with "$patch":"replace";
//   - the hash is FNV-32 (not 32a) of that data followed by the decimal
//     collision count, printed in decimal and passed through
//     rand.SafeEncodeString (history.HashControllerRevision);
//   - the name is <parent name, cut to 223 characters>-<hash>
//     (history.ControllerRevisionName).

// ControllerRevisionData is the data of the ControllerRevision recording
// template. legacyNullCreationTimestamp reproduces the encoding of
// apimachinery before v0.34, which OpenKruise v1.9 is built with (v0.32):
// an empty ObjectMeta encodes "creationTimestamp":null, which the hash
// covers; apimachinery v0.34+ (and so the native StatefulSet controller of
// Kubernetes 1.37) leaves it out.
func ControllerRevisionData(template *corev1.PodTemplateSpec, legacyNullCreationTimestamp bool) ([]byte, error) {
	typed, err := json.Marshal(template)
	if err != nil {
		return nil, err
	}
	var t map[string]any
	if err := json.Unmarshal(typed, &t); err != nil {
		return nil, err
	}
	if legacyNullCreationTimestamp && template.CreationTimestamp.IsZero() {
		meta, _ := t["metadata"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
			t["metadata"] = meta
		}
		meta["creationTimestamp"] = nil
	}
	t["$patch"] = "replace"
	return json.Marshal(map[string]any{"spec": map[string]any{"template": t}})
}

// ControllerRevisionHash is the hash of a revision's data with the
// parent's collision count.
func ControllerRevisionHash(data []byte, collisionCount int32) string {
	h := fnv.New32()
	h.Write(data)
	h.Write([]byte(strconv.FormatInt(int64(collisionCount), 10)))
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// ControllerRevisionName is the name of a parent's revision with hash.
func ControllerRevisionName(parent, hash string) string {
	if len(parent) > 223 {
		parent = parent[:223]
	}
	return parent + "-" + hash
}

// ShortHash is the hash part of a revision name: what follows its last
// "-" (kruise pkg/controller/cloneset/utils/cloneset_utils.go GetShortHash).
// CloneSet pods carry it as pod-template-hash.
func ShortHash(revision string) string {
	return revision[strings.LastIndex(revision, "-")+1:]
}

// templateOfRevision reads the template back from a revision's data (what
// ApplyRevision restores), for pods created at that revision.
func templateOfRevision(data []byte) (*corev1.PodTemplateSpec, error) {
	var patch struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(data, &patch); err != nil {
		return nil, fmt.Errorf("revision data: %w", err)
	}
	return &patch.Spec.Template, nil
}
