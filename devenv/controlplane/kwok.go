package controlplane

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// Annotation that marks the nodes kwok manages.
const (
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
	kwokNodeValue      = "fake"
)

// builtinStages simulate nodes (initialisation, heartbeat) and pods
// (ready, job completion, deletion), in kwok's Stage format. They are this
// project's own and travel inside the binary, so a control plane needs no
// kwok source folder.
//
//go:embed stages/*.yaml
var builtinStages embed.FS

// startKwok writes the stages and runs kwok on the nodes annotated
// kwok.x-k8s.io/node=fake.
func (c *ControlPlane) startKwok(ctx context.Context, binary, stages string) error {
	cfg := filepath.Join(c.dir, "kwok-stages.yaml")
	if err := os.WriteFile(cfg, []byte(stages), 0o600); err != nil {
		return err
	}
	kubeconfig := filepath.Join(c.dir, "kwok.kubeconfig")
	if err := writeKubeconfig(kubeconfig, c.url, c.pki.caCertPEMRaw, c.pki.kwokToken); err != nil {
		return err
	}
	if err := c.guardKwokDeletes(ctx); err != nil {
		return err
	}
	// KWOK_WORKDIR keeps a user's ~/.kwok/kwok.yaml from being loaded too.
	// It serves nothing (no --server-address): no port to race for.
	_, err := c.start(binKwok, binary, []string{"KWOK_WORKDIR=" + filepath.Join(c.dir, "kwok")},
		"--kubeconfig="+kubeconfig,
		"--config="+cfg,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+kwokNodeAnnotation+"="+kwokNodeValue,
		"--cidr=10.244.0.1/16",
		"--node-ip=10.240.0.1",
	)
	return err
}

// kwokStages returns the stage configuration for kwok: the built-in stages
// with extra ones added (or replacing built-ins of the same name), every
// document preceded by "---" (kwok silently ignores documents concatenated
// without it).
func kwokStages(extra []string) (string, error) {
	type doc struct{ name, yaml string }
	var docs []doc
	files, err := fs.Glob(builtinStages, "stages/*.yaml")
	if err != nil {
		return "", err
	}
	for _, f := range files {
		data, err := builtinStages.ReadFile(f)
		if err != nil {
			return "", err
		}
		name, _, err := parseStage(string(data), false)
		if err != nil {
			return "", fmt.Errorf("kwok stage %s: %w", f, err)
		}
		docs = append(docs, doc{name, string(data)})
	}
	for i, s := range extra {
		for _, d := range splitYAML(s) {
			name, out, err := parseStage(d, true)
			if err != nil {
				return "", fmt.Errorf("ExtraStages[%d]: %w", i, err)
			}
			docs = slices.DeleteFunc(docs, func(x doc) bool { return name != "" && x.name == name })
			docs = append(docs, doc{name, out})
		}
	}
	var b strings.Builder
	for _, d := range docs {
		b.WriteString("---\n")
		b.WriteString(strings.TrimSpace(d.yaml))
		b.WriteString("\n")
	}
	return b.String(), nil
}

// parseStage checks that doc is a YAML object and returns its name when it
// is a Stage. With defaultWeight, a Stage without spec.weight or
// spec.weightFrom gets weight 1 and is returned re-encoded.
func parseStage(doc string, defaultWeight bool) (string, string, error) {
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		return "", "", err
	}
	if obj == nil {
		return "", "", fmt.Errorf("empty document")
	}
	if obj["kind"] != "Stage" {
		return "", doc, nil
	}
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	if name == "" {
		return "", "", fmt.Errorf("stage without metadata.name")
	}
	spec, _ := obj["spec"].(map[string]any)
	if defaultWeight && spec["selector"] == nil {
		return "", "", fmt.Errorf("stage %s has no spec.selector: kwok would silently ignore it", name)
	}
	if !defaultWeight || spec == nil || spec["weightFrom"] != nil {
		return name, doc, nil
	}
	if w, ok := spec["weight"].(float64); ok && w != 0 {
		return name, doc, nil
	}
	spec["weight"] = 1
	out, err := yaml.Marshal(obj)
	return name, string(out), err
}

var yamlSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// splitYAML splits a multi-document YAML string, dropping empty documents.
func splitYAML(s string) []string {
	var out []string
	for _, d := range yamlSeparator.Split(s, -1) {
		if strings.TrimSpace(d) != "" {
			out = append(out, d)
		}
	}
	return out
}

// kwokDeletesPolicy is the ValidatingAdmissionPolicy of guardKwokDeletes.
const kwokDeletesPolicy = "kwok-deletes-terminating-pods-only"

// guardKwokDeletes lets kwok delete only pods that are terminating. kwok
// (v0.8) finishes a pod's termination with a delete by name, without the
// UID precondition a kubelet sends, and may send it twice: when a
// StatefulSet has recreated the pod under the same name in between, the
// second delete takes the new pod away at once, which no real kubelet does
// (a release would then lose a new pod for no fault of its own). kwok runs
// as its own user, and a policy refuses its deletes of pods that are not
// terminating; kwok only logs the refusal.
func (c *ControlPlane) guardKwokDeletes(ctx context.Context) error {
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: kwokDeletesPolicy},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Delete},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
				},
			}}},
			MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "kwok", Expression: fmt.Sprintf("request.userInfo.username == %q", kwokUser)}},
			Validations: []admissionregistrationv1.Validation{{
				Expression: "has(oldObject.metadata.deletionTimestamp)",
				Message:    "kwok deletes only terminating pods: this one is a new pod that took a deleted pod's name",
			}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: kwokDeletesPolicy},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        kwokDeletesPolicy,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
	api := c.client.AdmissionregistrationV1()
	if _, err := api.ValidatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("the policy on kwok's deletes: %w", err)
	}
	if _, err := api.ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("the policy binding on kwok's deletes: %w", err)
	}
	return nil
}
