package preview

import (
	"context"
	"fmt"
	"reflect"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// objectKey names one object of one kind.
type objectKey struct {
	gvk       schema.GroupVersionKind
	namespace string
	name      string
}

// overlay is a client.Client over a live cluster whose writes stay in
// memory: the first read of an object copies it from the cluster (read
// only), every later read and write goes to the copy. What the traffic
// calls write can so be looked at without changing the cluster. The
// in-memory store is controller-runtime's fake client: an object store
// with the API server's create, patch, update and delete semantics.
type overlay struct {
	client.Client // the in-memory copy
	live          client.Reader
	scheme        *runtime.Scheme
	// loaded are the objects read from the cluster (or found missing
	// there), with what they were; a deleted object stays loaded, so it
	// is not read again.
	loaded map[objectKey]*unstructured.Unstructured
	// types remembers each object's Go type, to read it back.
	types map[objectKey]reflect.Type
	// written lists the objects written, in the order of their first write.
	written []objectKey
}

func newOverlay(live client.Reader, scheme *runtime.Scheme) *overlay {
	return &overlay{
		Client: fake.NewClientBuilder().WithScheme(scheme).Build(),
		live:   live, scheme: scheme,
		loaded: map[objectKey]*unstructured.Unstructured{},
		types:  map[objectKey]reflect.Type{},
	}
}

func (o *overlay) keyOf(obj client.Object, key client.ObjectKey) (objectKey, error) {
	gvk, err := apiutil.GVKForObject(obj, o.scheme)
	if err != nil {
		return objectKey{}, err
	}
	return objectKey{gvk: gvk, namespace: key.Namespace, name: key.Name}, nil
}

// load copies an object from the cluster on its first use.
func (o *overlay) load(ctx context.Context, obj client.Object, key client.ObjectKey) (objectKey, error) {
	k, err := o.keyOf(obj, key)
	if err != nil {
		return k, err
	}
	if _, done := o.loaded[k]; done {
		return k, nil
	}
	o.types[k] = reflect.TypeOf(obj).Elem()
	fresh := reflect.New(o.types[k]).Interface().(client.Object)
	if u, ok := fresh.(*unstructured.Unstructured); ok {
		u.SetGroupVersionKind(k.gvk)
	}
	err = o.live.Get(ctx, key, fresh)
	if apierrors.IsNotFound(err) {
		o.loaded[k] = nil
		return k, nil
	}
	if err != nil {
		return k, err
	}
	before, err := toUnstructured(fresh)
	if err != nil {
		return k, err
	}
	o.loaded[k] = before
	fresh.SetResourceVersion("")
	if err := o.Client.Create(ctx, fresh); err != nil {
		return k, fmt.Errorf("copying %s %s: %w", k.gvk.Kind, key, err)
	}
	return k, nil
}

func (o *overlay) wrote(k objectKey) {
	for _, w := range o.written {
		if w == k {
			return
		}
	}
	o.written = append(o.written, k)
}

func (o *overlay) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, err := o.load(ctx, obj, key); err != nil {
		return err
	}
	return o.Client.Get(ctx, key, obj, opts...)
}

func (o *overlay) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	k, err := o.load(ctx, obj, client.ObjectKeyFromObject(obj))
	if err != nil {
		return err
	}
	o.types[k] = reflect.TypeOf(obj).Elem()
	if err := o.Client.Create(ctx, obj, opts...); err != nil {
		return err
	}
	o.wrote(k)
	return nil
}

func (o *overlay) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	k, err := o.load(ctx, obj, client.ObjectKeyFromObject(obj))
	if err != nil {
		return err
	}
	if err := o.Client.Update(ctx, obj, opts...); err != nil {
		return err
	}
	o.wrote(k)
	return nil
}

func (o *overlay) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	k, err := o.load(ctx, obj, client.ObjectKeyFromObject(obj))
	if err != nil {
		return err
	}
	if err := o.Client.Patch(ctx, obj, patch, opts...); err != nil {
		return err
	}
	o.wrote(k)
	return nil
}

func (o *overlay) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	k, err := o.load(ctx, obj, client.ObjectKeyFromObject(obj))
	if err != nil {
		return err
	}
	if err := o.Client.Delete(ctx, obj, opts...); err != nil {
		return err
	}
	o.wrote(k)
	return nil
}

// current is an object as the copy holds it now, nil when it does not
// exist there.
func (o *overlay) current(ctx context.Context, k objectKey) (*unstructured.Unstructured, error) {
	t, ok := o.types[k]
	if !ok {
		return nil, nil
	}
	obj := reflect.New(t).Interface().(client.Object)
	if u, ok := obj.(*unstructured.Unstructured); ok {
		u.SetGroupVersionKind(k.gvk)
	}
	err := o.Client.Get(ctx, client.ObjectKey{Namespace: k.namespace, Name: k.name}, obj)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return toUnstructured(obj)
}

func toUnstructured(obj client.Object) (*unstructured.Unstructured, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		return u.DeepCopy(), nil
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	return &unstructured.Unstructured{Object: m}, nil
}
