package cli

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

func template(image, hash string) corev1.PodTemplateSpec {
	labels := map[string]string{"app": "echoserver"}
	if hash != "" {
		labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	}
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "echoserver", Image: image}}},
	}
}

// ownedBy is the metadata of an object controlled by the object with uid.
func ownedBy(name, uid string) metav1.ObjectMeta {
	yes := true
	return metav1.ObjectMeta{Name: name, OwnerReferences: []metav1.OwnerReference{{UID: types.UID(uid), Controller: &yes}}, Labels: map[string]string{}}
}

func TestStableTemplate(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "echoserver", UID: "d-1"}, Spec: appsv1.DeploymentSpec{Template: template("demo:1.10.3", "")}}
	rs := func(name, hash, image, owner string) appsv1.ReplicaSet {
		r := appsv1.ReplicaSet{ObjectMeta: ownedBy(name, owner), Spec: appsv1.ReplicaSetSpec{Template: template(image, hash)}}
		r.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
		return r
	}
	rss := []appsv1.ReplicaSet{
		rs("echoserver-5ddcc7f994", "5ddcc7f994", "demo:1.10.3", "d-1"),
		rs("foreign-756ff5f57c", "756ff5f57c", "demo:evil", "other"), // another owner's, same hash
		rs("echoserver-756ff5f57c", "756ff5f57c", "demo:1.10.2", "d-1"),
	}
	got, err := stableTemplate(d, rss, "756ff5f57c")
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Containers[0].Image != "demo:1.10.2" {
		t.Errorf("took image %s", got.Spec.Containers[0].Image)
	}
	if _, has := got.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; has || got.Labels["app"] != "echoserver" {
		t.Errorf("labels %v: pod-template-hash must go, the rest stay", got.Labels)
	}
	if rss[2].Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] == "" {
		t.Error("the ReplicaSet was modified")
	}

	if _, err := stableTemplate(d, rss, "nope"); err == nil || !strings.Contains(err.Error(), "re-apply the stable manifest") {
		t.Errorf("missing ReplicaSet: %v", err)
	}
	d.Spec.Template = template("demo:1.10.2", "")
	if _, err := stableTemplate(d, rss, "756ff5f57c"); err == nil || !strings.Contains(err.Error(), "already has the stable template") {
		t.Errorf("already stable: %v", err)
	}
}

func TestStableRevision(t *testing.T) {
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web", UID: "s-1"}, Status: appsv1.StatefulSetStatus{CurrentRevision: "web-6c9f8d7b5", UpdateRevision: "web-7d8e9f0a1"}}
	cr := func(name, owner, data string) appsv1.ControllerRevision {
		return appsv1.ControllerRevision{ObjectMeta: ownedBy(name, owner), Data: runtime.RawExtension{Raw: []byte(data)}}
	}
	crs := []appsv1.ControllerRevision{cr("web-6c9f8d7b5", "other", `{}`), cr("web-7d8e9f0a1", "s-1", `{"spec":{}}`), cr("web-6c9f8d7b5", "s-1", `{"spec":{"template":{"$patch":"replace"}}}`)}
	for _, stable := range []string{"web-6c9f8d7b5", "6c9f8d7b5"} {
		got, err := stableRevision(sts, crs, stable)
		if err != nil || got.Name != "web-6c9f8d7b5" || !strings.Contains(string(got.Data.Raw), "$patch") {
			t.Errorf("stable %s: %v %v", stable, got, err)
		}
	}
	sts.Status.UpdateRevision = "web-6c9f8d7b5"
	if _, err := stableRevision(sts, crs, "web-6c9f8d7b5"); err == nil || !strings.Contains(err.Error(), "already has the stable template") {
		t.Errorf("already stable: %v", err)
	}
	if _, err := stableRevision(sts, crs, "web-0000"); err == nil || !strings.Contains(err.Error(), "no ControllerRevision") {
		t.Errorf("missing: %v", err)
	}
}
