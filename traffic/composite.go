package traffic

import (
	"context"

	"github.com/sluicehq/sluice/traffic/route"
)

// Composite drives several providers as one (an Ingress and an HTTPRoute,
// or several custom objects). Every provider is called on each call, so
// they move together; the first error stops the call.
type Composite []route.Provider

var _ route.Provider = Composite(nil)

// Initialize implements route.Provider.
func (c Composite) Initialize(ctx context.Context) error {
	for _, p := range c {
		if err := p.Initialize(ctx); err != nil {
			return err
		}
	}
	return nil
}

// EnsureRoutes implements route.Provider; done when every provider is.
func (c Composite) EnsureRoutes(ctx context.Context, r route.Route) (bool, error) {
	return c.all(func(p route.Provider) (bool, error) { return p.EnsureRoutes(ctx, r) })
}

// Finalise implements route.Provider; done when every provider is.
func (c Composite) Finalise(ctx context.Context) (bool, error) {
	return c.all(func(p route.Provider) (bool, error) { return p.Finalise(ctx) })
}

func (c Composite) all(call func(route.Provider) (bool, error)) (bool, error) {
	done := true
	for _, p := range c {
		d, err := call(p)
		if err != nil {
			return false, err
		}
		done = done && d
	}
	return done, nil
}
