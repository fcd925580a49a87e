package cli

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func newUndoCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "undo NAME",
		Short: "Put the stable template back on the workload, as kubectl rollout undo does: the release is cancelled",
		Long: `Put the stable revision's pod template back on the workload, as kubectl rollout
undo does: for a Deployment, the template of its ReplicaSet whose pod-template-hash
is the Rollout's stable revision; for a StatefulSet, its ControllerRevision of that
revision. Sluice sees the workload back at its stable revision and cancels the
release: traffic returns to stable and the workload rolls back natively.

Your manifests still name the new version: fix them too, or the next apply
starts the release again.`,
		Args:              oneName,
		ValidArgsFunction: completeRollouts(o),
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			s, err := o.connect()
			if err != nil {
				return err
			}
			r, err := s.getRollout(ctx, args[0])
			if err != nil {
				return err
			}
			st := stateOf(r)
			if rf := check(actUndo, st); rf != nil {
				return rf
			}
			stable := st.common.StableRevision
			refuse := func(format string, a ...any) error {
				return &refusal{action: actUndo, name: r.Name, why: fmt.Sprintf(format, a...)}
			}
			if stable == "" {
				return refuse("the Rollout does not know its stable revision yet: try again in a moment")
			}
			ref := r.Spec.WorkloadRef
			key := client.ObjectKey{Namespace: r.Namespace, Name: ref.Name}
			var what string
			switch {
			case ref.APIVersion == "apps/v1" && ref.Kind == "Deployment":
				d := &appsv1.Deployment{}
				if err := s.c.Get(ctx, key, d); err != nil {
					return apiError(err, "reading Deployment "+ref.Name)
				}
				list := &appsv1.ReplicaSetList{}
				if err := s.c.List(ctx, list, client.InNamespace(r.Namespace)); err != nil {
					return apiError(err, "listing the ReplicaSets of Deployment "+ref.Name)
				}
				tmpl, err := stableTemplate(d, list.Items, stable)
				if err != nil {
					return refuse("%v", err)
				}
				patch, err := json.Marshal([]map[string]any{
					{"op": "test", "path": "/metadata/uid", "value": d.UID},
					{"op": "replace", "path": "/spec/template", "value": tmpl},
				})
				if err != nil {
					return err
				}
				if err := s.c.Patch(ctx, d, client.RawPatch(types.JSONPatchType, patch)); err != nil {
					return apiError(err, "patching Deployment "+ref.Name)
				}
				what = fmt.Sprintf("Deployment %s's template is back at the stable revision %s", ref.Name, stable)
			case ref.APIVersion == "apps/v1" && ref.Kind == "StatefulSet":
				sts := &appsv1.StatefulSet{}
				if err := s.c.Get(ctx, key, sts); err != nil {
					return apiError(err, "reading StatefulSet "+ref.Name)
				}
				list := &appsv1.ControllerRevisionList{}
				if err := s.c.List(ctx, list, client.InNamespace(r.Namespace)); err != nil {
					return apiError(err, "listing the ControllerRevisions of StatefulSet "+ref.Name)
				}
				cr, err := stableRevision(sts, list.Items, stable)
				if err != nil {
					return refuse("%v", err)
				}
				// kubectl rollout undo applies the revision's data, a strategic
				// merge patch that replaces the template.
				if err := s.c.Patch(ctx, sts, client.RawPatch(types.StrategicMergePatchType, cr.Data.Raw)); err != nil {
					return apiError(err, "patching StatefulSet "+ref.Name)
				}
				what = fmt.Sprintf("StatefulSet %s's template is back at the stable revision %s", ref.Name, cr.Name)
			default:
				return refuse("undo knows Deployments and StatefulSets (apps/v1), not %s %s: re-apply the stable manifest of %s yourself, and Sluice cancels the release", ref.APIVersion, ref.Kind, ref.Name)
			}
			note := ""
			if st.specPaused {
				note = fmt.Sprintf("; the Rollout is paused: it cancels the release once resumed (`kubectl sluice resume %s`)", r.Name)
			}
			o.say("rollout/%s: %s, so Sluice cancels the release%s; fix your manifests too, or the next apply starts the release again; %s", r.Name, what, note, follow(r.Name))
			return nil
		},
	}
}

// stableTemplate is the pod template of d's ReplicaSet with the stable
// pod-template-hash, without that label, as kubectl rollout undo takes it.
func stableTemplate(d *appsv1.Deployment, rss []appsv1.ReplicaSet, stable string) (*corev1.PodTemplateSpec, error) {
	for i := range rss {
		rs := &rss[i]
		if owner := metav1.GetControllerOf(rs); owner == nil || owner.UID != d.UID || rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != stable {
			continue
		}
		tmpl := rs.Spec.Template.DeepCopy()
		delete(tmpl.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
		cur := d.Spec.Template.DeepCopy()
		delete(cur.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
		if equality.Semantic.DeepEqual(tmpl, cur) {
			return nil, fmt.Errorf("Deployment %s already has the stable template (revision %s): the release is being cancelled", d.Name, stable)
		}
		return tmpl, nil
	}
	return nil, fmt.Errorf("Deployment %s has no ReplicaSet of the stable revision %s (pruned by revisionHistoryLimit?): re-apply the stable manifest instead, and Sluice cancels the release", d.Name, stable)
}

// stableRevision is sts's ControllerRevision of the stable revision (the
// revision's name, or a name ending in -<stable>).
func stableRevision(sts *appsv1.StatefulSet, crs []appsv1.ControllerRevision, stable string) (*appsv1.ControllerRevision, error) {
	for i := range crs {
		cr := &crs[i]
		if owner := metav1.GetControllerOf(cr); owner == nil || owner.UID != sts.UID {
			continue
		}
		if cr.Name != stable && !strings.HasSuffix(cr.Name, "-"+stable) {
			continue
		}
		if cr.Name == sts.Status.UpdateRevision {
			return nil, fmt.Errorf("StatefulSet %s already has the stable template (revision %s): the release is being cancelled", sts.Name, cr.Name)
		}
		if len(cr.Data.Raw) == 0 {
			return nil, fmt.Errorf("ControllerRevision %s holds no template: re-apply the stable manifest of StatefulSet %s instead", cr.Name, sts.Name)
		}
		return cr, nil
	}
	return nil, fmt.Errorf("StatefulSet %s has no ControllerRevision of the stable revision %s (pruned by revisionHistoryLimit?): re-apply the stable manifest instead, and Sluice cancels the release", sts.Name, stable)
}
